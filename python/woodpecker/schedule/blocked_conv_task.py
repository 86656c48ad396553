"""A blocked convolution as a standalone kernel task: its module, its arrays, its reference.

`BlockedConvCase` describes one NCHW[x]c convolution (ONNX Conv attributes, the channel blocks,
bias and an epilogue); `task_of` is its `KernelTask` (what the tuner and the CPU runner take:
`@main(input, side?, filter, bias?)` in linalg on tensors, lowered by lowering/blocked_conv.py);
`blocked_arrays` packs random NCHW data into the blocked operands and `reference` is the
float64 result in the blocked layout (both with ops/layout.py's helpers and semantics). The
benchmark (bench/bench_blocked_convs.py) and the tests (tests/py/test_blocked_conv.py) use them.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from mlir import ir
from mlir.dialects import arith, func

from woodpecker.dialect import create_context
from woodpecker.kernels.naming import GROUP_ATTR
from woodpecker.kernels.task import KernelTask
from woodpecker.lowering.blocked_conv import BlockedGeometry, blocked_convolve
from woodpecker.lowering.common import empty, generic, identity_map, projection_map, tensor_of
from woodpecker.ops.layout import blocked_conv2d, pack_bias, pack_filter, to_blocked

EPILOGUES = ("none", "relu", "add_relu")  # add_relu: a residual operand, then relu


@dataclass(frozen=True)
class BlockedConvCase:
    """One convolution: NCHW shapes and ONNX attributes, channel blocks, bias, epilogue."""

    channels: int
    filters: int
    size: tuple[int, int]  # H, W
    kernel: tuple[int, int] = (3, 3)
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilations: tuple[int, int] = (1, 1)
    groups: int = 1
    block: int = 16  # b_i = b_o
    bias: bool = True
    epilogue: str = "none"
    batch: int = 1

    def __post_init__(self) -> None:
        if self.epilogue not in EPILOGUES:
            raise ValueError(f"epilogue must be one of {EPILOGUES}, got {self.epilogue!r}")
        if self.channels % self.block or self.filters % self.block:
            raise ValueError(f"channels {self.channels} and filters {self.filters} must be multiples of {self.block}")

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.channels == self.filters

    @property
    def input_shape(self) -> tuple[int, ...]:
        b = self.block
        return (self.batch, self.channels // b, *self.size, b)

    @property
    def filter_shape(self) -> tuple[int, ...]:
        b = self.block
        kh, kw = self.kernel
        if self.depthwise:
            return (self.filters // b, 1, kh, kw, 1, b)
        return (self.filters // b, self.channels // self.groups // b, kh, kw, b, b)

    @property
    def geometry(self) -> BlockedGeometry:
        return BlockedGeometry.of(
            self.input_shape, self.filter_shape, self.strides, self.pads, self.dilations, self.groups
        )

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.geometry.output_shape)

    @property
    def arg_shapes(self) -> tuple[tuple[int, ...], ...]:
        shapes = [self.input_shape]
        if self.epilogue == "add_relu":
            shapes.append(self.output_shape)
        shapes.append(self.filter_shape)
        if self.bias:
            shapes.append((self.filters // self.block, self.block))
        return tuple(shapes)

    @property
    def num_weights(self) -> int:
        return 1 + int(self.bias)

    @property
    def flops(self) -> int:
        oh, ow = self.geometry.out_hw
        per_output = (self.channels // self.groups) * self.kernel[0] * self.kernel[1]
        return 2 * self.batch * self.filters * oh * ow * per_output

    def describe(self) -> str:
        kh, kw = self.kernel
        parts = [f"{kh}x{kw}", f"{self.channels}->{self.filters}", f"{self.size[0]}x{self.size[1]}"]
        if self.strides != (1, 1):
            parts.append(f"s{self.strides[0]}")
        if any(self.pads):
            parts.append(f"p{self.pads[0]}")
        if self.depthwise:
            parts.insert(0, "dw")
        elif self.groups > 1:
            parts.append(f"g{self.groups}")
        return " ".join(parts)


def module_text(case: BlockedConvCase) -> str:
    """`@main(input, side?, filter, bias?) -> output` in linalg on tensors."""
    with create_context(), ir.Location.unknown():
        module = ir.Module.create()
        geometry = case.geometry
        out = geometry.output_shape
        with ir.InsertionPoint(module.body):
            fn = func.FuncOp("main", ([tensor_of(s) for s in case.arg_shapes], [tensor_of(out)]))
            block = fn.add_entry_block()
        with ir.InsertionPoint(block):
            args = list(block.arguments)
            x = args.pop(0)
            side = args.pop(0) if case.epilogue == "add_relu" else None
            w = args.pop(0)
            bias = args.pop(0) if case.bias else None
            result = blocked_convolve(x, w, geometry)
            if bias is not None or case.epilogue != "none":
                result = _epilogue(result, bias, side, case.epilogue)
            func.ReturnOp([result])
        group = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 0)
        for op in block.operations:  # one model kernel: the padding copies, the conv, its epilogue
            if op.operation.name != "func.return":
                op.operation.attributes[GROUP_ATTR] = group
        return str(module)


def _epilogue(conv: ir.Value, bias: ir.Value | None, side: ir.Value | None, kind: str) -> ir.Value:
    shape = list(ir.RankedTensorType(conv.type).shape)
    inputs, maps = [conv], [identity_map(5)]
    if bias is not None:
        inputs.append(bias)
        maps.append(projection_map(5, [1, 4]))
    if side is not None:
        inputs.append(side)
        maps.append(identity_map(5))
    maps.append(identity_map(5))

    def body(args: list[ir.Value]) -> ir.Value:
        value = args[0]
        for extra in args[1 : len(inputs)]:
            value = arith.AddFOp(value, extra).result
        if kind != "none":
            zero = arith.ConstantOp(ir.F32Type.get(), 0.0).result
            value = arith.MaximumFOp(value, zero).result
        return value

    return generic(inputs, maps, empty(shape), body)


def task_of(case: BlockedConvCase, device: str = "") -> KernelTask:
    text = module_text(case)
    digest = hashlib.sha1(f"cpu\n{device}\n{text}".encode()).hexdigest()[:12]
    kind = "blocked_depthwise_conv" if case.depthwise else "blocked_conv"
    out = "x".join(map(str, case.output_shape))
    return KernelTask(
        key=f"cpu.{kind}.{out}.{digest}",
        description=f"{kind} {case.describe()}",
        kind=kind,
        template=f"cpu.{kind}",
        target="cpu",
        device=device,
        module_text=text,
        num_weights=case.num_weights,
        arg_shapes=case.arg_shapes,
        output_shape=case.output_shape,
        kernel_name="k0_" + kind,
        flops=case.flops,
    )


# -- numpy: the blocked operands and the float64 reference (ops/layout.py's semantics) ----------


@dataclass
class CaseArrays:
    """NCHW float32 data of a case and its blocked operands (in `arg_shapes` order)."""

    x: np.ndarray
    w: np.ndarray
    bias: np.ndarray | None
    side: np.ndarray | None
    args: list[np.ndarray]


def blocked_arrays(case: BlockedConvCase, seed: int = 0) -> CaseArrays:
    rng = np.random.default_rng(seed)
    b = case.block
    x = rng.standard_normal((case.batch, case.channels, *case.size)).astype(np.float32)
    fan_in = case.channels // case.groups * math.prod(case.kernel)
    w = (rng.standard_normal((case.filters, case.channels // case.groups, *case.kernel)) / math.sqrt(fan_in)).astype(
        np.float32
    )
    bias = rng.standard_normal(case.filters).astype(np.float32) if case.bias else None
    oh, ow = case.geometry.out_hw
    side = (
        rng.standard_normal((case.batch, case.filters, oh, ow)).astype(np.float32)
        if case.epilogue == "add_relu"
        else None
    )
    args = [to_blocked(x, b)]
    if side is not None:
        args.append(to_blocked(side, b))
    args.append(pack_filter(w, case.groups, b, b)[0])
    if bias is not None:
        args.append(pack_bias(bias, b))
    return CaseArrays(x, w, bias, side, args)


def reference(case: BlockedConvCase, arrays: CaseArrays) -> np.ndarray:
    """The float64 result, blocked: `wpk.blocked_conv2d`'s semantics (ops/layout.py) on the packed
    operands, then the residual add and the relu."""
    x = to_blocked(np.asarray(arrays.x, dtype=np.float64), case.block)
    w, groups = pack_filter(np.asarray(arrays.w, dtype=np.float64), case.groups, case.block, case.block)
    bias = None if arrays.bias is None else pack_bias(np.asarray(arrays.bias, dtype=np.float64), case.block)
    out = blocked_conv2d(x, w, bias, case.strides, case.pads, case.dilations, groups)
    if arrays.side is not None:
        out = out + to_blocked(np.asarray(arrays.side, dtype=np.float64), case.block)
    if case.epilogue != "none":
        out = np.maximum(out, 0.0)
    return out
