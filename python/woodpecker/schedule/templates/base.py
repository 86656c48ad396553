"""What a CPU schedule template is: a search space per kernel and a script per configuration."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from woodpecker.kernels.space import Config, Constraint, SearchSpace, divisors
from woodpecker.schedule.kernels import Kernel
from woodpecker.schedule.script import Script
from woodpecker.schedule.target import CpuMachine


class Template(Protocol):
    """A schedule template for one kernel kind."""

    name: str  # e.g. "cpu.matmul"

    def space(self, kernel: Kernel, target: CpuMachine) -> SearchSpace:
        """The knobs, their domains and constraints for `kernel`, with a good default."""
        ...

    def prepare(self, kernel: Kernel, config: Config) -> None:
        """IR rewrites `config` needs before its script runs (packing a weight; often nothing)."""
        ...

    def schedule(self, kernel: Kernel, config: Config, target: CpuMachine, script: Script) -> None:
        """Appends the transform ops that apply `config` to `kernel` (its ops are tagged)."""
        ...


class NoDefault(ValueError):
    """A template has no valid configuration for this kernel on this machine: the kernel is
    scheduled by its kind's fallback template instead (`templates.schedule_space`)."""


def pick(values: Sequence[int], fits: Callable[[int], bool] = lambda v: True, at_most: int | None = None) -> int:
    """The largest of `values` that `fits` and is at most `at_most`; else the smallest that
    fits; else the smallest value (a default must exist for every shape a template claims)."""
    fitting = [v for v in values if fits(v)]
    if not fitting:
        return min(values)
    bounded = [v for v in fitting if at_most is None or v <= at_most]
    return max(bounded) if bounded else min(fitting)


def tile_choices(extent: int, candidates: Sequence[int]) -> tuple[int, ...]:
    """Tile sizes that divide `extent`: the candidates that do, plus the whole extent."""
    return tuple(sorted({c for c in candidates if 0 < c <= extent and extent % c == 0} | {extent}))


def vector_choices(extent: int, lanes: int, at_most: int) -> tuple[int, ...]:
    """Register-tile widths along a vectorized dim: dividing multiples of the lane count, or,
    when the extent has none, its divisors up to the lane count."""
    multiples = tuple(d for d in divisors(extent, at_most) if d % lanes == 0)
    return multiples or divisors(extent, lanes)


def vectors(width: int, lanes: int) -> int:
    """Vector registers a row of `width` f32 values occupies."""
    return -(-width // lanes)


# Less work than this (loop iterations) does not repay an OpenMP fork/join: such kernels run serially.
MIN_PARALLEL_WORK = 1 << 15


def divides(inner: str, outer: str) -> Constraint:
    """The constraint that knob `inner` divides knob `outer` (a register tile in its outer tile)."""
    return Constraint(
        f"{inner} divides {outer}",
        (inner, outer),
        lambda c: None if c[outer] % c[inner] == 0 else f"{inner}={c[inner]} does not divide {outer}={c[outer]}",
    )


POWERS_OF_TWO = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
