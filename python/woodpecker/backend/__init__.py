"""The CPU back end: linalg on tensors -> bufferized loops (OpenMP) -> LLVM -> ExecutionEngine."""

from woodpecker.backend.cpu import CpuExecutable, compile_cpu

__all__ = ["CpuExecutable", "compile_cpu"]
