"""Device memory planning: every activation buffer of a plan in one arena, reused by liveness.

Each buffer lives from the step that writes it (graph inputs: from before the first step) to
the last step that reads it (graph outputs: to after the last step). Two buffers may share
bytes only if their lifetimes do not overlap; a step's output never shares with that step's
inputs, since both are live at that step. `plan_memory` places buffers greedily by size,
largest first, each at the lowest aligned offset free of every already placed buffer whose
lifetime overlaps its own (TensorFlow Lite's "greedy by size" arena planner), so the arena is
at most the sum of the buffers and usually close to the peak of live bytes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from woodpecker.errors import MemoryLimitError

ALIGNMENT = 256  # cudaMalloc's alignment; cuDNN and cuBLAS want at least 16 bytes


@dataclass(frozen=True)
class Lifetime:
    """A buffer of `nbytes` live from step `first` to step `last` (inclusive)."""

    name: str
    nbytes: int
    first: int
    last: int

    def overlaps(self, other: Lifetime) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class MemoryPlan:
    """Byte offsets into one arena of `arena_bytes`."""

    offsets: dict[str, int]
    arena_bytes: int
    total_bytes: int  # without reuse: the sum of the buffers' aligned sizes
    peak_bytes: int  # the most bytes live at one step: no plan can be smaller

    @property
    def saving(self) -> float:
        """The fraction of `total_bytes` that reuse saves."""
        return 1.0 - self.arena_bytes / self.total_bytes if self.total_bytes else 0.0


def align(nbytes: int, alignment: int = ALIGNMENT) -> int:
    return -(-max(nbytes, 1) // alignment) * alignment


def plan_memory(lifetimes: Sequence[Lifetime], alignment: int = ALIGNMENT) -> MemoryPlan:
    """Offsets for `lifetimes` (names unique) in one arena; see the module docstring."""
    names = [b.name for b in lifetimes]
    if len(set(names)) != len(names):
        raise ValueError(f"buffer names must be unique: {sorted(n for n in set(names) if names.count(n) > 1)}")
    for b in lifetimes:
        if b.first > b.last or b.nbytes < 0:
            raise ValueError(f"buffer {b.name}: lifetime [{b.first}, {b.last}] with {b.nbytes} bytes is invalid")
    placed: list[tuple[Lifetime, int, int]] = []  # (buffer, offset, aligned size)
    offsets: dict[str, int] = {}
    # Largest first; ties by earlier start, then name, so that the plan is deterministic.
    for buffer in sorted(lifetimes, key=lambda b: (-b.nbytes, b.first, b.name)):
        size = align(buffer.nbytes, alignment)
        busy = sorted((off, off + sz) for other, off, sz in placed if other.overlaps(buffer))
        offset = 0
        for start, end in busy:
            if offset + size <= start:
                break
            offset = max(offset, end)
        placed.append((buffer, offset, size))
        offsets[buffer.name] = offset
    arena = max((off + sz for _, off, sz in placed), default=0)
    steps = {s for b in lifetimes for s in (b.first, b.last)}
    peak = max(
        (sum(align(b.nbytes, alignment) for b in lifetimes if b.first <= s <= b.last) for s in steps), default=0
    )
    total = sum(align(b.nbytes, alignment) for b in lifetimes)
    return MemoryPlan(offsets=offsets, arena_bytes=arena, total_bytes=total, peak_bytes=peak)


def conflicts(lifetimes: Sequence[Lifetime], offsets: dict[str, int], alignment: int = ALIGNMENT) -> list[str]:
    """Pairs of buffers that are live at the same step and share bytes (empty for a valid plan)."""
    found = []
    for i, a in enumerate(lifetimes):
        for b in lifetimes[i + 1 :]:
            if not a.overlaps(b):
                continue
            a0, b0 = offsets[a.name], offsets[b.name]
            if a0 < b0 + align(b.nbytes, alignment) and b0 < a0 + align(a.nbytes, alignment):
                found.append(f"{a.name} [{a.first}, {a.last}] and {b.name} [{b.first}, {b.last}] share bytes")
    return found


def format_bytes(nbytes: int) -> str:
    """`nbytes` in the largest binary unit that keeps it at least 1 (`12.0 GiB`, `512 B`)."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{nbytes} B"


def host_available_bytes() -> tuple[int, str]:
    """The memory this process can get now, and where that number comes from: the least of the
    machine's (MemAvailable of /proc/meminfo, else the free physical pages of `os.sysconf`),
    what the process's address-space limit (RLIMIT_AS) leaves beside what it maps already, and
    what its cgroup's memory.max leaves."""
    limits = [_machine_available(), _address_space_left(), _cgroup_left()]
    known = [limit for limit in limits if limit is not None]
    return min(known, default=(1 << 62, "(the available memory is unknown)"))


def _machine_available() -> tuple[int, str] | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "available on this machine (MemAvailable in /proc/meminfo)"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "available on this machine (free pages)"
    except (ValueError, OSError, AttributeError):
        return None


def _address_space_left() -> tuple[int, str] | None:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        mapped = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError, IndexError):
        return None
    return max(0, soft - mapped), f"left by this process's address-space limit (RLIMIT_AS {format_bytes(soft)})"


def _cgroup_left() -> tuple[int, str] | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(0, int(limit) - used), f"left by this cgroup's memory.max ({format_bytes(int(limit))})"
    except (OSError, ValueError):
        return None


HOST_ALIGNMENT = 64  # what the CPU code aligns its buffers to


def allocate_arena(nbytes: int, largest: str = "") -> np.ndarray:
    """`nbytes` of host memory aligned to HOST_ALIGNMENT for the buffers of a CPU model's run (see
    woodpecker.backend.arena); a `MemoryLimitError` naming the model's largest buffer (`largest`,
    described) when they cannot be allocated, before any code runs."""
    size = max(int(nbytes), 1)
    try:
        block = np.empty(size + HOST_ALIGNMENT, dtype=np.uint8)
    except MemoryError:
        culprit = f"; the largest is {largest}" if largest else ""
        raise MemoryLimitError(
            f"cannot allocate the {format_bytes(size)} of the model's buffers for this run{culprit}"
        ) from None
    start = -block.ctypes.data % HOST_ALIGNMENT
    return block[start : start + size]
