"""The search space of a GPU kernel's schedule: `GpuConfig` knobs as a `SearchSpace`.

`gpu_search_space(problem, arch, kernel_name)` gives template `cuda.<kind>` with knobs

* `block_tile`, `thread_tile`: tuples over every output dim; per dim, the powers of two that
  divide the extent (block: up to 128, or the whole extent; thread: up to 8, and 1 on the dims
  before the innermost three);
* `reduction_tile`: `()` (whole loops) or `(r,)`, a step of the main op's first reduction
  loop (powers of two from 4 to 64 that divide it) for contractions and reductions;
* `promote_shared` (contractions, convolutions, pooling), `vector_width` (1, 2, 4) and
  `shared_opt_in` (only where a promoted tile can pass 48 KiB);

the default configuration's values are added to the domains. Each check `GpuConfig.validate`
makes is a `Constraint` naming its knob, plus a register budget (accumulator elements per
thread). A configuration is a dict of knob values; `config_from_knobs` and
`knobs_from_config` convert between that and `GpuConfig`.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from woodpecker.gpu.arch import GpuArch, get_arch
from woodpecker.gpu.config import (
    PROMOTABLE_KINDS,
    VECTOR_WIDTHS,
    GpuConfig,
    KernelProblem,
    LaunchShape,
    default_config,
)
from woodpecker.kernels.space import Config, Constraint, Knob, SearchSpace

KNOBS = ("block_tile", "thread_tile", "reduction_tile", "promote_shared", "vector_width", "shared_opt_in")
BLOCK_TILE_MAX = 128  # largest power of two tried per dim (the whole extent is tried too, up to WHOLE_MAX)
WHOLE_MAX = 256
THREAD_TILE_MAX = 8
REDUCTION_TILES = (4, 8, 16, 32, 64)
# Kinds whose main op's reduction loop is worth tiling (pool and depthwise windows are tiny).
REDUCTION_TILED_KINDS = frozenset({"matmul", "batch_matmul", "conv", "reduction"})
# Accumulators a thread keeps (one f32 register each) for kinds whose main op reduces.
REGISTER_BUDGET = 128


def _powers_of_two(n: int, at_most: int) -> list[int]:
    return [1 << i for i in range(at_most.bit_length()) if (1 << i) <= at_most and n % (1 << i) == 0]


def _eff(extent: int, tile: int) -> int:
    """A tile as GpuConfig reads it: 0 or at least the extent means the whole extent."""
    return extent if tile == 0 or tile >= extent else tile


def _aligned(values: Sequence[int], rank: int) -> tuple[int, ...]:
    values = tuple(values)
    return (1,) * (rank - len(values)) + values if len(values) <= rank else values


def knobs_from_config(config: GpuConfig, problem: KernelProblem | None = None) -> Config:
    """The knob values of `config`; with `problem`, in the canonical form of the space's
    domains: tiles over every output dim, whole extents written out, `()` for untiled
    reduction loops."""
    block, thread, reduction = config.block_tile, config.thread_tile, config.reduction_tile
    if problem is not None:
        rank = problem.rank
        block = _aligned(block, rank)
        thread = _aligned(thread, rank)
        if len(block) == rank and len(thread) == rank:
            block = tuple(_eff(e, b) for e, b in zip(problem.output_shape, block, strict=True))
            thread = tuple(_eff(b, t) for b, t in zip(block, thread, strict=True))
        if len(reduction) <= len(problem.reduction_loops):
            red = [0 if r >= e else r for r, e in zip(reduction, problem.reduction_extents, strict=False)]
            while red and red[-1] == 0:
                red.pop()
            reduction = tuple(red)
    return {
        "block_tile": tuple(block),
        "thread_tile": tuple(thread),
        "reduction_tile": tuple(reduction),
        "promote_shared": bool(config.promote_shared),
        "vector_width": int(config.vector_width),
        "shared_opt_in": bool(config.shared_opt_in),
    }


def config_from_knobs(knobs: Mapping[str, Any]) -> GpuConfig:
    """The GpuConfig of a configuration (knobs it leaves out keep GpuConfig's defaults)."""
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise ValueError(f"not GPU schedule knobs: {unknown} (knobs: {', '.join(KNOBS)})")
    fields: dict[str, Any] = {}
    for name in ("block_tile", "thread_tile", "reduction_tile"):
        if name in knobs:
            fields[name] = tuple(int(v) for v in knobs[name])
    for name in ("promote_shared", "shared_opt_in"):
        if name in knobs:
            fields[name] = bool(knobs[name])
    if "vector_width" in knobs:
        fields["vector_width"] = int(knobs["vector_width"])
    return GpuConfig(**fields)


# -- domains -----------------------------------------------------------------------------------


def _tuple_domain(per_dim: Sequence[Sequence[int]], default: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    choices = [sorted(set(c) | {d}) for c, d in zip(per_dim, default, strict=True)]
    return tuple(itertools.product(*choices))


def _block_domain(problem: KernelProblem, default: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    per_dim = []
    for extent in problem.output_shape:
        values = set(_powers_of_two(extent, BLOCK_TILE_MAX))
        if extent <= WHOLE_MAX:
            values.add(extent)
        per_dim.append(sorted(values))
    return _tuple_domain(per_dim, default)


def _thread_domain(problem: KernelProblem, default: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    # Dims before the innermost three (the batch of a conv) are not split within a thread.
    outer = max(0, problem.rank - 3)
    per_dim = [[1] if d < outer else _powers_of_two(e, THREAD_TILE_MAX) for d, e in enumerate(problem.output_shape)]
    return _tuple_domain(per_dim, default)


def _reduction_domain(problem: KernelProblem, default: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    values: list[tuple[int, ...]] = [()]
    if problem.kind in REDUCTION_TILED_KINDS and problem.reduction_loops:
        extent = problem.reduction_extents[0]
        values += [(r,) for r in REDUCTION_TILES if r < extent and extent % r == 0]
    if default not in values:
        values.append(default)
    return tuple(values)


# -- constraints -------------------------------------------------------------------------------

Check = Callable[[Mapping[str, Any], LaunchShape], str | None]


class _Checker:
    """Runs every check on a configuration once (memoized on its knob values); each
    `Constraint` reads its own result. The last check, `GpuConfig.validate` itself, only runs
    when the others pass: it guards against the space and GpuConfig drifting apart."""

    def __init__(self, problem: KernelProblem, arch: GpuArch, checks: Sequence[tuple[str, Check]]):
        self.problem = problem
        self.arch = arch
        self.checks = list(checks)
        self.results = functools.lru_cache(maxsize=4096)(self._results)

    def __call__(self, config: Mapping[str, Any], name: str) -> str | None:
        return self.results(tuple(config[k] for k in KNOBS)).get(name)

    def _results(self, key: tuple[Any, ...]) -> dict[str, str | None]:
        config = dict(zip(KNOBS, key, strict=True))
        found: dict[str, str | None] = {}
        if any(t > b or b % t for b, t in zip(config["block_tile"], config["thread_tile"], strict=True)):
            found["tiles_nest"] = _tiles_nest(config)
            return found  # the launch shape is meaningless
        gpu_config = config_from_knobs(config)
        shape = gpu_config._launch_shape(self.problem, self.arch)
        for name, check in self.checks:
            found[name] = check(config, shape)
        if not any(found.values()):
            try:
                gpu_config.validate(self.problem, self.arch)
            except ValueError as err:
                found["gpu_config"] = str(err)
        return found


def _tiles_nest(c: Mapping[str, Any]) -> str | None:
    for d, (b, t) in enumerate(zip(c["block_tile"], c["thread_tile"], strict=True)):
        if t > b:
            return f"thread_tile[{d}]={t} is larger than block_tile[{d}]={b}"
        if b % t:
            return f"thread_tile[{d}]={t} does not divide block_tile[{d}]={b}"
    return None


def _constraints(problem: KernelProblem, arch: GpuArch, register_budget: int) -> tuple[Constraint, ...]:
    out = problem.output_shape

    def grid_dims(c: Mapping[str, Any], shape: LaunchShape) -> str | None:
        tiled = [d for d, (e, b) in enumerate(zip(out, c["block_tile"], strict=True)) if b < e]
        if len(tiled) > 3:
            return f"tiles {len(tiled)} output dims {tiled} across blocks; at most 3 map to grid x/y/z"
        return None

    def thread_dims(c: Mapping[str, Any], shape: LaunchShape) -> str | None:
        split = [d for d, (b, t) in enumerate(zip(c["block_tile"], c["thread_tile"], strict=True)) if b // t > 1]
        if len(split) > 3:
            return f"splits {len(split)} output dims {split} across threads; at most 3 map to thread x/y/z"
        return None

    def threads_per_block(c: Mapping[str, Any], shape: LaunchShape) -> str | None:
        threads = math.prod(b // t for b, t in zip(c["block_tile"], c["thread_tile"], strict=True))
        if threads > arch.max_threads_per_block:
            return (
                f"{threads} threads per block (block_tile {c['block_tile']} / thread_tile {c['thread_tile']}) "
                f"exceed {arch.max_threads_per_block} on {arch.chip}"
            )
        return None

    def block_dims(c: Mapping[str, Any], shape: LaunchShape) -> str | None:
        for axis, (n, limit) in enumerate(zip(shape.block, arch.max_block_dims, strict=True)):
            if n > limit:
                return f"{n} threads along block {'xyz'[axis]} exceed {limit} on {arch.chip}"
        return None

    def grid_size(c: Mapping[str, Any], shape: LaunchShape) -> str | None:
        for axis, (n, limit) in enumerate(zip(shape.grid, arch.max_grid_dims, strict=True)):
            if n > limit:
                return f"{n} blocks along grid {'xyz'[axis]} exceed {limit} on {arch.chip}"
        return None

    def registers(c: Mapping[str, Any], shape: LaunchShape) -> str | None:
        elements = math.prod(shape.thread_tile)
        if elements > register_budget:
            return (
                f"each thread accumulates {elements} outputs (thread_tile {c['thread_tile']}), "
                f"over the budget of {register_budget} registers"
            )
        return None

    def vector_width(c: Mapping[str, Any], shape: LaunchShape) -> str | None:
        width = c["vector_width"]
        inner = shape.thread_tile[-1] if problem.rank else 1
        if width > 1 and inner % width:
            return f"{width} does not divide the innermost thread tile {inner}"
        return None

    def promoted_tiles(c: Mapping[str, Any], shape: LaunchShape) -> str | None:
        if not c["promote_shared"]:
            return None
        for d, (e, b) in enumerate(zip(out, shape.block_tile, strict=True)):
            if e % b:
                return f"block_tile[{d}]={b} must divide the output extent {e} when promote_shared is set"
        for r, (e, t) in enumerate(zip(problem.reduction_extents, shape.reduction_tile, strict=True)):
            if e % t:
                return f"reduction_tile[{r}]={t} must divide the reduction extent {e} when promote_shared is set"
        return None

    def shared_memory(c: Mapping[str, Any], shape: LaunchShape) -> str | None:
        if not c["promote_shared"]:
            return None
        limit = arch.shared_opt_in_bytes if c["shared_opt_in"] else arch.shared_default_bytes
        if shape.shared_bytes > limit:
            hint = "" if c["shared_opt_in"] else f" (shared_opt_in allows {arch.shared_opt_in_bytes})"
            return (
                f"the shared tiles need {shape.shared_bytes} bytes, more than {limit} bytes on {arch.chip}{hint}; "
                "shrink block_tile or reduction_tile"
            )
        return None

    # (name, knobs: the first is blamed, check)
    table: list[tuple[str, tuple[str, ...], Check | None]] = [
        ("tiles_nest", ("thread_tile", "block_tile"), None),
        ("grid_dims", ("block_tile",), grid_dims),
        ("thread_dims", ("thread_tile", "block_tile"), thread_dims),
        ("threads_per_block", ("thread_tile", "block_tile"), threads_per_block),
        ("block_dims", ("thread_tile", "block_tile"), block_dims),
        ("grid_size", ("block_tile",), grid_size),
        ("vector_width", ("vector_width", "thread_tile"), vector_width),
        ("promoted_tiles", ("block_tile", "reduction_tile", "promote_shared"), promoted_tiles),
        ("shared_memory", ("promote_shared", "block_tile", "reduction_tile", "shared_opt_in"), shared_memory),
    ]
    if problem.reduction_loops:
        table.append(("register_budget", ("thread_tile", "block_tile"), registers))
    table.append(("gpu_config", KNOBS, None))
    checker = _Checker(problem, arch, [(name, check) for name, _, check in table if check is not None])
    return tuple(Constraint(name, knobs, functools.partial(_read, checker, name)) for name, knobs, _ in table)


def _read(checker: _Checker, name: str, config: Mapping[str, Any]) -> str | None:
    return checker(config, name)


# -- the space ---------------------------------------------------------------------------------


def gpu_search_space(problem: KernelProblem, arch: GpuArch | str = "sm_90", kernel_name: str = "") -> SearchSpace:
    """The configurations of one kernel's schedule (template `cuda.<kind>`) on `arch`."""
    target = get_arch(arch) if isinstance(arch, str) else arch
    default = knobs_from_config(default_config(problem, target), problem)
    promotable = problem.kind in PROMOTABLE_KINDS and bool(problem.operands)
    block = _block_domain(problem, default["block_tile"])
    reduction = _reduction_domain(problem, default["reduction_tile"])
    opt_in = (False,)
    if promotable and target.shared_opt_in_bytes > target.shared_default_bytes:
        largest = max(block, key=math.prod)
        widest = max(reduction, key=lambda r: r[0] if r else math.inf)
        if GpuConfig._shared_bytes(problem, largest, _reduction_eff(problem, widest)) > target.shared_default_bytes:
            opt_in = (False, True)
    knobs = (
        Knob("block_tile", block, "output elements per thread block, per output dim"),
        Knob("thread_tile", _thread_domain(problem, default["thread_tile"]), "output elements per thread, per dim"),
        Knob("reduction_tile", reduction, "step of the main op's first reduction loop (() = whole)"),
        Knob("promote_shared", (False, True) if promotable else (False,), "stage input tiles in shared memory"),
        Knob("vector_width", VECTOR_WIDTHS, "elements per vector access"),
        Knob("shared_opt_in", opt_in, "allow more than 48 KiB of dynamic shared memory"),
    )
    elements = math.prod(
        GpuConfig(default["block_tile"], default["thread_tile"]).launch_shape(problem, target).thread_tile
    )
    budget = max(REGISTER_BUDGET, elements)
    notes = {"arch": target.chip, "output_shape": str(problem.output_shape)}
    if problem.reduction_loops:
        notes["register_budget"] = str(budget)
    return SearchSpace(
        kernel=kernel_name or f"<{problem.kind} {problem.output_shape}>",
        template=f"cuda.{problem.kind}",
        knobs=knobs,
        default=default,
        constraints=_constraints(problem, target, budget),
        notes=notes,
    )


def _reduction_eff(problem: KernelProblem, tile: tuple[int, ...]) -> tuple[int, ...]:
    padded = list(tile) + [0] * (len(problem.reduction_loops) - len(tile))
    return tuple(_eff(e, r) for e, r in zip(problem.reduction_extents, padded, strict=True))


def describe_space(space: SearchSpace) -> str:
    """`space.describe()` with tile domains written per dim (their product is the domain)."""
    lines = [f"{space.template} schedule of {space.kernel}: {space.size} configurations before constraints"]
    for knob in space.knobs:
        domain: object = list(knob.domain)
        if knob.name in ("block_tile", "thread_tile") and knob.domain and knob.domain[0]:
            per_dim = [sorted({v[d] for v in knob.domain}) for d in range(len(knob.domain[0]))]
            domain = " x ".join(str(values) for values in per_dim)
        lines.append(f"  {knob.name} = {space.default[knob.name]!r}  domain {domain}")
    lines.append("  constraints: " + ", ".join(c.name for c in space.constraints))
    return "\n".join(lines)
