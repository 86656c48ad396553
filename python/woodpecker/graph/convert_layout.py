"""`wpk-convert-layout{block=N}`: convolution regions in the blocked channel layout NCHW[N]c.

After fusion, every convolution (`wpk.conv2d`, `wpk.fused_conv2d`) with a constant filter
whose channels fit the blocks becomes a `wpk.blocked_conv2d` (ops/layout.py) with its filter
and bias packed here, at compile time. The ops that only need each channel's own data follow
their blocked producers into the layout: `wpk.elementwise` and the plain elementwise ops
(residual adds, per-channel scale and shift: constant side operands are repacked, tensor ones
reordered) and max/avg pooling.
A value leaves the layout through `wpk.from_blocked` where an op that is not layout-aware uses
it (flatten, gemm, softmax, reshape, global pooling, the function's results) and enters it
through `wpk.to_blocked` (the graph inputs, any NCHW producer); a to_blocked of a value that
came out of the layout reuses the blocked value, so reorders stay at the region boundaries.

N is the host's vector width in f32 lanes (runtime.cpu.host.vector_lanes: 16 with AVX-512,
8 with AVX2) unless given. A first convolution with fewer input channels than N reads its input
in blocks of one channel (NCHW order in memory, the input of oneDNN's first-layer kernels), not
padded to N. Not converted (left NCHW): a
convolution whose output channels would be padded by more than half (unless `force`), a grouped convolution
whose per-group channel counts are not block multiples, an elementwise op dividing by a
tensor or with the running value as divisor (padding lanes would become inf/NaN), or with an
operand broadcast along channels.

Regions: a region is a connected set of ops the rule puts in the layout (joined through blocked
values), named by its first convolution's node name (`regions_of` lists them without building
anything). `regions=name:choice,...` fixes a region's choice, `nchw` or a block size: its
convolutions convert with that block where the rule's padding and group checks allow at it,
and the ops following them take their block; a region not listed keeps the rule, a name that
is no region is an error naming it. tune/layout_search.py measures the choices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from mlir import ir

from woodpecker.dialect import attr_int, create_op, i64_attr, shape_of, tensor_type
from woodpecker.graph.context import GraphContext
from woodpecker.graph.rewrite import erase_dead_ops, location_name, producer
from woodpecker.ops.fused_layout import anchor_attributes, as_fused, build, unpack
from woodpecker.ops.layout import blocks, pack_bias, pack_filter, to_blocked
from woodpecker.ops.registry import op_step
from woodpecker.ops.steps import Step
from woodpecker.runtime.cpu.host import vector_lanes

PASS_NAME = "wpk-convert-layout"
CONV_OPS = ("wpk.conv2d", "wpk.fused_conv2d")
POOL_OPS = ("wpk.max_pool", "wpk.avg_pool")
MAX_PADDING = 1.5  # a conv converts when blocks(O) * N <= MAX_PADDING * O


@dataclass(frozen=True)
class LayoutOptions:
    """The pass options: `block` lanes per channel block (0: the host's vector width); `force`:
    also the convs whose output channels the blocks would pad by more than half."""

    block: int = 0
    force: bool = False
    # region name -> "nchw" or a block size (a region not listed: the rule's block).
    regions: tuple[tuple[str, str], ...] = ()

    def lanes(self) -> int:
        return self.block or vector_lanes()


NCHW = "nchw"


@dataclass(frozen=True)
class RegionConv:
    """One convolution of a region: its node name and channels in and out."""

    name: str
    in_channels: int
    out_channels: int


@dataclass(frozen=True)
class Region:
    """A connected set of ops the rule puts in the blocked layout, named by its first conv."""

    name: str
    convs: tuple[RegionConv, ...]


def parse_regions(text: str) -> tuple[tuple[str, str], ...]:
    """`name:choice,name:choice` (choice nchw or a positive block size); ValueError naming what is wrong."""
    choices: list[tuple[str, str]] = []
    for item in (p for p in text.split(",") if p):
        name, sep, choice = item.rpartition(":")
        if not sep or not name or not (choice == NCHW or (choice.isdigit() and int(choice) >= 1)):
            raise ValueError(f"{PASS_NAME}: bad region choice '{item}' (expected name:nchw or name:<block>)")
        choices.append((name, choice))
    return tuple(choices)


def format_regions(choices: dict[str, str] | tuple[tuple[str, str], ...]) -> str:
    """The `regions=` option value of `choices` (parse_regions' inverse)."""
    items = choices.items() if isinstance(choices, dict) else choices
    return ",".join(f"{name}:{choice}" for name, choice in items)


def parse_options(text: str | None) -> LayoutOptions:
    """`block=N` (N a positive integer), `force=true|false` and `regions=name:choice,...`;
    ValueError naming what is wrong."""
    values: dict[str, str] = {}
    last = ""
    for item in (text or "").replace(",", " ").split():
        key, sep, value = item.partition("=")
        if not sep and last == "regions" and ":" in item:
            values["regions"] += "," + item  # regions=a:8,b:nchw (the commas split it above)
            continue
        if not sep or key not in ("block", "force", "regions"):
            raise ValueError(
                f"{PASS_NAME}: unknown option '{item}' (expected block=N, force=true|false, regions=name:choice,...)"
            )
        values[key], last = value, key
    block = values.get("block", "0")
    if not block.isdigit() or ("block" in values and int(block) < 1):
        raise ValueError(f"{PASS_NAME}: block must be a positive integer, got '{block}'")
    force = values.get("force", "false")
    if force not in ("true", "false", "1", "0"):
        raise ValueError(f"{PASS_NAME}: force must be true or false, got '{force}'")
    return LayoutOptions(int(block), force in ("true", "1"), parse_regions(values.get("regions", "")))


def convert_layout_pass(options: str | None) -> Callable[[ir.Operation, GraphContext], None]:
    """The pass of `wpk-convert-layout{options}` (passes.py, style "graph_factory")."""
    parsed = parse_options(options)

    def run(root: ir.Operation, graph: GraphContext) -> None:
        convert_layout(root, graph, parsed.lanes(), parsed.force, dict(parsed.regions))

    return run


def _function_blocks(root: ir.Operation) -> list[ir.Block]:
    return [
        fn_block
        for op in root.regions[0].blocks[0].operations
        if op.operation.name == "func.func"
        for fn_block in op.operation.regions[0].blocks
    ]


def regions_of(root: ir.Operation, graph: GraphContext, block: int, force: bool = False) -> list[Region]:
    """The regions the rule (block `block`) would put in the blocked layout, in program order;
    changes nothing."""
    return [region for fn_block in _function_blocks(root) for region in _plan(fn_block, graph, block, force)[0]]


def convert_layout(
    root: ir.Operation, graph: GraphContext, block: int, force: bool = False, regions: dict[str, str] | None = None
) -> None:
    """Converts every `func.func` body of `root` (straight-line wpk code) to blocked regions;
    `regions`: region name -> "nchw" or a block size (the others: `block`)."""
    wanted = dict(regions or {})
    plans = [_plan(fn_block, graph, block, force) for fn_block in _function_blocks(root)]
    names = [region.name for found, _ in plans for region in found]
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise ValueError(f"no region named '{unknown[0]}' (regions: {', '.join(names) or 'none'})")
    for fn_block, (_, conv_region) in zip(_function_blocks(root), plans, strict=True):
        conv_block = {
            conv: None if wanted.get(name) == NCHW else int(wanted.get(name, block))
            for conv, name in conv_region.items()
        }
        _Converter(graph, block, force, conv_block).run(fn_block)
    erase_dead_ops(root)


def _conv_fits(graph: GraphContext, op: ir.Operation, block: int, force: bool) -> int | None:
    """The input block of conv `op` in blocks of `block` (1: a first conv reading NCHW), None if
    the rule leaves it NCHW (no constant filter or bias, padding, groups, side operands)."""
    fused = as_fused(op)
    x, w, bias = fused.anchor["input"], fused.anchor["filter"], fused.anchor["bias"]
    assert x is not None and w is not None
    filt = graph.array_of(w)
    out = shape_of(op.results[0])
    if filt is None or (bias is not None and graph.array_of(bias) is None) or len(out) != 4:
        return None
    groups, channels = attr_int(op, "groups"), shape_of(x)[1]
    f, cg = filt.shape[0], filt.shape[1]
    if not force and blocks(f, block) * block > MAX_PADDING * f:
        return None
    block_in = 1 if groups == 1 and channels < block else block
    # pack_filter's condition (ops/layout.py): dense, depthwise, or groups of whole blocks
    if groups != 1 and not (cg == 1 and f == groups) and ((f // groups) % block != 0 or cg % block_in != 0):
        return None
    if _sides_fit(fused.sides, fused.steps, out, graph) is None:
        return None
    return block_in


def _side_kind(side: ir.Value, out: list[int], step: Step, constant: bool) -> str | None:
    """How a side operand of an op with NCHW result `out` follows it into the layout: "scalar"
    (as is), "constant" (repacked), "tensor" (reordered); None if it cannot."""
    s = shape_of(side)
    if len(s) > 4:
        return None
    s4 = [1] * (4 - len(s)) + s
    if all(d == 1 for d in s4):
        return "scalar"
    if s4[1] != out[1]:
        return None
    if constant:
        return "constant"
    if step.name == "div" or len(s) != 4:
        return None
    return "tensor"


def _sides_fit(
    sides: list[ir.Value], steps: list[Step], out: list[int], graph: GraphContext | None = None
) -> list[str] | None:
    """The `_side_kind` of each side operand (None if one cannot follow or a step divides by the value)."""
    if any(step.name == "rdiv" for step in steps):
        return None
    binary = [step for step in steps if step.binary]
    kinds = [
        _side_kind(side, out, step, graph is not None and graph.array_of(side) is not None)
        for side, step in zip(sides, binary, strict=True)
    ]
    return None if any(k is None for k in kinds) else [k for k in kinds if k is not None]


def _step_operands(op: ir.Operation) -> tuple[ir.Value, list[ir.Value], list[Step]] | None:
    """A plain elementwise op's running operand, side operands and step (None if none fits)."""
    operands = list(op.operands)
    for position in range(len(operands)):
        step = op_step(op, position)
        if step is None or shape_of(operands[position]) != shape_of(op.results[0]):
            continue
        return operands[position], ([operands[1 - position]] if step.binary else []), [step]
    return None


def _follower_operands(op: ir.Operation) -> tuple[ir.Value, list[ir.Value], list[Step]] | None:
    """(input, sides, steps) of an elementwise op, which follows blocked operands into the layout; else None."""
    if op.name == "wpk.elementwise":
        fused = unpack(op)
        x = fused.anchor["input"]
        assert x is not None
        return x, fused.sides, fused.steps
    if op.name.startswith("wpk.") and op_step(op, 0) is not None:
        return _step_operands(op)
    return None


def _plan(fn_block: ir.Block, graph: GraphContext, block: int, force: bool) -> tuple[list[Region], dict[ir.Value, str]]:
    """The rule's regions of `fn_block` and each converted conv's (result) region name, by the
    decisions the converter makes, without building anything."""
    parent: dict[int, int] = {}

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    node_of: dict[ir.Value, int] = {}  # a value the rule makes blocked -> its node
    convs: list[tuple[int, ir.Value, RegionConv]] = []
    for op in list(fn_block.operations):
        op = op.operation
        joined: list[ir.Value] = []
        if op.name in CONV_OPS:
            block_in = _conv_fits(graph, op, block, force)
            if block_in is None:
                continue
            x = as_fused(op).anchor["input"]
            joined = [x] if block_in == block else []
        elif op.name in POOL_OPS:
            if op.operands[0] not in node_of:
                continue
            joined = [op.operands[0]]
        else:
            follower = _follower_operands(op)
            if follower is None:
                continue
            x, sides, steps = follower
            out = shape_of(op.results[0])
            if len(out) != 4 or shape_of(x) != out or not any(v in node_of for v in [x, *sides]):
                continue
            if _sides_fit(sides, steps, out, graph) is None:
                continue
            joined = [x, *sides]
        node = len(parent)
        parent[node] = node
        for value in joined:
            if value in node_of:
                parent[find(node_of[value])] = node
        node_of[op.results[0]] = node
        if op.name in CONV_OPS:
            x = as_fused(op).anchor["input"]
            assert x is not None
            out_channels = shape_of(op.results[0])[1]
            convs.append((node, op.results[0], RegionConv(location_name(op), shape_of(x)[1], out_channels)))
    members: dict[int, list[tuple[ir.Value, RegionConv]]] = {}
    for node, result, conv in convs:
        members.setdefault(find(node), []).append((result, conv))
    regions = [Region(group[0][1].name, tuple(conv for _, conv in group)) for group in members.values()]
    conv_region = {result: group[0][1].name for group in members.values() for result, _ in group}
    return regions, conv_region


@dataclass
class _Blocked:
    value: ir.Value
    block: int


@dataclass
class _Converter:
    graph: GraphContext
    block: int
    force: bool = False
    # conv result -> its block (None: left NCHW); a conv not listed is left NCHW.
    conv_block: dict[ir.Value, int | None] = field(default_factory=dict)
    # NCHW value (a from_blocked result or any 4-D value reordered once) -> its blocked form, per block.
    blocked: dict[tuple[ir.Value, int], ir.Value] = field(default_factory=dict)
    origin: dict[ir.Value, _Blocked] = field(default_factory=dict)

    def run(self, fn_block: ir.Block) -> None:
        for op in list(fn_block.operations):
            op = op.operation
            if op.name in CONV_OPS:
                self._conv(op)
            elif op.name in POOL_OPS:
                self._pool(op)
            else:
                follower = _follower_operands(op)
                if follower is not None:
                    self._blocked_elementwise(op, *follower)

    # -- values ------------------------------------------------------------------------

    def _to_blocked(self, value: ir.Value, block: int) -> ir.Value:
        """The blocked form of a 4-D NCHW value (reusing the one it came from)."""
        known = self.blocked.get((value, block))
        if known is not None:
            return known
        array = self.graph.array_of(value)
        if array is not None:
            result = self.graph.constant(to_blocked(array, block), f"{_value_name(value)}_blocked")
        else:
            n, c, *rest = shape_of(value)
            result_type = tensor_type([n, blocks(c, block), *rest, block])
            result = create_op("to_blocked", [value], [result_type], {"block": i64_attr(block)}).result
        self.blocked[(value, block)] = result
        return result

    def _leave(self, old: ir.Operation, new: ir.Operation, channels: int) -> None:
        """Replaces `old` by `from_blocked(new)` and remembers the blocked value."""
        back = create_op("from_blocked", [new.results[0]], [old.results[0].type], {"channels": i64_attr(channels)})
        old.results[0].replace_all_uses_with(back.results[0])
        block = shape_of(new.results[0])[-1]
        self.blocked[(back.results[0], block)] = new.results[0]
        self.origin[back.results[0]] = _Blocked(new.results[0], block)
        old.erase()

    def _block_of(self, values: list[ir.Value]) -> int | None:
        """The block of the first of `values` that comes from the layout (None: none does)."""
        return next((self.origin[v].block for v in values if v in self.origin), None)

    def _side(self, side: ir.Value, kind: str, out: list[int], step: Step, block: int) -> ir.Value:
        """A side operand of an op with NCHW result `out`, for the blocked result (`_side_kind` `kind`)."""
        if kind == "scalar":
            return side  # a scalar broadcasts to any rank
        if kind == "tensor":
            return self._to_blocked(side, block)
        array = self.graph.array_of(side)
        assert array is not None
        s = shape_of(side)
        s4 = [1] * (4 - len(s)) + s
        padded = to_blocked(array.reshape(s4), block)
        if step.name == "div":
            lanes = np.moveaxis(padded, -1, 2).reshape(s4[0], -1, *s4[2:])
            lanes[:, s4[1] :] = 1.0  # no division by the zero padding
            padded = np.moveaxis(lanes.reshape(s4[0], -1, block, *s4[2:]), 2, -1)
        return self.graph.constant(np.ascontiguousarray(padded), f"{_value_name(side)}_blocked")

    def _sides(self, sides: list[ir.Value], steps: list[Step], out: list[int], block: int) -> list[ir.Value] | None:
        kinds = _sides_fit(sides, steps, out, self.graph)
        if kinds is None:
            return None
        binary = [step for step in steps if step.binary]
        return [self._side(side, kind, out, step, block) for side, kind, step in zip(sides, kinds, binary, strict=True)]

    # -- ops ---------------------------------------------------------------------------

    def _conv(self, op: ir.Operation) -> None:
        block = self.conv_block.get(op.results[0])
        if block is None:
            return
        block_in = _conv_fits(self.graph, op, block, self.force)
        if block_in is None:
            return
        fused = as_fused(op)
        x, w, bias = fused.anchor["input"], fused.anchor["filter"], fused.anchor["bias"]
        assert x is not None and w is not None
        filt = self.graph.array_of(w)
        assert filt is not None
        bias_array = None if bias is None else self.graph.array_of(bias)
        out = shape_of(op.results[0])
        f = filt.shape[0]
        packed, blocked_groups = pack_filter(filt, attr_int(op, "groups"), block_in, block)
        with ir.InsertionPoint(op), op.location:
            sides = self._sides(fused.sides, fused.steps, out, block)
            assert sides is not None  # _conv_fits checked them
            name = location_name(op)
            anchor = {
                "input": self._to_blocked(x, block_in),
                "filter": self.graph.constant(packed, f"{name}_filter_blocked"),
                "bias": None,
            }
            if bias_array is not None:
                anchor["bias"] = self.graph.constant(pack_bias(bias_array, block), f"{name}_bias_blocked")
            attrs = {k: v for k, v in anchor_attributes(op).items()}
            attrs["groups"] = i64_attr(blocked_groups)
            result = tensor_type([out[0], blocks(f, block), out[2], out[3], block])
            new = build("wpk.blocked_conv2d", anchor, sides, fused.steps, result, attrs)
            self._leave(op, new, f)

    def _blocked_elementwise(self, op: ir.Operation, x: ir.Value, sides: list[ir.Value], steps: list[Step]) -> None:
        """`op` computing `steps` from `x` as a wpk.elementwise on blocked tensors, when one of its
        operands comes from the layout (in that one's block) and the others can follow."""
        out = shape_of(op.results[0])
        block = self._block_of([x, *sides])
        if len(out) != 4 or shape_of(x) != out or block is None:
            return
        with ir.InsertionPoint(op), op.location:
            blocked_sides = self._sides(sides, steps, out, block)
            if blocked_sides is None:
                return
            result = tensor_type([out[0], blocks(out[1], block), out[2], out[3], block])
            new = build("wpk.elementwise", {"input": self._to_blocked(x, block)}, blocked_sides, steps, result)
            self._leave(op, new, out[1])

    def _pool(self, op: ir.Operation) -> None:
        x = op.operands[0]
        block = self._block_of([x])
        if block is None:
            return
        out = shape_of(op.results[0])
        with ir.InsertionPoint(op), op.location:
            source = self._to_blocked(x, block)
            result = tensor_type([*shape_of(source)[:2], *out[2:], block])
            attrs = {name: attr for name, attr in op.attributes.items()}
            new = create_op(op.name, [source], [result], attrs)
            self._leave(op, new, out[1])


def _value_name(value: ir.Value) -> str:
    owner = producer(value)
    return "arg" if owner is None else location_name(owner)


__all__ = [
    "NCHW",
    "PASS_NAME",
    "LayoutOptions",
    "Region",
    "RegionConv",
    "convert_layout",
    "convert_layout_pass",
    "format_regions",
    "parse_options",
    "parse_regions",
    "regions_of",
]
