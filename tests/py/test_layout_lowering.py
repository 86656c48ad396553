"""Lowering of the blocked layout ops (lowering/layout.py), JIT-run against their numpy semantics."""

from __future__ import annotations

import numpy as np
import pytest
from mlir import ir
from mlir.dialects import func
from mlir.passmanager import PassManager
from test_lowering import Builder, Lowered, _attrs, check, rand

from woodpecker.backend import compile_cpu
from woodpecker.backend.cpu import CpuOptions
from woodpecker.dialect import create_context, create_op, tensor_type, weight_attr
from woodpecker.lowering import PASS_NAME, lower_to_linalg
from woodpecker.ops import OpArgs, semantics_of
from woodpecker.ops.fused_layout import build
from woodpecker.ops.layout import blocked_conv2d_shape, pack_bias, pack_filter, to_blocked
from woodpecker.ops.steps import Step


def lower_and_run(inputs: list[np.ndarray], out_shapes: list[list[int]], build_ops: Builder) -> Lowered:
    """test_lowering.lower_and_run, except that the lowered IR may carry the blocked conv's
    `wpk.*` tags (attributes): it checks that no wpk op is left."""
    inputs = [np.ascontiguousarray(a, dtype=np.float32) for a in inputs]
    with create_context() as ctx, ir.Location.unknown():
        module = ir.Module.create()
        types = ([tensor_type(a.shape) for a in inputs], [tensor_type(s) for s in out_shapes])
        with ir.InsertionPoint(module.body):
            fn = func.FuncOp("main", types)
            with ir.InsertionPoint(fn.add_entry_block()):
                func.ReturnOp(build_ops(list(fn.entry_block.arguments)))
        pm = PassManager(context=ctx)
        pm.add(lower_to_linalg, name=PASS_NAME)
        pm.run(module.operation)
        assert module.operation.verify()
        left: list[str] = []

        def visit(op: ir.Operation) -> ir.WalkResult:
            if op.name.startswith("wpk."):
                left.append(op.name)
            return ir.WalkResult.ADVANCE

        module.operation.walk(visit)
        assert not left
        text = str(module)
        exe = compile_cpu(module, CpuOptions(parallel=False, llvm_opt_level=2))
    return Lowered(text, exe(inputs))


@pytest.mark.parametrize("channels,block", [(3, 8), (16, 16), (20, 8)])
def test_to_and_from_blocked(channels: int, block: int) -> None:
    x = rand(2, channels, 3, 4)
    cb = -(-channels // block)

    def ops(args: list[ir.Value]) -> list[ir.Value]:
        blocked = create_op("to_blocked", [args[0]], [tensor_type([2, cb, 3, 4, block])], _attrs({"block": block}))
        back = create_op("from_blocked", [blocked.result], [tensor_type(x.shape)], _attrs({"channels": channels}))
        return [blocked.result, back.result]

    lowered = lower_and_run([x], [[2, cb, 3, 4, block], list(x.shape)], ops)
    check(lowered.outputs[0], to_blocked(x.astype(np.float64), block))
    check(lowered.outputs[1], x.astype(np.float64))


CASES = [
    # channels, filters, groups, input block, output block, strides, pads, dilations
    (16, 32, 1, 16, 16, [1, 1], [1, 1, 1, 1], [1, 1]),
    (3, 20, 1, 3, 8, [2, 2], [3, 3, 3, 3], [1, 1]),  # first conv: 3 channels as one block
    (20, 8, 1, 8, 8, [1, 2], [0, 1, 1, 0], [2, 1]),  # input channels padded
    (24, 24, 24, 16, 16, [2, 2], [1, 1, 1, 1], [1, 1]),  # depthwise, padded to 32
    (32, 32, 2, 16, 16, [1, 1], [1, 1, 1, 1], [1, 1]),  # grouped
    (16, 16, 1, 16, 8, [1, 1], [0, 0, 0, 0], [1, 1]),  # output block differs
]


@pytest.mark.parametrize("c,o,groups,bin_,bout,strides,pads,dilations", CASES)
def test_blocked_conv2d_with_bias_and_epilogue(
    c: int, o: int, groups: int, bin_: int, bout: int, strides: list[int], pads: list[int], dilations: list[int]
) -> None:
    x = to_blocked(rand(1, c, 9, 10), bin_).astype(np.float32)
    w, bg = pack_filter(rand(o, c // groups, 3, 3, seed=1), groups, bin_, bout)
    bias = pack_bias(rand(o, seed=2), bout)
    attrs = {"strides": strides, "pads": pads, "dilations": dilations, "groups": bg}
    shapes = {"input": list(x.shape), "filter": list(w.shape), "bias": list(bias.shape)}
    epilogue = {"epilogue": ["add", "relu"], "epilogue_params": []}
    sem = semantics_of("wpk.blocked_conv2d")
    out = blocked_conv2d_shape(OpArgs(shapes, attrs))
    side = rand(*out, seed=3)

    def ops(args: list[ir.Value]) -> list[ir.Value]:
        weights = [
            create_op("weight", [], [tensor_type(a.shape)], {"value": weight_attr(a, n)}).result
            for a, n in ((w, "w"), (bias, "b"))
        ]
        anchor = {"input": args[0], "filter": weights[0], "bias": weights[1]}
        op = build(
            "wpk.blocked_conv2d", anchor, [args[1]], [Step("add"), Step("relu")], tensor_type(out), _attrs(attrs)
        )
        return [op.result]

    lowered = lower_and_run([x, side], [out], ops)
    assert 'wpk.named_op = "wpk.blocked_conv2d"' in lowered.ir_text
    want = sem.run(OpArgs({"input": x, "filter": w, "bias": bias, "side0": side}, {**attrs, **epilogue}))
    check(lowered.outputs[0], want)


@pytest.mark.parametrize("name", ["max_pool", "avg_pool"])
def test_pooling_on_blocked_tensors(name: str) -> None:
    x = to_blocked(rand(1, 24, 9, 9), 16).astype(np.float32)
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "dilations": [1, 1], "ceil_mode": False}
    if name == "avg_pool":
        attrs["count_include_pad"] = False
    out = [1, 2, 5, 5, 16]

    def ops(args: list[ir.Value]) -> list[ir.Value]:
        return [create_op(name, [args[0]], [tensor_type(out)], _attrs(attrs)).result]

    lowered = lower_and_run([x], [out], ops)
    sem = semantics_of(f"wpk.{name}")
    want = sem.run(OpArgs({"input": x}, attrs, tuple(out)))
    plain = sem.run(OpArgs({"input": np.moveaxis(x, 4, 2).reshape(1, 32, 9, 9)}, attrs, (1, 32, 5, 5)))
    np.testing.assert_allclose(np.moveaxis(want, 4, 2).reshape(1, 32, 5, 5), plain)
    check(lowered.outputs[0], want)
