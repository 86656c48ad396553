"""Backends: from `wpk` IR lowered to linalg down to something that runs."""

from woodpecker.backend.cpu import CpuExecutable, compile_cpu
from woodpecker.backend.outline_weights import outline_weights

__all__ = ["CpuExecutable", "compile_cpu", "outline_weights"]
