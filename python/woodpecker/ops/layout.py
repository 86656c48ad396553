"""The blocked channel layout NCHW[b]c: `wpk.to_blocked`, `wpk.from_blocked`, `wpk.blocked_conv2d`.

A tensor (N, C, *spatial) is held as (N, ceil(C/b), *spatial, b), channel c at
[n, c // b, ..., c % b]; the lanes past C are zeros after to_blocked and are ignored by every
consumer (from_blocked drops them). `blocked_conv2d` convolves a blocked input with a filter
packed at compile time (`pack_filter`) into (OB, CBg, KH, KW, bi, bo) and a bias (OB, bo), then
applies an epilogue of steps as wpk.fused_conv2d does (ops/fused.py registers it as a fused
kind). The numpy helpers here (to_blocked, from_blocked, pack_filter, pack_bias) are the one
implementation of the layout: the semantics, wpk-convert-layout's compile-time packing and the
tests use them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.conv import conv2d, conv2d_shape
from woodpecker.ops.fused import FusedKind, register_fused
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import expect_rank, fail, fmt


def blocks(channels: int, block: int) -> int:
    """ceil(channels / block)."""
    return -(-channels // block)


def to_blocked(x: np.ndarray, block: int) -> np.ndarray:
    """(N, C, *spatial) -> (N, ceil(C/block), *spatial, block), padding lanes zero."""
    x = np.asarray(x)
    n, c, *spatial = x.shape
    cb = blocks(c, block)
    padded = np.zeros((n, cb * block, *spatial), dtype=x.dtype)
    padded[:, :c] = x
    blocked = padded.reshape(n, cb, block, *spatial)
    return np.moveaxis(blocked, 2, -1).copy()


def from_blocked(x: np.ndarray, channels: int) -> np.ndarray:
    """(N, CB, *spatial, b) -> (N, channels, *spatial)."""
    x = np.asarray(x)
    n, cb, *spatial, b = x.shape
    unblocked = np.moveaxis(x, -1, 2).reshape(n, cb * b, *spatial)
    return unblocked[:, :channels].copy()


def pack_filter(w: np.ndarray, groups: int, block_in: int, block_out: int) -> tuple[np.ndarray, int]:
    """An FCHW filter of a conv with `groups` groups packed as (OB, CBg, KH, KW, bi, bo) for
    inputs in blocks of `block_in`, outputs in blocks of `block_out`.

    Returns the packed filter and the blocked op's `groups` (the padded channel count for a
    depthwise conv). groups == 1: bi = block_in, the input channels padded to CBg * bi (zeros);
    depthwise (groups == C == O): bi = CBg = 1, the output channels padded to OB * bo; other
    groups: per-group input and output counts must be multiples of the blocks (ValueError).
    """
    w = np.asarray(w)
    f, cg, kh, kw = w.shape
    if groups == 1:
        bi, out_groups = block_in, 1
    elif cg == 1 and f == groups:
        bi, out_groups = 1, blocks(f, block_out) * block_out
    else:
        if (f // groups) % block_out != 0 or cg % block_in != 0:
            raise ValueError(f"grouped conv ({groups} groups of {cg} -> {f // groups}) does not fit blocks")
        bi, out_groups = block_in, groups
    ob, cbg = blocks(f, block_out), blocks(cg, bi)
    padded = np.zeros((ob * block_out, cbg * bi, kh, kw), dtype=w.dtype)
    padded[:f, :cg] = w
    packed = padded.reshape(ob, block_out, cbg, bi, kh, kw).transpose(0, 2, 4, 5, 3, 1)
    return np.ascontiguousarray(packed), out_groups


def pack_bias(bias: np.ndarray, block_out: int) -> np.ndarray:
    """(O,) -> (OB, bo), padding zero."""
    bias = np.asarray(bias)
    ob = blocks(bias.shape[0], block_out)
    padded = np.zeros(ob * block_out, dtype=bias.dtype)
    padded[: bias.shape[0]] = bias
    return padded.reshape(ob, block_out)


def unpack_filter(w: np.ndarray) -> np.ndarray:
    """(OB, CBg, KH, KW, bi, bo) -> the padded FCHW filter (OB * bo, CBg * bi, KH, KW)."""
    ob, cbg, kh, kw, bi, bo = np.asarray(w).shape
    return np.asarray(w).transpose(0, 5, 1, 4, 2, 3).reshape(ob * bo, cbg * bi, kh, kw)


# ----------------------------------------------------------------------------
# to_blocked / from_blocked.


def _block_attr(args: OpArgs[Shape]) -> int:
    block = int(args.attr("block"))
    if block < 1:
        fail(f"attribute 'block' must be positive, got {block}")
    return block


def to_blocked_shape(args: OpArgs[Shape]) -> Shape:
    x = list(args["input"])
    if len(x) < 2:
        fail(f"input must have a channel dimension (rank >= 2), but has rank {len(x)}")
    block = _block_attr(args)
    return [x[0], blocks(x[1], block), *x[2:], block]


def from_blocked_shape(args: OpArgs[Shape]) -> Shape:
    x = list(args["input"])
    if len(x) < 3:
        fail(f"input must be blocked (N, CB, ..., b) of rank >= 3, but has rank {len(x)}")
    channels = int(args.attr("channels"))
    cb, b = x[1], x[-1]
    if not (cb - 1) * b < channels <= cb * b:
        fail(f"attribute 'channels' = {channels} does not fit {cb} blocks of {b}")
    return [x[0], channels, *x[2:-1]]


register(
    OpSemantics(
        wpk.ToBlockedOp,
        shape=to_blocked_shape,
        evaluate=lambda args: to_blocked(args["input"], int(args.attrs["block"])),
    )
)
register(
    OpSemantics(
        wpk.FromBlockedOp,
        shape=from_blocked_shape,
        evaluate=lambda args: from_blocked(args["input"], int(args.attrs["channels"])),
    )
)


# ----------------------------------------------------------------------------
# blocked_conv2d.


def _unblocked_args(args: OpArgs[Shape]) -> tuple[OpArgs[Shape], int]:
    """The equivalent conv2d's operand shapes (padded NCHW input restricted to the channels
    the groups read, unpacked filter, flat bias) and the output block."""
    x, w, bias = list(args["input"]), list(args["filter"]), args.get("bias")
    expect_rank("input", x, 5)
    expect_rank("filter", w, 6)
    n, cbi, h, wd, bi_in = x
    ob, cbg, kh, kw, bi, bo = w
    groups = int(args.attr("groups"))
    if groups < 1:
        fail(f"attribute 'groups' must be positive, got {groups}")
    if (ob * bo) % groups != 0:
        fail(f"{ob * bo} output channels ({ob} blocks of {bo}) are not divisible by groups {groups}")
    read = groups * cbg * bi
    if read > cbi * bi_in:
        fail(f"the filter reads {read} input channels, the input has {cbi * bi_in} ({cbi} blocks of {bi_in})")
    if bias is not None and list(bias) != [ob, bo]:
        fail(f"bias shape {fmt(bias)} must be [{ob}, {bo}] (the filter's output blocks)")
    conv_args = OpArgs(
        {"input": [n, read, h, wd], "filter": [ob * bo, cbg * bi, kh, kw], "bias": None},
        args.attrs,
    )
    return conv_args, bo


def blocked_conv2d_shape(args: OpArgs[Shape]) -> Shape:
    """(N, OB, OH, OW, bo): the spatial sizes of wpk.conv2d."""
    conv_args, bo = _unblocked_args(args)
    n, f, oh, ow = conv2d_shape(conv_args)
    return [n, f // bo, oh, ow, bo]


def blocked_conv2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    groups: int,
) -> np.ndarray:
    """The convolution of a blocked op (no epilogue) in float64, through the unblocked conv."""
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    _, cbg, _, _, bi, bo = w.shape
    plain = from_blocked(x, groups * cbg * bi)
    flat_bias = None if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    out = conv2d(plain, unpack_filter(w), flat_bias, strides, pads, dilations, groups)
    return to_blocked(out, bo)


def evaluate_blocked_conv2d(args: OpArgs[np.ndarray]) -> np.ndarray:
    a = args.attrs
    return blocked_conv2d(
        args["input"], args["filter"], args.get("bias"), a["strides"], a["pads"], a["dilations"], int(a["groups"])
    )


register_fused(
    FusedKind(wpk.BlockedConv2DOp, None, value_shape=blocked_conv2d_shape, value_evaluate=evaluate_blocked_conv2d)
)
