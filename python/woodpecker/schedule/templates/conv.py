"""`cpu.conv` and `cpu.depthwise_conv`: direct NCHW convolution with register blocking.

Loops (generic form): conv (n, f, oh, ow, c, kh, kw), depthwise (n, oh, ow, c, kh, kw). The
schedule, outermost first:

1. *outer tile* `tile_f x tile_oh` of the output (channels x rows), an `scf.forall` across
   the cores when `parallel`; the fill, the conv and the epilogue are computed tile by tile;
2. the conv is interchanged to (n, oh, ow, f, c, kh, kw) (depthwise: (n, c, oh, ow, kh, kw))
   so that, once the unit loops are folded away, a register tile is the contraction
   `out[f, ow] += W[f, c] * in[c, ow]` that the outer-product lowering turns into broadcasts
   of W and FMAs on rows of the input;
3. input channels in blocks of `tile_c` (the accumulators go back to memory between blocks);
4. the register tile `reg_f x reg_oh x reg_ow` (`reg_ow` is the vector length along ow);
5. the reduction: `unroll_c` input channels per step, then kh, kw one by one; the
   accumulators stay in registers across all of them (`hoist_loop_invariant_subsets`, from
   the innermost loop out);
6. epilogue and fill in rows of `ow`.

Depthwise has no channel reduction: its tile is elementwise, so the multiply and add are
marked `fastmath<contract>` for LLVM to fuse them into FMAs.

Only unit strides and dilations are handled (a strided window makes the input map
`2*ow + kw`, which the vectorizer rejects): other convolutions use `cpu.generic`.
"""

from __future__ import annotations

from woodpecker.kernels.space import Config, Constraint, Knob, SearchSpace
from woodpecker.schedule.kernels import SCHED_PREFIX, Kernel
from woodpecker.schedule.packing import transpose_weight
from woodpecker.schedule.script import ANY, VECTOR_CLEANUP, Script
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

OUTER = SCHED_PREFIX + "conv_outer"
VECTORIZE = SCHED_PREFIX + "conv_vectorize"
HOIST = SCHED_PREFIX + "conv_hoist"


def unit_strides(kernel: Kernel) -> bool:
    """Whether the input is read with unit strides and dilations (no `k * d` terms)."""
    return "*" not in str(kernel.loops.maps[0])


def dims(kernel: Kernel) -> dict[str, int]:
    e = kernel.loops.extents
    if kernel.kind == "conv":
        n, f, oh, ow, c, kh, kw = e
    else:
        n, oh, ow, f, kh, kw = e
        c = 1
    return {"n": n, "f": f, "oh": oh, "ow": ow, "c": c, "kh": kh, "kw": kw}


def applicable(kernel: Kernel, strided: bool = False) -> bool:
    """Whether the direct template handles `kernel` (unit strides), or, with `strided`, the
    f-vectorized variant (regular convolutions with strides or dilations)."""
    if kernel.kind not in ("conv", "depthwise_conv") or unit_strides(kernel) == strided:
        return False
    if strided and kernel.kind != "conv":
        return False
    d = dims(kernel)
    return d["n"] == 1 and (d["f"] > 1 or d["oh"] > 1)


class ConvTemplate:
    def __init__(self, kind: str, strided: bool = False):
        self.kind = kind
        self.strided = strided
        self.name = f"cpu.{kind}" + ("_strided" if strided else "")
        self.depthwise = kind == "depthwise_conv"

    def space(self, kernel: Kernel, target: CpuMachine) -> SearchSpace:
        d = dims(kernel)
        lanes = target.vector_lanes
        knobs = [
            Knob("tile_f", tile_choices(d["f"], POWERS_OF_TWO[:8]), "output channels per outer tile"),
            Knob("tile_oh", tile_choices(d["oh"], (1, 2, 4, 7, 8, 14, 16, 28)), "output rows per outer tile"),
            Knob("reg_f", tuple(r for r in (1, 2, 4, 8) if d["f"] % r == 0), "output channels per register tile"),
            Knob("reg_oh", tuple(r for r in (1, 2, 4) if d["oh"] % r == 0), "output rows per register tile"),
            Knob("reg_ow", vector_choices(d["ow"], lanes, 2 * lanes), "output columns per register tile (vector)"),
        ]
        if self.strided:
            # Strided windows cannot be read as vectors along ow: vectorize along f instead
            # (W transposed to [c][kh][kw][f] once, at load), one output pixel per tile.
            knobs[2:5] = [
                Knob("reg_f", vector_choices(d["f"], lanes, 8 * lanes), "output channels per tile (vector)"),
                Knob("reg_oh", (1,), "output rows per register tile"),
                Knob("reg_ow", (1,), "output columns per register tile"),
            ]
        knobs += [
            Knob("parallel", (False, True), "split the outer tiles across the cores (OpenMP)"),
        ]
        if not self.depthwise:
            knobs[2:2] = [Knob("tile_c", tile_choices(d["c"], (4, 8, 16, 32, 64)), "input channels per block")]
            unroll = sorted({u for u in (1, 2, 4, 8) if d["c"] % u == 0} | ({d["c"]} if d["c"] <= 8 else set()))
            knobs.append(Knob("unroll_c", tuple(unroll), "input channels per step"))
        registers = target.registers

        def fits(c: dict) -> str | None:
            if self.strided:
                acc = vectors(c["reg_f"], lanes)
                need = 2 * acc + 1
            else:
                acc = c["reg_f"] * c["reg_oh"] * vectors(c["reg_ow"], lanes)
                need = acc + c["reg_oh"] * vectors(c["reg_ow"], lanes) + 1
            if need > registers or acc > 8:
                return (
                    f"a {c['reg_f']}x{c['reg_oh']}x{c['reg_ow']} register tile needs {acc} accumulators "
                    f"(at most 8) and {need} of {registers} vector registers"
                )
            return None

        def splits(c: dict) -> str | None:
            if c["tile_f"] == d["f"] and c["tile_oh"] == d["oh"]:
                return "the outer tile must split the output (tile_f < channels or tile_oh < rows)"
            return None

        constraints = [
            divides("reg_f", "tile_f"),
            divides("reg_oh", "tile_oh"),
            Constraint("register budget", ("reg_f", "reg_oh", "reg_ow"), fits),
        ]
        constraints.append(Constraint("outer tile splits", ("tile_oh", "tile_f"), splits))
        if not self.depthwise:
            constraints.append(divides("unroll_c", "tile_c"))
        default = self._default(d, target, {k.name: k.domain for k in knobs}, fits, splits)
        try:
            return SearchSpace(kernel.name, self.name, tuple(knobs), default, tuple(constraints))
        except ValueError as err:  # no configuration of this template fits the kernel here
            raise NoDefault(str(err)) from None

    def _default(self, d: dict[str, int], target: CpuMachine, domain: dict, fits, splits) -> Config:
        lanes = target.vector_lanes
        reg_ow = (
            max(r for r in domain["reg_ow"] if r <= lanes)
            if any(r <= lanes for r in domain["reg_ow"])
            else min(domain["reg_ow"])
        )
        best = None
        for reg_f in domain["reg_f"]:
            for reg_oh in domain["reg_oh"]:
                can_split = d["f"] // reg_f >= 2 or d["oh"] // reg_oh >= 2
                if can_split and fits({"reg_f": reg_f, "reg_oh": reg_oh, "reg_ow": reg_ow}) is None:
                    acc = reg_f * reg_oh
                    key = (vectors(reg_f, lanes) if self.strided else acc, reg_f == 4 or self.depthwise, reg_f)
                    if best is None or key > best[0]:
                        best = (key, reg_f, reg_oh)
        if best is None:  # no register tile both fits and leaves an outer tile to split off
            raise NoDefault(f"{self.name}: no register tile fits a {d['f']}x{d['oh']}x{d['ow']} output")
        _, reg_f, reg_oh = best
        tile_f = pick(domain["tile_f"], lambda t: t % reg_f == 0, at_most=max(16, reg_f))
        tile_oh = pick(domain["tile_oh"], lambda t: t % reg_oh == 0, at_most=4)
        if splits({"tile_f": tile_f, "tile_oh": tile_oh}):
            tile_oh = min(t for t in domain["tile_oh"] if t % reg_oh == 0)
            if splits({"tile_f": tile_f, "tile_oh": tile_oh}):
                tile_f = min(t for t in domain["tile_f"] if t % reg_f == 0)
        tiles = (d["f"] // tile_f) * (d["oh"] // tile_oh)
        work = d["f"] * d["oh"] * d["ow"] * d["c"] * d["kh"] * d["kw"]
        config: Config = {"tile_f": tile_f, "tile_oh": tile_oh}
        if not self.depthwise:
            tile_c = pick(domain["tile_c"], at_most=16)
            config["tile_c"] = tile_c
            config["unroll_c"] = pick(domain["unroll_c"], lambda u: tile_c % u == 0, at_most=8)
        config.update(
            reg_f=reg_f,
            reg_oh=reg_oh,
            reg_ow=reg_ow,
            parallel=target.threads > 1 and tiles >= 2 and work >= MIN_PARALLEL_WORK,
        )
        return config

    def prepare(self, kernel: Kernel, config: Config) -> None:
        if self.strided:
            transpose_weight(kernel.main, 1, [1, 2, 3, 0])  # W[f][c][kh][kw] -> W[c][kh][kw][f]

    def schedule(self, kernel: Kernel, config: Config, target: CpuMachine, script: Script) -> None:
        s = script
        d = dims(kernel)
        s.comment(f"{kernel.name}: {self.name} {config}")
        has_epilogue = kernel.epilogue is not None
        root = s.match_role(kernel.index, "root" if has_epilogue else "main")
        # Output dims (n, f, oh, ow); the main op in its original loop order has them first.
        tf, toh = _t(config["tile_f"], d["f"]), _t(config["tile_oh"], d["oh"])
        if has_epilogue:
            outer = [0, tf, toh, 0]
        elif self.depthwise:
            outer = [0, toh, 0, tf, 0, 0]
        else:
            outer = [0, tf, toh, 0, 0, 0, 0]
        if config["parallel"]:
            root, loop = s.tile_forall(root, outer)
            outermost_first = None
        else:
            root, loops = s.tile_for(root, outer)
            outermost_first = loops[0] if len(loops) > 1 else None
            loop = loops[-1]
        main = root
        if has_epilogue:
            main, loop = s.fuse_into(s.match_role(kernel.index, "main"), loop)
        fill = None
        if kernel.fill is not None and (has_epilogue or config["parallel"]):
            fill, loop = s.fuse_into(s.match_role(kernel.index, "fill"), loop)
        outermost = loop if config["parallel"] or outermost_first is None else outermost_first
        g = self.fresh_interchange(s, main)
        kh = 1 if d["kh"] > 1 else 0
        kw = 1 if d["kw"] > 1 else 0
        if self.depthwise:
            # (n, c, oh, ow, kh, kw)
            g, reg = s.tile_for(
                g,
                [
                    0,
                    _t(config["reg_f"], config["tile_f"]),
                    _t(config["reg_oh"], config["tile_oh"]),
                    _t(config["reg_ow"], d["ow"]),
                    0,
                    0,
                ],
            )
            g, red = s.tile_for(g, [0, 0, 0, 0, kh, kw])
            body = s.fresh("arith")
            s.add(f'{body} = transform.structured.match ops{{["arith.mulf", "arith.addf"]}} in {g} : ({ANY}) -> {ANY}')
            param = s.fresh("contract")
            s.add(f"{param} = transform.param.constant #arith.fastmath<contract> -> !transform.any_param")
            s.add(f'transform.annotate {body} "fastmath" = {param} : {ANY}, !transform.any_param')
        else:
            # (n, oh, ow, f, c, kh, kw)
            if config["tile_c"] < d["c"]:
                g, _ = s.tile_for(g, [0, 0, 0, 0, config["tile_c"], 0, 0])
            g, reg = s.tile_for(
                g,
                [
                    0,
                    _t(config["reg_oh"], config["tile_oh"]),
                    _t(config["reg_ow"], d["ow"]),
                    _t(config["reg_f"], config["tile_f"]),
                    0,
                    0,
                    0,
                ],
            )
            unroll = config["unroll_c"] if config["unroll_c"] < min(config["tile_c"], d["c"]) else 0
            g, red = s.tile_for(g, [0, 0, 0, 0, unroll, kh, kw])
        row = [0, 1 if config["tile_f"] > 1 else 0, 1 if config["tile_oh"] > 1 else 0, 0]
        vector_loops = [(red or reg or [outermost])[-1]]
        for op in (root if has_epilogue else None, fill):
            if op is not None:
                _, row_loops = s.tile_for(op, row)
                vector_loops.append(row_loops[-1] if row_loops else outermost)
        # Mark what phase 2 needs: unit-dim folding replaces the tiled ops, so no handle to
        # them may live across it.
        k = kernel.index
        s.annotate(outermost, OUTER, k)
        for i, loop in enumerate(vector_loops):
            s.annotate(loop, f"{VECTORIZE}{i}", k)
        for depth, loop in enumerate(reversed(red)):
            s.annotate(loop, f"{HOIST}{depth}", k)
        s.next_phase()
        # No canonicalization until the accumulators are hoisted: it rebuilds the reduction
        # loops (their iter_args shrink with the unit dims) and drops the marks.
        outer_loop = s.match_attribute(OUTER, k)
        s.patterns(outer_loop, ("transform.apply_patterns.linalg.fold_unit_extent_dims_via_slices",))
        for i in range(len(vector_loops)):
            s.vectorize(s.match_ops(["linalg.generic"], s.match_attribute(f"{VECTORIZE}{i}", k)))
        # Accumulators in memory order (f, oh, ow) before they become loop-carried vectors.
        s.patterns(outer_loop, [p for p in VECTOR_CLEANUP if "canonicalization" not in p])
        for depth in range(len(red)):  # innermost loop first
            s.hoist_accumulator(f"{HOIST}{depth}", k)
        s.patterns(outer_loop, VECTOR_CLEANUP)

    def fresh_interchange(self, s: Script, op: str) -> str:
        order = [0, 3, 1, 2, 4, 5] if self.depthwise else [0, 2, 3, 1, 4, 5, 6]
        out = s.fresh("interchanged")
        s.add(f"{out} = transform.structured.interchange {op} iterator_interchange = {order} : ({ANY}) -> {ANY}")
        return out


def _t(tile: int, extent: int) -> int:
    """A tile size, or 0 where the tile covers the whole loop (no single-trip loop)."""
    return 0 if tile >= extent else tile
