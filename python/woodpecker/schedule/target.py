"""What the CPU schedules are built for: vector registers, cores, caches of the host."""

from __future__ import annotations

import os
from dataclasses import dataclass

from woodpecker.runtime.cpu.host import vector_lanes


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class CpuMachine:
    """f32 lanes per vector register, vector registers, cores and cache sizes."""

    vector_lanes: int = 8
    registers: int = 16
    threads: int = 1
    l2_bytes: int = 512 * 1024

    @classmethod
    def host(cls, threads: int | None = None) -> CpuMachine:
        """This machine: AVX-512 gives 16 lanes and 32 registers, AVX2 8 and 16, else SSE's 4 and 16."""
        lanes = vector_lanes()
        registers = 32 if lanes == 16 else 16
        return cls(vector_lanes=lanes, registers=registers, threads=threads or _cores())

    @property
    def max_vector_elements(self) -> int:
        """The most f32 elements one vectorized tile may have: one register file. A tile's vector
        is unrolled completely into register-sized pieces; larger ones only spill, and their
        code (and LLVM's time) grows with them."""
        return self.vector_lanes * self.registers

    def describe(self) -> str:
        return f"{self.threads} threads, {self.vector_lanes} f32 lanes x {self.registers} vector registers"
