"""`cpu.blocked_conv` and `cpu.blocked_depthwise_conv`: NCHW[x]c convolutions (lowering/blocked_conv.py)
as a register-blocked micro-kernel vectorized along the output-channel block.

The knobs are the space TVM's x86 `conv2d_NCHWc` schedule searches, with the channel blocks
b_i, b_o fixed by the operand types (the layout pass packs the filter at compile time):

* `tile_oc`, `tile_oh`: output-channel blocks and output rows per outer tile; the outer tiles
  are an `scf.forall` across the cores when `parallel` (TVM's fused (n, oc_chunk, oh) axis);
  the fill, the convolution and its epilogue are computed tile by tile;
* `reg_oc` x `reg_n`: the register tile, output-channel blocks x output columns; its
  reg_oc * reg_n accumulators of b_o lanes stay in vector registers across the whole
  reduction (`hoist_loop_invariant_subsets`, innermost loop first);
* `tile_ic`: input-channel blocks per reduction block, a loop outside the register tiles (the
  filter blocks of one reduction block stay in cache while the register tiles sweep the outer
  tile; the accumulators go back to memory between blocks; regular convolutions only);
* `reg_epilogue`: the epilogue tiled by the register tile with the convolution and its fill
  fused into that loop (needs the whole reduction: tile_ic = all blocks): the accumulators
  start as zero vectors and get the bias, residual and relu in registers before one store;
  without it the fill and the epilogue are loops over rows of the outer tile, around the
  convolution's accumulators in memory;
* `unroll_kw`: the kw loop unrolled (`transform.loop.unroll`).

The reduction, outermost first: input-channel blocks, kh, kw; inside it the b_i input channels
of one block are one vector contraction `acc[ow, ob] += in[ow, ib] * w[ib, ob]` that the
outer-product lowering turns into, per input channel, one load of a weight vector, a
broadcast of an input scalar per column and reg_n FMAs. With strides > 1 the input column
map `s*ow` cannot be read as a vector: the register tile's columns are then a loop of unit
tiles unrolled completely before vectorization (the same broadcasts and FMAs). Depthwise has
no channel reduction: its tile is elementwise along the channel block (vector loads of the
input), the multiply and add are marked `fastmath<contract>` for LLVM to fuse them.
"""

from __future__ import annotations

from dataclasses import dataclass

from woodpecker.kernels.space import Config, Constraint, Knob, SearchSpace, divisors
from woodpecker.schedule.kernels import SCHED_PREFIX, Kernel
from woodpecker.schedule.script import ANY, VECTOR_CLEANUP, Script
from woodpecker.schedule.target import CpuMachine
from woodpecker.schedule.templates.base import MIN_PARALLEL_WORK, NoDefault, divides, pick, tile_choices

OUTER = SCHED_PREFIX + "bconv_outer"
VECTORIZE = SCHED_PREFIX + "bconv_vectorize"
HOIST = SCHED_PREFIX + "bconv_hoist"
COLUMNS = SCHED_PREFIX + "bconv_columns"
KW_LOOP = SCHED_PREFIX + "bconv_kw"

MAX_REG_N = 32  # output columns per register tile (TVM's reg_n)
MIN_ACCUMULATORS = 8  # FMA latency x FMA ports: independent accumulators that keep the FMAs busy


def _register_tile(
    oc_choices: tuple[int, ...], n_choices: tuple[int, ...], registers: int, is_strided: bool
) -> tuple[int, int]:
    """The default reg_oc x reg_n of a regular convolution.

    Two channel blocks when that keeps MIN_ACCUMULATORS: per input channel 2 weight vectors and
    reg_n broadcast input scalars feed 2 * reg_n FMAs. LLVM keeps the reg_n broadcasts in
    registers (each feeds 2 FMAs), so reg_n is the largest with 2 * reg_n + reg_n + 2 registers
    and one to spare. Measured (1x1 256->1024 on 14x14, 64->256 on 56x56, 3x3 256->256 on 14x14,
    CPU time, Zen 5): 2x7 / 2x8 are 12-17% faster than the widest single-block row (1x14, 1x28),
    whose FMAs read the broadcast scalars from memory (a load per FMA). Else, and for strided
    convolutions (their columns are unit tiles: 7x7 s2 16->64 on 224x224 takes 4.8 ms with 2x8,
    3.6 ms with 1x28), one block: the widest row that leaves 4 registers.
    """
    if 2 in oc_choices and not is_strided:
        reg_n = pick(n_choices, at_most=(registers - 3) // 3)
        if 2 * reg_n >= MIN_ACCUMULATORS:
            return 2, reg_n
    return 1, pick(n_choices, at_most=registers - 4)


@dataclass(frozen=True)
class Dims:
    """The loop dims of a blocked convolution's generic: extents and positions."""

    extents: tuple[int, ...]
    depthwise: bool
    grouped: bool

    def pos(self, name: str) -> int:
        if self.depthwise:
            order = ("n", "oc", "oh", "ow", "ob", "kh", "kw")
        elif self.grouped:
            order = ("n", "g", "oc", "oh", "ow", "ob", "ic", "kh", "kw", "ib")
        else:
            order = ("n", "oc", "oh", "ow", "ob", "ic", "kh", "kw", "ib")
        return order.index(name)

    def __getitem__(self, name: str) -> int:
        if name in ("ic", "ib") and self.depthwise:
            return 1
        if name == "g" and not self.grouped:
            return 1
        return self.extents[self.pos(name)]

    @property
    def rank(self) -> int:
        return len(self.extents)

    @property
    def out_rank(self) -> int:
        return 6 if self.grouped else 5

    def sizes(self, **tiles: int) -> list[int]:
        """Tile sizes over all loop dims: the named ones, 0 elsewhere."""
        sizes = [0] * self.rank
        for name, size in tiles.items():
            sizes[self.pos(name)] = size
        return sizes

    def out_sizes(self, **tiles: int) -> list[int]:
        return self.sizes(**tiles)[: self.out_rank]


def dims_of(kernel: Kernel) -> Dims:
    depthwise = kernel.kind == "blocked_depthwise_conv"
    return Dims(kernel.loops.extents, depthwise, not depthwise and len(kernel.loops.extents) == 10)


def strided(kernel: Kernel) -> bool:
    """Whether the input is read with a stride > 1 along the output columns."""
    d = dims_of(kernel)
    input_map = kernel.loops.maps[0]
    column = input_map.results[len(input_map.results) - 2]  # ow * sw + kw * dw
    return f"d{d.pos('ow')} * " in str(column)


def _t(tile: int, extent: int) -> int:
    """A tile size, or 0 where the tile covers the whole loop (no single-trip loop)."""
    return 0 if tile >= extent else tile


class BlockedConvTemplate:
    def __init__(self, kind: str):
        self.kind = kind
        self.name = f"cpu.{kind}"
        self.depthwise = kind == "blocked_depthwise_conv"

    def space(self, kernel: Kernel, target: CpuMachine) -> SearchSpace:
        d = dims_of(kernel)
        registers = target.registers
        knobs = [
            Knob("tile_oc", tile_choices(d["oc"], (1, 2, 4, 8)), "output-channel blocks per outer tile"),
            Knob("tile_oh", tile_choices(d["oh"], (1, 2, 4, 7, 8, 14, 16, 28)), "output rows per outer tile"),
            Knob("reg_oc", tuple(r for r in (1, 2, 4) if d["oc"] % r == 0), "output-channel blocks per register tile"),
            Knob("reg_n", divisors(d["ow"], MAX_REG_N), "output columns per register tile (TVM's reg_n)"),
        ]
        if not self.depthwise:
            knobs.append(Knob("tile_ic", tile_choices(d["ic"], (1, 2, 4, 8, 16)), "input-channel blocks per block"))
            knobs.append(Knob("unroll_ib", divisors(d["ib"]), "input channels of a block per contraction step"))
        knobs.append(Knob("unroll_kw", (False, True) if d["kw"] > 1 else (False,), "unroll the kw loop"))
        fused_epilogue = kernel.epilogue is not None and kernel.fill is not None
        knobs.append(
            Knob(
                "reg_epilogue",
                (False, True) if fused_epilogue else (False,),
                "the fill and the epilogue per register tile, in registers (needs the whole reduction)",
            )
        )
        knobs.append(Knob("parallel", (False, True), "split the outer tiles across the cores (OpenMP)"))

        def fits(c: dict) -> str | None:
            acc = c["reg_oc"] * c["reg_n"]
            # accumulators + a weight vector per channel block (the input scalars are broadcast
            # by the FMAs' memory operands; depthwise: one input vector)
            need = acc + c["reg_oc"] + int(self.depthwise)
            if need > registers:
                return f"a {c['reg_oc']}x{c['reg_n']} register tile needs {need} of {registers} vector registers"
            return None

        def splits(c: dict) -> str | None:
            if c["parallel"] and c["tile_oc"] >= d["oc"] and c["tile_oh"] >= d["oh"] and d["g"] * d["n"] == 1:
                return "a parallel outer tile must split the output (tile_oc < blocks or tile_oh < rows)"
            return None

        def whole_reduction(c: dict) -> str | None:
            if c["reg_epilogue"] and not self.depthwise and c["tile_ic"] < d["ic"]:
                return "the epilogue in registers needs tile_ic to cover all input-channel blocks"
            return None

        constraints = (
            divides("reg_oc", "tile_oc"),
            Constraint(
                "epilogue in registers", ("reg_epilogue",) + (() if self.depthwise else ("tile_ic",)), whole_reduction
            ),
            Constraint("register budget", ("reg_oc", "reg_n"), fits),
            Constraint("outer tile splits", ("tile_oc", "tile_oh", "parallel"), splits),
        )
        domain = {k.name: k.domain for k in knobs}
        default = self._default(d, target, domain, strided(kernel))
        try:
            return SearchSpace(kernel.name, self.name, tuple(knobs), default, constraints)
        except ValueError as err:
            raise NoDefault(str(err)) from None

    def _default(self, d: Dims, target: CpuMachine, domain: dict, is_strided: bool) -> Config:
        registers = target.registers
        if self.depthwise:
            # An input vector per column besides its accumulator; measured (dw 3x3 on 112x112,
            # serial CPU time): reg_n 8 vs 28 is 0.14 vs 0.17 ms, strided 0.34 vs 0.60 ms.
            reg_oc, reg_n = 1, pick(domain["reg_n"], at_most=registers // 4)
        else:
            reg_oc, reg_n = _register_tile(domain["reg_oc"], domain["reg_n"], registers, is_strided)
        config: Config = {
            "tile_oc": pick(
                domain["tile_oc"], lambda t: t % reg_oc == 0, at_most=max(reg_oc, 2 if self.depthwise else 1)
            ),
            "tile_oh": pick(domain["tile_oh"], at_most=max(1, 4 * 28 // d["ow"])),
            "reg_oc": reg_oc,
            "reg_n": reg_n,
        }
        if not self.depthwise:
            # Measured (CPU time, Zen 5): 1x1 and 3x3 stride 1 run alike with 1 to 16 blocks; a
            # strided 3x3 (128->128 on 56x56) takes 2.4 ms with 1 block and 0.78 ms with 8.
            config["tile_ic"] = pick(domain["tile_ic"], at_most=16)
            # The whole block as one contraction: LLVM loads its b_i weight vectors at once,
            # which spills when reg_oc > 1 (then one input channel per step).
            config["unroll_ib"] = d["ib"] if reg_oc == 1 and not is_strided else 1
        # Measured: 1x1 64->256 on 56x56 0.227 vs 0.254 ms with it; strided (7x7 s2 on 224x224)
        # 3.8 vs 3.6 ms: not there.
        config["reg_epilogue"] = (
            domain["reg_epilogue"][-1] and not is_strided and (self.depthwise or config["tile_ic"] >= d["ic"])
        )
        config["unroll_kw"] = False  # measured: unrolling kw spills the register tile (3x3 64->64: 0.56 vs 2.6 ms)
        tiles = -(-d["oc"] // config["tile_oc"]) * -(-d["oh"] // config["tile_oh"]) * d["g"] * d["n"]
        work = 1
        for extent in d.extents:
            work *= extent
        config["parallel"] = target.threads > 1 and tiles >= 2 and work >= MIN_PARALLEL_WORK
        return config

    def prepare(self, kernel: Kernel, config: Config) -> None:
        """Nothing: the filter was packed into the blocked layout when the graph was converted."""

    def schedule(self, kernel: Kernel, config: Config, target: CpuMachine, script: Script) -> None:
        s = script
        d = dims_of(kernel)
        k = kernel.index
        s.comment(f"{kernel.name}: {self.name} {config}")
        has_epilogue = kernel.epilogue is not None
        root = s.match_role(kernel.index, "root" if has_epilogue else "main")
        outer_tiles = {"oc": _t(config["tile_oc"], d["oc"]), "oh": _t(config["tile_oh"], d["oh"])}
        if d.grouped:
            outer_tiles["g"] = 1
        if d["n"] > 1:
            outer_tiles["n"] = 1
        outer = d.out_sizes(**outer_tiles) if has_epilogue else d.sizes(**outer_tiles)
        if not any(outer):
            outer = d.out_sizes(ob=d["ob"]) if has_epilogue else d.sizes(ob=d["ob"])  # a loop to anchor on
        if config["parallel"]:
            root, loop = s.tile_forall(root, outer)
            outermost = loop
        else:
            root, loops = s.tile_for(root, outer)
            outermost, loop = loops[0], loops[-1]
        main = root
        if has_epilogue:
            main, loop = s.fuse_into(s.match_role(k, "main"), loop)
        fill = None
        fill_fused = False
        if kernel.fill is not None:
            fill = s.match_role(k, "fill")
            # A serial loop's accumulator is its iter_arg: the fill fuses only into a forall or
            # once the convolution was fused into its epilogue's loop; else it is tiled on its own
            # (over the whole output, not one outer tile).
            if has_epilogue or config["parallel"]:
                fill, loop = s.fuse_into(fill, loop)
                fill_fused = True
        if config["parallel"]:
            outermost = loop
        tile_oc = min(config["tile_oc"], d["oc"])
        tile_oh = min(config["tile_oh"], d["oh"])
        reg = {"oc": _t(config["reg_oc"], tile_oc), "oh": _t(1, tile_oh), "ow": _t(config["reg_n"], d["ow"])}
        g = main
        register_loop = None  # the loop over the register tiles that computes the epilogue too
        if config.get("reg_epilogue"):
            # The epilogue tiled by the register tile, the convolution and its fill fused into that
            # loop: the accumulators start as zero vectors, get the epilogue in registers and are
            # stored once (the vector reads of what was just written fold away).
            root, reg_loops = s.tile_for(root, d.out_sizes(**reg))
            register_loop = reg_loops[-1] if reg_loops else loop
            g, _ = s.fuse_into(main, register_loop)
            if fill is not None:
                fill, _ = s.fuse_into(fill, register_loop)
        else:
            if not self.depthwise and config["tile_ic"] < d["ic"]:
                # The input-channel blocks outside the register tiles: the filter of tile_oc x
                # tile_ic blocks stays in L1 while the register tiles sweep the outer tile's pixels.
                g, _ = s.tile_for(g, d.sizes(ic=config["tile_ic"]))
            g, _ = s.tile_for(g, d.sizes(**reg))
        red_tiles = {"kh": _t(1, d["kh"]), "kw": _t(1, d["kw"])}
        if not self.depthwise:
            red_tiles["ic"] = _t(1, min(config["tile_ic"], d["ic"]))
            red_tiles["ib"] = _t(config["unroll_ib"], d["ib"])
        g, red = s.tile_for(g, d.sizes(**red_tiles))
        columns = None
        if strided(kernel) and config["reg_n"] > 1:
            g, (columns,) = s.tile_for(g, d.sizes(ow=1))
        if self.depthwise or red_tiles.get("ib") == 1:  # no reduction left in the vector op: mul + add
            body = s.fresh("arith")
            s.add(f'{body} = transform.structured.match ops{{["arith.mulf", "arith.addf"]}} in {g} : ({ANY}) -> {ANY}')
            param = s.fresh("contract")
            s.add(f"{param} = transform.param.constant #arith.fastmath<contract> -> !transform.any_param")
            s.add(f'transform.annotate {body} "fastmath" = {param} : {ANY}, !transform.any_param')
        # The epilogue and the fill in vectors of reg_n columns x the channel block.
        rows = d.out_sizes(oc=_t(1, tile_oc), oh=_t(1, tile_oh), ow=_t(config["reg_n"], d["ow"]))
        if d.grouped:
            rows[d.pos("g")] = 0
        whole_rows = d.out_sizes(oc=_t(1, d["oc"]), oh=_t(1, d["oh"]), ow=_t(config["reg_n"], d["ow"]))
        if d.grouped:
            whole_rows[d.pos("g")] = _t(1, d["g"])
        if d["n"] > 1:
            whole_rows[d.pos("n")] = 1
        vector_loops = [red[-1] if red else register_loop]
        if register_loop is not None:
            vector_loops.append(register_loop)  # the fill and the epilogue, register tile sized
        else:
            for op, op_rows in ((root if has_epilogue else None, rows), (fill, rows if fill_fused else whole_rows)):
                if op is not None:
                    _, row_loops = s.tile_for(op, op_rows)
                    vector_loops.append(row_loops[-1] if row_loops else None)
        s.annotate(outermost, OUTER, k)
        for i, vloop in enumerate(vector_loops):
            s.annotate(vloop or outermost, f"{VECTORIZE}{i}", k)
        for depth, rloop in enumerate(reversed(red)):
            s.annotate(rloop, f"{HOIST}{depth}", k)
        if columns is not None:
            s.annotate(columns, COLUMNS, k)
        if red_tiles["kw"] and config["unroll_kw"]:
            order = [name for name in ("ic", "kh", "kw", "ib") if red_tiles.get(name)]
            s.annotate(red[order.index("kw")], KW_LOOP, k)
        s.next_phase()
        outer_loop = s.match_attribute(OUTER, k)
        if columns is not None:
            s.add(f"transform.loop.unroll {s.match_attribute(COLUMNS, k)} {{factor = {config['reg_n']}}} : {ANY}")
        s.patterns(outer_loop, ("transform.apply_patterns.linalg.fold_unit_extent_dims_via_slices",))
        for i in range(len(vector_loops)):
            s.vectorize(s.match_ops(["linalg.generic"], s.match_attribute(f"{VECTORIZE}{i}", k)))
        s.patterns(outer_loop, [p for p in VECTOR_CLEANUP if "canonicalization" not in p])
        for depth in range(len(red)):  # innermost loop first
            s.hoist_accumulator(f"{HOIST}{depth}", k)
        if red_tiles["kw"] and config["unroll_kw"]:
            s.add(f"transform.loop.unroll {s.match_attribute(KW_LOOP, k)} {{factor = {d['kw']}}} : {ANY}")
        s.patterns(outer_loop, VECTOR_CLEANUP)
