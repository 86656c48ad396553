"""`cpu.matmul`: matmul / batch matmul (with its fill and fused epilogue) on the CPU.

Loops (generic form): [batch...,] m, n, k. The schedule, outermost first:

1. *outer tile* `tile_m x tile_n` of the output: an `scf.forall` (one OpenMP loop over the
   tiles, `parallel`) or serial loops; the fill, the contraction and the epilogue are all
   computed tile by tile (the epilogue reads its tile while it is in cache);
2. *k cache tile* `tile_k`: the reduction is walked in slices of B that stay in cache;
3. *register tile* `reg_m x reg_n`: the accumulator block, vectorized along n and kept in
   vector registers across the k loop (`hoist_loop_invariant_subsets`), updated with one
   broadcast of A and `reg_n / lanes` FMAs per row and k step;
4. the fill and epilogue are vectorized in `1 x reg_n` pieces.

With `pack_b` (schedule/packing.py) B is first laid out as panels `[n / reg_n][k][reg_n]`,
so the register tile streams B contiguously; a B that is a weight is packed once, when the
weights are bound, not at every call.
"""

from __future__ import annotations

from mlir import ir

from woodpecker.kernels.space import Config, Constraint, Knob, SearchSpace, divisors
from woodpecker.schedule.kernels import SCHED_PREFIX, Kernel
from woodpecker.schedule.packing import can_pack_b, pack_matmul_b
from woodpecker.schedule.script import VECTOR_CLEANUP, Script
from woodpecker.schedule.target import CpuMachine
from woodpecker.schedule.templates.base import (
    MIN_PARALLEL_WORK,
    POWERS_OF_TWO,
    NoDefault,
    divides,
    pick,
    tile_choices,
    vector_choices,
    vectors,
)

REG_M = (1, 2, 3, 4, 5, 6, 7, 8)
K_LOOP = SCHED_PREFIX + "matmul_k"


def problem(kernel: Kernel) -> tuple[int, int, int, int]:
    """(batch, m, n, k) of a matmul kernel."""
    *batch, m, n, k = kernel.loops.extents
    b = 1
    for extent in batch:
        b *= extent
    return b, m, n, k


def _power_of_two(count: int) -> bool:
    return count > 0 and count & (count - 1) == 0


def _b_is_argument(kernel: Kernel) -> bool:
    """B comes straight from a function argument: a weight is then packed once, at load."""
    return isinstance(kernel.main.operands[1].owner, ir.Block)


class MatmulTemplate:
    name = "cpu.matmul"

    def space(self, kernel: Kernel, target: CpuMachine) -> SearchSpace:
        batch, m, n, k = problem(kernel)
        lanes = target.vector_lanes
        reg_n = vector_choices(n, lanes, 8 * lanes)
        reg_m = tuple(r for r in REG_M if m % r == 0)
        knobs = (
            Knob("tile_m", tile_choices(m, POWERS_OF_TWO[:10]), "rows of the outer (per-thread) output tile"),
            Knob("tile_n", tile_choices(n, [*POWERS_OF_TWO[3:], *divisors(n, 1024)[1:]]), "columns of the outer tile"),
            Knob("tile_k", tile_choices(k, POWERS_OF_TWO[5:10]), "reduction slice kept in cache"),
            Knob("reg_m", reg_m, "rows of the register accumulator tile"),
            Knob("reg_n", reg_n, "columns of the register tile (vectorized)"),
            Knob("parallel", (False, True), "split the outer tiles across the cores (OpenMP)"),
            Knob("pack_b", (False, True), "lay B out as [n / reg_n][k][reg_n] panels (weights: once, at load)"),
        )
        registers = target.registers
        # Read the IR now: the space outlives the ops (a tuner validates configs after compiling).
        packable = {r: can_pack_b(kernel, r) for r in reg_n}
        b_is_argument = _b_is_argument(kernel)

        def registers_fit(c: dict) -> str | None:
            need = c["reg_m"] * vectors(c["reg_n"], lanes) + vectors(c["reg_n"], lanes) + 1
            if need > registers:
                return (
                    f"a {c['reg_m']}x{c['reg_n']} register tile needs {need} vector registers "
                    f"(accumulators, a row of B, a broadcast of A); the target has {registers}"
                )
            return None

        constraints = (
            divides("reg_m", "tile_m"),
            divides("reg_n", "tile_n"),
            Constraint("register budget", ("reg_m", "reg_n"), registers_fit),
            Constraint(
                "packable B",
                ("pack_b", "reg_n"),
                lambda c: (
                    None
                    if not c["pack_b"] or packable[c["reg_n"]]
                    else f"pack_b needs B indexed (batch..., k, n) and reg_n={c['reg_n']} < n={n}"
                ),
            ),
            Constraint(
                "parallel tiles",
                ("parallel",),
                lambda c: (
                    None
                    if not c["parallel"] or batch * (m // c["tile_m"]) * (n // c["tile_n"]) >= 2
                    else "parallel needs at least 2 outer tiles (shrink tile_m or tile_n)"
                ),
            ),
        )
        default = self._default(batch, m, n, k, target, knobs, registers_fit, packable.__getitem__, b_is_argument)
        try:
            return SearchSpace(kernel.name, self.name, knobs, default, constraints)
        except ValueError as err:  # no configuration of this template fits the kernel here
            raise NoDefault(str(err)) from None

    @staticmethod
    def _default(
        batch: int,
        m: int,
        n: int,
        k: int,
        target: CpuMachine,
        knobs: tuple[Knob, ...],
        fits,
        packable,
        b_is_argument: bool,
    ) -> Config:
        """Measured on 1024^3 (AVX2, docs/cpu-schedule-notes.md): a 4x16 register tile, B packed,
        256-column outer tiles with the whole K (a panel streams contiguously) run at about 85%
        of one core's peak; without packing, K slices that keep B's tile in L2 do best."""
        domain = {knob.name: knob.domain for knob in knobs}
        lanes = target.vector_lanes
        # The most accumulators that fit (FMA latency is hidden by independent accumulators);
        # among equals, rows of two vectors (one broadcast of A feeds two FMAs).
        fitting = [
            (r * vectors(w, lanes), w == 2 * lanes, w, r)
            for r in domain["reg_m"]
            for w in domain["reg_n"]
            if fits({"reg_m": r, "reg_n": w}) is None
        ]
        # Rows of a power-of-two number of vectors only, where there is one: on AVX-512 the
        # 4 x 96 and 8 x 48 tiles (6 and 3 vectors a row, the most accumulators that fit) ran
        # BERT's 128x768x768 projection in 89 and 60 ms against 0.86 ms for 4 x 64 and 0.81 ms
        # for 8 x 32 (2 threads, bench/bench_matmuls.py shapes; the machine was loaded).
        candidates = [c for c in fitting if _power_of_two(vectors(c[2], lanes))] or fitting
        if not candidates:
            raise NoDefault("cpu.matmul: no register tile fits")
        _, _, reg_n, reg_m = max(candidates)
        # Packing pays off when B is re-read by several row tiles (and is free for weights).
        pack_b = (m >= 4 * reg_m or b_is_argument) and packable(reg_n)
        tile_m = pick(domain["tile_m"], lambda t: t % reg_m == 0, at_most=64)
        if pack_b:
            tile_n = pick(domain["tile_n"], lambda t: t % reg_n == 0, at_most=max(256, reg_n))
            tile_k = pick(domain["tile_k"], at_most=2048)
        else:
            tile_n = pick(domain["tile_n"], lambda t: t % reg_n == 0, at_most=max(1024, reg_n))
            # Keep B's slice (tile_k x tile_n) within about half of L2.
            fitting = [t for t in domain["tile_k"] if t * tile_n * 4 <= target.l2_bytes // 2]
            tile_k = max(fitting or [min(domain["tile_k"])])
        tiles = batch * (m // tile_m) * (n // tile_n)
        work = batch * m * n * k
        if tiles < 2 * target.threads:
            smaller = [
                t for t in domain["tile_m"] if t % reg_m == 0 and batch * (m // t) * (n // tile_n) >= 2 * target.threads
            ]
            if smaller:
                tile_m = max(smaller)
        tiles = batch * (m // tile_m) * (n // tile_n)
        parallel = target.threads > 1 and tiles >= 2 and work >= MIN_PARALLEL_WORK
        return {
            "tile_m": tile_m,
            "tile_n": tile_n,
            "tile_k": tile_k,
            "reg_m": reg_m,
            "reg_n": reg_n,
            "parallel": parallel,
            "pack_b": pack_b,
        }

    def prepare(self, kernel: Kernel, config: Config) -> None:
        """IR rewrites the configuration needs before its script runs (B packing)."""
        if config["pack_b"]:
            pack_matmul_b(kernel, config["reg_n"])

    def schedule(self, kernel: Kernel, config: Config, target: CpuMachine, script: Script) -> None:
        s = script
        packed = config["pack_b"]
        nb = len(kernel.loops.extents) - (4 if packed else 3)
        k = kernel.loops.extents[-1]
        reg_n = config["reg_n"]
        # Loop positions (after the batch loops) of m, the n tile (n0 when packed), n1, k.
        n_split = [config["tile_n"] // reg_n, 0] if packed else [config["tile_n"]]
        reg_split = [1, 0] if packed else [reg_n]
        has_epilogue = kernel.epilogue is not None
        s.comment(f"{kernel.name}: {self.name} {config}")
        root = s.match_role(kernel.index, "root" if has_epilogue else "main")
        outer = [1] * nb + [config["tile_m"], *n_split] + ([] if has_epilogue else [0])
        if config["parallel"]:
            root, loop = s.tile_forall(root, outer)
            outer_first = None
        else:
            root, loops = s.tile_for(root, outer)
            loop = loops[-1]
            outer_first = loops[0] if len(loops) > 1 else None
        if has_epilogue:
            main, loop = s.fuse_into(s.match_role(kernel.index, "main"), loop)
        else:
            main = root
        fill = None
        if kernel.fill is not None:
            fill = s.match_role(kernel.index, "fill")
            # A fill that initializes the tiled op itself is a loop-carried value of serial
            # loops (not fusable): it then runs on its own, vectorized.
            if has_epilogue or config["parallel"]:
                fill, loop = s.fuse_into(fill, loop)
        no_n = [0] * len(n_split)
        if config["tile_k"] < k:
            main, _ = s.tile_for(main, [0] * nb + [0, *no_n, config["tile_k"]])
        main, _ = s.tile_for(main, [0] * nb + [config["reg_m"], *reg_split, 0])
        k_step = min(k, config["tile_k"])
        main, k_loops = s.tile_for(main, [0] * nb + [0, *no_n, 1]) if k_step > 1 else (main, [])
        row = [0] * nb + [1, *reg_split]
        if has_epilogue:
            root, _ = s.tile_for(root, row)
            s.vectorize(root)
        if fill is not None:
            fill, _ = s.tile_for(fill, row)
            s.vectorize(fill)
        s.vectorize(main)
        # Cleanups stay inside this kernel's loops: on the whole function, canonicalization
        # would also rewrite kernels not scheduled yet (an identity copy would vanish).
        func = outer_first or loop
        for k_loop in k_loops:
            s.annotate(k_loop, K_LOOP, kernel.index)
        s.patterns(func, VECTOR_CLEANUP)
        if k_loops:
            s.hoist_accumulator(K_LOOP, kernel.index)
