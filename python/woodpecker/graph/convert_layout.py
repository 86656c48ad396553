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

    def lanes(self) -> int:
        return self.block or vector_lanes()


def parse_options(text: str | None) -> LayoutOptions:
    """`block=N` (N a positive integer) and `force=true|false`; ValueError naming what is wrong."""
    values: dict[str, str] = {}
    for item in (text or "").replace(",", " ").split():
        key, sep, value = item.partition("=")
        if not sep or key not in ("block", "force"):
            raise ValueError(f"{PASS_NAME}: unknown option '{item}' (expected block=N, force=true|false)")
        values[key] = value
    block = values.get("block", "0")
    if not block.isdigit() or ("block" in values and int(block) < 1):
        raise ValueError(f"{PASS_NAME}: block must be a positive integer, got '{block}'")
    force = values.get("force", "false")
    if force not in ("true", "false", "1", "0"):
        raise ValueError(f"{PASS_NAME}: force must be true or false, got '{force}'")
    return LayoutOptions(int(block), force in ("true", "1"))


def convert_layout_pass(options: str | None) -> Callable[[ir.Operation, GraphContext], None]:
    """The pass of `wpk-convert-layout{options}` (passes.py, style "graph_factory")."""
    parsed = parse_options(options)

    def run(root: ir.Operation, graph: GraphContext) -> None:
        convert_layout(root, graph, parsed.lanes(), parsed.force)

    return run


def convert_layout(root: ir.Operation, graph: GraphContext, block: int, force: bool = False) -> None:
    """Converts every `func.func` body of `root` (straight-line wpk code) to blocked regions."""
    for op in root.regions[0].blocks[0].operations:
        if op.operation.name == "func.func":
            for fn_block in op.operation.regions[0].blocks:
                _Converter(graph, block, force).run(fn_block)
    erase_dead_ops(root)


@dataclass
class _Blocked:
    value: ir.Value
    block: int


@dataclass
class _Converter:
    graph: GraphContext
    block: int
    force: bool = False
    # NCHW value (a from_blocked result or any 4-D value reordered once) -> its blocked form, per block.
    blocked: dict[tuple[ir.Value, int], ir.Value] = field(default_factory=dict)
    origin: dict[ir.Value, _Blocked] = field(default_factory=dict)

    def run(self, fn_block: ir.Block) -> None:
        for op in list(fn_block.operations):
            op = op.operation
            if op.name in CONV_OPS:
                self._conv(op)
            elif op.name == "wpk.elementwise":
                self._elementwise(op)
            elif op.name in POOL_OPS:
                self._pool(op)
            elif op.name.startswith("wpk.") and op_step(op, 0) is not None:
                self._step_op(op)

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

    def _is_blocked(self, value: ir.Value) -> bool:
        return value in self.origin

    def _side(self, side: ir.Value, out: list[int], step: Step) -> ir.Value | None:
        """A side operand of an op with NCHW result `out`, for the blocked result; None if it
        cannot be (broadcast along channels, a tensor divisor)."""
        s = shape_of(side)
        if len(s) > 4:
            return None
        s4 = [1] * (4 - len(s)) + s
        if all(d == 1 for d in s4):
            return side  # a scalar broadcasts to any rank
        if s4[1] != out[1]:
            return None
        array = self.graph.array_of(side)
        if array is not None:
            padded = to_blocked(array.reshape(s4), self.block)
            if step.name == "div":
                lanes = np.moveaxis(padded, -1, 2).reshape(s4[0], -1, *s4[2:])
                lanes[:, s4[1] :] = 1.0  # no division by the zero padding
                padded = np.moveaxis(lanes.reshape(s4[0], -1, self.block, *s4[2:]), 2, -1)
            return self.graph.constant(np.ascontiguousarray(padded), f"{_value_name(side)}_blocked")
        if step.name == "div" or len(s) != 4:
            return None
        return self._to_blocked(side, self.block)

    def _sides(self, sides: list[ir.Value], steps: list[Step], out: list[int]) -> list[ir.Value] | None:
        if any(step.name == "rdiv" for step in steps):
            return None
        binary = [step for step in steps if step.binary]
        converted = [self._side(side, out, step) for side, step in zip(sides, binary, strict=True)]
        return None if any(c is None for c in converted) else [c for c in converted if c is not None]

    # -- ops ---------------------------------------------------------------------------

    def _conv(self, op: ir.Operation) -> None:
        fused = as_fused(op)
        x, w, bias = fused.anchor["input"], fused.anchor["filter"], fused.anchor["bias"]
        assert x is not None and w is not None
        filt = self.graph.array_of(w)
        bias_array = None if bias is None else self.graph.array_of(bias)
        out = shape_of(op.results[0])
        if filt is None or (bias is not None and bias_array is None) or len(out) != 4:
            return
        groups, channels = attr_int(op, "groups"), shape_of(x)[1]
        f = filt.shape[0]
        if not self.force and blocks(f, self.block) * self.block > MAX_PADDING * f:
            return
        block_in = 1 if groups == 1 and channels < self.block else self.block
        try:
            packed, blocked_groups = pack_filter(filt, groups, block_in, self.block)
        except ValueError:
            return
        with ir.InsertionPoint(op), op.location:
            sides = self._sides(fused.sides, fused.steps, out)
            if sides is None:
                return
            name = location_name(op)
            anchor = {
                "input": self._to_blocked(x, block_in),
                "filter": self.graph.constant(packed, f"{name}_filter_blocked"),
                "bias": None,
            }
            if bias_array is not None:
                anchor["bias"] = self.graph.constant(pack_bias(bias_array, self.block), f"{name}_bias_blocked")
            attrs = {k: v for k, v in anchor_attributes(op).items()}
            attrs["groups"] = i64_attr(blocked_groups)
            result = tensor_type([out[0], blocks(f, self.block), out[2], out[3], self.block])
            new = build("wpk.blocked_conv2d", anchor, sides, fused.steps, result, attrs)
            self._leave(op, new, f)

    def _elementwise(self, op: ir.Operation) -> None:
        fused = unpack(op)
        x = fused.anchor["input"]
        assert x is not None
        self._blocked_elementwise(op, x, fused.sides, fused.steps)

    def _step_op(self, op: ir.Operation) -> None:
        """A plain elementwise op (wpk.relu, wpk.add, ...; not fused below opt level 2)."""
        operands = list(op.operands)
        for position in range(len(operands)):
            step = op_step(op, position)
            if step is None or shape_of(operands[position]) != shape_of(op.results[0]):
                continue
            sides = [operands[1 - position]] if step.binary else []
            self._blocked_elementwise(op, operands[position], sides, [step])
            return

    def _blocked_elementwise(self, op: ir.Operation, x: ir.Value, sides: list[ir.Value], steps: list[Step]) -> None:
        """`op` computing `steps` from `x` as a wpk.elementwise on blocked tensors, when one of its
        operands comes from the layout and the others can follow."""
        out = shape_of(op.results[0])
        if len(out) != 4 or shape_of(x) != out or not any(self._is_blocked(v) for v in [x, *sides]):
            return
        with ir.InsertionPoint(op), op.location:
            blocked_sides = self._sides(sides, steps, out)
            if blocked_sides is None:
                return
            result = tensor_type([out[0], blocks(out[1], self.block), out[2], out[3], self.block])
            new = build("wpk.elementwise", {"input": self._to_blocked(x, self.block)}, blocked_sides, steps, result)
            self._leave(op, new, out[1])

    def _pool(self, op: ir.Operation) -> None:
        x = op.operands[0]
        if not self._is_blocked(x):
            return
        out = shape_of(op.results[0])
        with ir.InsertionPoint(op), op.location:
            source = self._to_blocked(x, self.block)
            result = tensor_type([*shape_of(source)[:2], *out[2:], self.block])
            attrs = {name: attr for name, attr in op.attributes.items()}
            new = create_op(op.name, [source], [result], attrs)
            self._leave(op, new, out[1])


def _value_name(value: ir.Value) -> str:
    owner = producer(value)
    return "arg" if owner is None else location_name(owner)


__all__ = ["PASS_NAME", "LayoutOptions", "convert_layout", "convert_layout_pass", "parse_options"]
