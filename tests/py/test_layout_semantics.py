"""The blocked layout ops' numpy semantics (ops/layout.py) against the plain NCHW ops."""

from __future__ import annotations

import numpy as np
import pytest

from woodpecker.ops import OpArgs, ShapeRuleError, semantics_of
from woodpecker.ops.conv import conv2d
from woodpecker.ops.layout import from_blocked, pack_bias, pack_filter, to_blocked

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("channels,block", [(3, 8), (16, 16), (24, 16), (40, 8)])
def test_to_blocked_round_trip_and_zero_padding(channels: int, block: int) -> None:
    x = RNG.standard_normal((2, channels, 3, 5))
    blocked = semantics_of("wpk.to_blocked").run(OpArgs({"input": x}, {"block": block}))
    assert blocked.shape == (2, -(-channels // block), 3, 5, block)
    assert blocked[0, 1 // block, 2, 4, 1 % block] == x[0, 1, 2, 4]
    padding = np.moveaxis(blocked, -1, 2).reshape(2, -1, 3, 5)[:, channels:]
    assert not padding.any()
    back = semantics_of("wpk.from_blocked").run(OpArgs({"input": blocked}, {"channels": channels}))
    np.testing.assert_array_equal(back, x)


def test_from_blocked_rejects_channels_outside_the_blocks() -> None:
    with pytest.raises(ShapeRuleError, match="does not fit 2 blocks of 16"):
        semantics_of("wpk.from_blocked").result_shape(OpArgs({"input": [1, 2, 4, 4, 16]}, {"channels": 40}))


CASES = [
    # channels, filters, groups, input block, output block
    (3, 20, 1, 3, 8),  # a first conv: the 3 input channels as one block
    (24, 24, 24, 16, 16),  # depthwise, channels padded to 32
    (32, 64, 2, 16, 16),  # grouped
    (20, 16, 1, 8, 8),  # input channels padded
]


@pytest.mark.parametrize("c,o,groups,bin_,bout", CASES)
def test_blocked_conv2d_is_the_conv_in_the_blocked_layout(c: int, o: int, groups: int, bin_: int, bout: int) -> None:
    x, w = RNG.standard_normal((2, c, 9, 8)), RNG.standard_normal((o, c // groups, 3, 3))
    bias, side = RNG.standard_normal(o), RNG.standard_normal((2, o, 5, 5))
    packed, blocked_groups = pack_filter(w, groups, bin_, bout)
    attrs = {"strides": [2, 1], "pads": [1, 0, 1, 1], "dilations": [1, 2], "groups": blocked_groups}
    fused = {**attrs, "epilogue": ["add", "relu"], "epilogue_params": []}
    operands = {"input": to_blocked(x, bin_), "filter": packed, "bias": pack_bias(bias, bout)}
    operands["side0"] = to_blocked(side, bout)
    sem = semantics_of("wpk.blocked_conv2d")
    got = sem.run(OpArgs(operands, fused))
    shapes = {k: list(v.shape) for k, v in operands.items()}
    assert sem.result_shape(OpArgs(shapes, fused)) == list(got.shape)
    want = np.maximum(conv2d(x, w, bias, attrs["strides"], attrs["pads"], attrs["dilations"], groups) + side, 0)
    np.testing.assert_allclose(from_blocked(got, o), want, rtol=1e-12, atol=1e-12)


def test_blocked_conv2d_shape_errors_name_the_operand() -> None:
    sem = semantics_of("wpk.blocked_conv2d")
    attrs = {"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1], "groups": 1}
    attrs |= {"epilogue": [], "epilogue_params": []}
    with pytest.raises(ShapeRuleError, match="reads 32 input channels, the input has 16"):
        sem.result_shape(OpArgs({"input": [1, 1, 4, 4, 16], "filter": [1, 2, 1, 1, 16, 16]}, attrs))
    with pytest.raises(ShapeRuleError, match="bias shape"):
        sem.result_shape(OpArgs({"input": [1, 1, 4, 4, 16], "filter": [1, 1, 1, 1, 16, 16], "bias": [16]}, attrs))
