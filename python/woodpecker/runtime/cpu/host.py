"""The CPU this process runs on: its architecture and instruction-set extensions (no MLIR).

The generated code is compiled for the host (LLVM's host CPU and features), so a saved model
records `isa_features()` and is refused on a machine that lacks any of them (`missing_features`).
"""

from __future__ import annotations

import platform
import re
from functools import cache
from pathlib import Path

# The /proc/cpuinfo flags that are instruction-set extensions LLVM may generate code with
# (vector units, FMA, bit manipulation, crypto, ...), as opposed to flags about the machine.
_ISA_FLAG = re.compile(
    r"(sse\w*|ssse3|pni|avx\w*|amx\w*|fma\w*|f16c|bmi\w*|abm|lzcnt|popcnt|movbe|adx|aes|pclmulqdq|vpclmulqdq|"
    r"gfni|vaes|sha_ni|cx16|xsave\w*|rdrand|rdseed|3dnowprefetch|clflushopt|clwb|movdiri|movdir64b|serialize|"
    r"vnni\w*|sse4a|xop|tbm)"
)


@cache
def cpu_flags() -> frozenset[str]:
    """The `flags` line of /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def vector_lanes() -> int:
    """f32 lanes per vector register of this CPU: 16 with AVX-512, 8 with AVX/AVX2, else SSE's 4."""
    flags = cpu_flags()
    if "avx512f" in flags:
        return 16
    if "avx2" in flags or "avx" in flags:
        return 8
    return 4


@cache
def cpu_model() -> str:
    """The `model name` of /proc/cpuinfo, else the platform's processor name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    """The architecture (`x86_64`, `aarch64`)."""
    return platform.machine()


def isa_features() -> list[str]:
    """The host's instruction-set extensions (sorted), what the code is compiled for."""
    return sorted(flag for flag in cpu_flags() if _ISA_FLAG.fullmatch(flag))


def missing_features(required: list[str]) -> list[str]:
    """The features of `required` this host does not have."""
    flags = cpu_flags()
    return sorted(feature for feature in required if feature not in flags)
