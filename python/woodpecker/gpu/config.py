"""Schedule knobs of one GPU kernel (`GpuConfig`), the problem they apply to, and defaults.

A kernel computes one output tensor (its *output dims*) with a *main op*: the matmul, conv,
pooling or reduction that the kernel is built around (the op itself for elementwise
kernels). The schedule is two-level, as in CUDA:

* `block_tile[d]`: output elements along dim d that one thread block computes; the tiles
  form the grid (innermost tiled dim -> x, then y, z).
* `thread_tile[d]`: output elements along dim d that one thread computes; the block has
  `block_tile[d] / thread_tile[d]` threads along d (innermost such dim -> x, then y, z).
* `reduction_tile[r]`: step of the loop over the main op's r-th reduction loop (K of a
  matmul; C, KH, KW of a conv); 0 keeps the whole loop.
* `promote_shared`: stage the main op's input tiles (one reduction step at a time) in
  shared memory, copied cooperatively by all threads of the block.
* `vector_width`: elements per vector access (copies to shared memory and vectorizable
  thread tiles).

Tile tuples are aligned on the innermost dims: missing leading entries mean 1. A tile of 0,
or one at least the extent, covers the whole dim.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from woodpecker.gpu.arch import GpuArch, get_arch

KINDS = (
    "matmul",
    "batch_matmul",
    "conv",
    "depthwise_conv",
    "pool",
    "reduction",
    "elementwise",
    "gather",
    "fill",
)
PROMOTABLE_KINDS = frozenset({"matmul", "batch_matmul", "conv", "depthwise_conv", "pool"})
VECTOR_WIDTHS = (1, 2, 4)
ELEMENT_BYTES = 4  # f32
SHARED_ALIGN = 16


@dataclass(frozen=True)
class OperandAccess:
    """One input of the main op: its shape and, per dim, the (loop, coefficient) terms indexing it."""

    shape: tuple[int, ...]
    terms: tuple[tuple[tuple[int, int], ...], ...]
    promotable: bool = True
    operand: int = 0  # operand position in the main op

    def footprint(self, loop_tiles: Sequence[int]) -> tuple[int, ...]:
        """Elements along each dim that a tile of the loops (`loop_tiles[l]` iterations of loop l) reads."""
        return tuple(
            min(size, sum(coef * (loop_tiles[loop] - 1) for loop, coef in dim) + 1)
            for size, dim in zip(self.shape, self.terms, strict=True)
        )


@dataclass(frozen=True)
class KernelProblem:
    """What a schedule is checked against: the kernel's output and its main op's loops."""

    kind: str
    output_shape: tuple[int, ...]
    loop_extents: tuple[int, ...] = ()
    output_loops: tuple[int, ...] = ()  # main-op loop that walks each output dim
    reduction_loops: tuple[int, ...] = ()
    operands: tuple[OperandAccess, ...] = ()

    @property
    def rank(self) -> int:
        return len(self.output_shape)

    @property
    def reduction_extents(self) -> tuple[int, ...]:
        return tuple(self.loop_extents[r] for r in self.reduction_loops)


@dataclass(frozen=True)
class LaunchShape:
    """Derived launch geometry of a config applied to a problem."""

    block_tile: tuple[int, ...]  # effective, per output dim
    thread_tile: tuple[int, ...]
    grid_dims: tuple[int, ...]  # output dims mapped to grid x, y, z (innermost first)
    thread_dims: tuple[int, ...]  # output dims mapped to thread x, y, z
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    reduction_tile: tuple[int, ...]  # effective, per reduction loop
    shared_bytes: int

    @property
    def threads(self) -> int:
        return math.prod(self.block)


def _align(n: int, a: int) -> int:
    return -(-n // a) * a


def _knob_error(knob: str, reason: str) -> ValueError:
    return ValueError(f"GpuConfig.{knob}: {reason}")


@dataclass(frozen=True)
class GpuConfig:
    """Schedule knobs of one kernel; see the module docstring."""

    block_tile: tuple[int, ...] = ()
    thread_tile: tuple[int, ...] = ()
    reduction_tile: tuple[int, ...] = ()
    promote_shared: bool = False
    vector_width: int = 1
    # Allow more than 48 KiB of shared memory (the launcher must then raise the kernel's
    # cudaFuncAttributeMaxDynamicSharedMemorySize); the arch's opt-in limit still applies.
    shared_opt_in: bool = False
    notes: str = field(default="", compare=False)

    # -- geometry ----------------------------------------------------------------------------

    @staticmethod
    def _aligned(values: Sequence[int], rank: int, knob: str) -> tuple[int, ...]:
        values = tuple(values)
        if len(values) > rank:
            raise _knob_error(knob, f"has {len(values)} entries but the kernel output has rank {rank}")
        return (1,) * (rank - len(values)) + values

    def launch_shape(self, problem: KernelProblem, arch: GpuArch | str = "sm_90") -> LaunchShape:
        """Grid, block and tiles of this config on `problem`; raises ValueError if invalid."""
        self.validate(problem, arch)
        return self._launch_shape(problem, get_arch(arch) if isinstance(arch, str) else arch)

    def _launch_shape(self, problem: KernelProblem, arch: GpuArch) -> LaunchShape:
        rank = problem.rank
        out = problem.output_shape
        block = tuple(
            e if b == 0 or b >= e else b
            for e, b in zip(out, self._aligned(self.block_tile, rank, "block_tile"), strict=True)
        )
        thread = tuple(
            b if t == 0 or t >= b else t
            for b, t in zip(block, self._aligned(self.thread_tile, rank, "thread_tile"), strict=True)
        )
        grid_dims = tuple(d for d in reversed(range(rank)) if block[d] < out[d])
        thread_dims = tuple(d for d in reversed(range(rank)) if block[d] // thread[d] > 1)
        grid = [1, 1, 1]
        for i, d in enumerate(grid_dims[:3]):
            grid[i] = -(-out[d] // block[d])
        threads = [1, 1, 1]
        for i, d in enumerate(thread_dims[:3]):
            threads[i] = block[d] // thread[d]
        red = list(self.reduction_tile) + [0] * (len(problem.reduction_loops) - len(self.reduction_tile))
        red_eff = tuple(e if r == 0 or r >= e else r for e, r in zip(problem.reduction_extents, red, strict=False))
        return LaunchShape(
            block_tile=block,
            thread_tile=thread,
            grid_dims=grid_dims,
            thread_dims=thread_dims,
            grid=(grid[0], grid[1], grid[2]),
            block=(threads[0], threads[1], threads[2]),
            reduction_tile=red_eff,
            shared_bytes=self._shared_bytes(problem, block, red_eff) if self.promote_shared else 0,
        )

    @staticmethod
    def _shared_bytes(problem: KernelProblem, block: Sequence[int], red: Sequence[int]) -> int:
        tiles = list(problem.loop_extents)
        for d, loop in enumerate(problem.output_loops):
            tiles[loop] = block[d]
        for r, loop in enumerate(problem.reduction_loops):
            tiles[loop] = red[r]
        total = 0
        for operand in problem.operands:
            if operand.promotable:
                total += _align(math.prod(operand.footprint(tiles)) * ELEMENT_BYTES, SHARED_ALIGN)
        return total

    # -- validation --------------------------------------------------------------------------

    def validate(self, problem: KernelProblem | None = None, arch: GpuArch | str = "sm_90") -> None:
        """Raises ValueError naming the knob and the reason if this config cannot be used.

        Without `problem` only what the knobs say by themselves is checked; with it, the
        launch geometry, divisibility and shared memory on `arch` are checked too.
        """
        arch = get_arch(arch) if isinstance(arch, str) else arch
        for knob in ("block_tile", "thread_tile", "reduction_tile"):
            values = getattr(self, knob)
            if not isinstance(values, tuple) or not all(isinstance(v, int) and v >= 0 for v in values):
                raise _knob_error(knob, f"must be a tuple of non-negative ints, got {values!r}")
        if self.vector_width not in VECTOR_WIDTHS:
            raise _knob_error("vector_width", f"must be one of {VECTOR_WIDTHS}, got {self.vector_width!r}")
        self._check_intrinsic(arch)
        if problem is not None:
            self._check_problem(problem, arch)

    def _check_intrinsic(self, arch: GpuArch) -> None:
        """Checks that hold whatever the problem (tiles as given, aligned innermost)."""
        rank = max(len(self.block_tile), len(self.thread_tile))
        block = self._aligned(self.block_tile, rank, "block_tile")
        thread = self._aligned(self.thread_tile, rank, "thread_tile")
        threads = 1
        for d in range(rank):
            b, t = block[d], thread[d]
            if b == 0 or t == 0 or t >= b:
                continue
            if b % t:
                raise _knob_error("thread_tile", f"thread_tile[{d}]={t} does not divide block_tile[{d}]={b}")
            threads *= b // t
        if threads > arch.max_threads_per_block:
            raise _knob_error(
                "thread_tile",
                f"{threads} threads per block (block_tile {block} / thread_tile {thread}) "
                f"exceed {arch.max_threads_per_block}",
            )

    def _check_problem(self, problem: KernelProblem, arch: GpuArch) -> None:
        if len(self.reduction_tile) > len(problem.reduction_loops):
            raise _knob_error(
                "reduction_tile",
                f"has {len(self.reduction_tile)} entries but the {problem.kind} kernel has "
                f"{len(problem.reduction_loops)} reduction loops",
            )
        shape = self._launch_shape(problem, arch)
        for d in range(problem.rank):
            if shape.block_tile[d] % shape.thread_tile[d]:
                raise _knob_error(
                    "thread_tile",
                    f"thread_tile[{d}]={shape.thread_tile[d]} does not divide the block tile "
                    f"{shape.block_tile[d]} of output dim {d}",
                )
        if len(shape.grid_dims) > 3:
            raise _knob_error(
                "block_tile",
                f"tiles {len(shape.grid_dims)} output dims {list(shape.grid_dims)} across blocks; at most 3 map "
                "to grid x/y/z (cover the others whole with 0)",
            )
        if len(shape.thread_dims) > 3:
            raise _knob_error(
                "thread_tile",
                f"splits {len(shape.thread_dims)} output dims across threads; at most 3 map to thread x/y/z",
            )
        if shape.threads > arch.max_threads_per_block:
            raise _knob_error(
                "thread_tile", f"{shape.threads} threads per block exceed {arch.max_threads_per_block} on {arch.chip}"
            )
        for axis, (n, limit) in enumerate(zip(shape.block, arch.max_block_dims, strict=True)):
            if n > limit:
                raise _knob_error("thread_tile", f"{n} threads along block {'xyz'[axis]} exceed {limit}")
        for axis, (n, limit) in enumerate(zip(shape.grid, arch.max_grid_dims, strict=True)):
            if n > limit:
                raise _knob_error("block_tile", f"{n} blocks along grid {'xyz'[axis]} exceed {limit}")
        if self.vector_width > 1:
            inner = shape.thread_tile[-1] if problem.rank else 1
            if inner % self.vector_width:
                raise _knob_error(
                    "vector_width",
                    f"{self.vector_width} does not divide the innermost thread tile {inner}",
                )
        if self.promote_shared:
            self._check_promotion(problem, shape, arch)

    def _check_promotion(self, problem: KernelProblem, shape: LaunchShape, arch: GpuArch) -> None:
        if problem.kind not in PROMOTABLE_KINDS:
            raise _knob_error(
                "promote_shared", f"is not supported for {problem.kind} kernels (only {sorted(PROMOTABLE_KINDS)})"
            )
        for d, (extent, tile) in enumerate(zip(problem.output_shape, shape.block_tile, strict=True)):
            if extent % tile:
                raise _knob_error(
                    "block_tile",
                    f"block_tile[{d}]={tile} must divide output extent {extent} when promote_shared is set "
                    "(shared tiles are static)",
                )
        for r, (extent, tile) in enumerate(zip(problem.reduction_extents, shape.reduction_tile, strict=True)):
            if extent % tile:
                raise _knob_error(
                    "reduction_tile",
                    f"reduction_tile[{r}]={tile} must divide the reduction extent {extent} when promote_shared is set",
                )
        limit = arch.shared_opt_in_bytes if self.shared_opt_in else arch.shared_default_bytes
        if shape.shared_bytes > limit:
            hint = (
                ""
                if self.shared_opt_in
                else f" (set shared_opt_in for up to {arch.shared_opt_in_bytes} on {arch.chip})"
            )
            raise _knob_error(
                "promote_shared",
                f"needs {shape.shared_bytes} bytes of shared memory, more than {limit} bytes{hint}; "
                "shrink block_tile or reduction_tile",
            )


# -- defaults ----------------------------------------------------------------------------------


def _largest_divisor(n: int, at_most: int) -> int:
    for d in range(min(n, at_most), 0, -1):
        if n % d == 0:
            return d
    return 1


def _spread(
    out: Sequence[int], per_thread: Sequence[int], caps: Sequence[int], threads: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Block and thread tiles: up to `caps[d]` threads along dim d, innermost dims first,
    `per_thread[d]` elements per thread; every tile divides its extent."""
    rank = len(out)
    block = [1] * rank
    thread = [1] * rank
    left, thread_dims, grid_dims = threads, 0, 0
    # With more than 3 dims to split, the innermost is covered whole by each block (threads
    # walk it), so that the grid's 3 dims go to the others.
    wide = [d for d in range(rank) if out[d] > 1]
    whole = wide[-1] if len(wide) > 3 else None
    for d in reversed(range(rank)):
        extent = out[d]
        if extent == 1:
            continue
        if d == whole:
            n = _largest_divisor(extent, min(left, caps[d]))
            block[d], thread[d] = extent, extent // n
            thread_dims += n > 1
            left //= n
            continue
        tt = _largest_divisor(extent, max(1, per_thread[d]))
        n = _largest_divisor(extent // tt, min(left, caps[d])) if thread_dims < 3 else 1
        if n * tt < extent and grid_dims == 3:
            # Out of grid dims: every thread of the block walks this dim whole.
            block[d] = thread[d] = extent
            continue
        grid_dims += n * tt < extent
        if n > 1:
            thread_dims += 1
            left //= n
        block[d], thread[d] = n * tt, tt
    return tuple(block), tuple(thread)


def default_config(problem: KernelProblem, arch: GpuArch | str = "sm_90") -> GpuConfig:
    """A simple heuristic: ~256 threads, small register tiles for contractions, shared
    memory for contractions with enough reduction work and tiles that divide evenly."""
    arch = get_arch(arch) if isinstance(arch, str) else arch
    out = problem.output_shape
    rank = len(out)
    threads = 256
    per_thread = [1] * rank
    caps = [threads] * rank
    if rank:
        caps[-1] = 32  # a warp along the contiguous dim
    reduction: tuple[int, ...] = ()
    promote = False
    if problem.kind in ("matmul", "batch_matmul") and rank >= 2:
        per_thread[-1] = per_thread[-2] = 4  # 4x4 register tile, 16x16 threads: 64x64 blocks
        caps[-1] = caps[-2] = 16
        k = problem.reduction_extents[0] if problem.reduction_extents else 1
        if k >= 32:
            reduction = (_largest_divisor(k, 16),)
            promote = True
    elif problem.kind == "conv" and rank == 4:
        per_thread[1] = 4  # each thread computes 4 output channels: input values are reused
        c = problem.reduction_extents[0] if problem.reduction_extents else 1
        if c >= 16:
            reduction = (_largest_divisor(c, 8),)
            promote = True
    block, thread = _spread(out, per_thread, caps, threads)
    config = GpuConfig(block, thread, reduction, promote, notes="default")
    if promote:
        try:
            config.validate(problem, arch)
        except ValueError:
            config = GpuConfig(block, thread, reduction, False, notes="default")
    config.validate(problem, arch)
    return config
