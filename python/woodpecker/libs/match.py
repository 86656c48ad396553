"""Which kernels a library can compute, and with what parameters.

`match_kernel` reads a kernel found by `woodpecker.schedule.kernels.find_kernels` (its ops
generalized and tagged) and returns a `LibraryPlan`: the library operation (convolution,
matmul, pooling) with its static parameters, the run-time tensors it reads, the weights it
bakes in (by argument position) and which op's result the library call replaces. A kernel the
library cannot compute raises `NotApplicable` with the reason, which the selection report
shows.

Convolutions are read from the generalized op's indexing maps (strides and dilations are the
coefficients of the input's spatial expressions); the padding from the fill + copy +
insert_slice that `materialize_pads` made of the `tensor.pad` (the library pads itself, so
that copy disappears with the kernel).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from mlir import ir

from woodpecker.kernels.naming import GROUP_ATTR, MODEL_KERNEL_ATTR
from woodpecker.libs.epilogue import Epilogue, EpilogueError, Step, read_epilogue
from woodpecker.lowering.layout import BLOCKED_CONV, GROUPS_ATTR
from woodpecker.schedule.kernels import NAMED_OP_ATTR, Kernel, owner_of

LIBRARIES = ("onednn", "blas")

_CONV_OPS = ("linalg.conv_2d_nchw_fchw", "linalg.depthwise_conv_2d_nchw_chw")
_MATMUL_OPS = ("linalg.matmul", "linalg.matmul_transpose_b", "linalg.batch_matmul")
_POOL_OPS = ("linalg.pooling_nchw_max", "linalg.pooling_nchw_sum")
_RESHAPES = ("tensor.collapse_shape", "tensor.expand_shape")


class NotApplicable(ValueError):
    """The library has no implementation of this kernel; the message says why."""


@dataclass
class LibraryPlan:
    """What a library call computes in place of a kernel (or of its main op, for BLAS)."""

    library: str  # "onednn" | "blas"
    op: str  # "conv" | "blocked_conv" | "matmul" | "runtime_matmul" | "max_pool" | "avg_pool"
    kernel_name: str
    replaces: ir.Operation  # the op whose result the call's result replaces
    inputs: list[ir.Value]  # run-time tensors the call reads, in the call's operand order
    output_shape: tuple[int, ...]
    params: dict = field(default_factory=dict)  # static parameters (shapes, strides, pads, post-ops, ...)
    weight_args: dict[str, int] = field(default_factory=dict)  # "weights"/"bias" -> argument position of @main
    weight_transforms: dict[str, str] = field(default_factory=dict)  # "weights" -> "transpose" | "reshape"

    @property
    def description(self) -> str:
        return f"{self.library} {self.op}"


def _shape(value: ir.Value) -> tuple[int, ...]:
    return tuple(ir.RankedTensorType(value.type).shape)


def _weight_arg(value: ir.Value, first_weight: int) -> int | None:
    """The @main argument position of a weight `value` is (through reshapes), or None."""
    while True:
        owner = owner_of(value)
        if owner is None:
            position = ir.BlockArgument(value).arg_number
            return position if position >= first_weight else None
        if owner.name not in _RESHAPES:
            return None
        value = owner.operands[0]


def _maps(op: ir.Operation) -> list[ir.AffineMap]:
    return [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]


def _coefficients(expr: ir.AffineExpr) -> dict[int, int]:
    """dim position -> coefficient of a sum of `dim * constant` terms."""
    if isinstance(expr, ir.AffineDimExpr):
        return {ir.AffineDimExpr(expr).position: 1}
    if isinstance(expr, ir.AffineAddExpr):
        add = ir.AffineAddExpr(expr)
        left, right = _coefficients(add.lhs), _coefficients(add.rhs)
        if set(left) & set(right):
            raise NotApplicable(f"window expression {expr} repeats a loop")
        return {**left, **right}
    if isinstance(expr, ir.AffineMulExpr):
        mul = ir.AffineMulExpr(expr)
        for dim, const in ((mul.lhs, mul.rhs), (mul.rhs, mul.lhs)):
            if isinstance(const, ir.AffineConstantExpr) and isinstance(dim, ir.AffineDimExpr):
                return {ir.AffineDimExpr(dim).position: ir.AffineConstantExpr(const).value}
    raise NotApplicable(f"window expression {expr} is not a sum of strided loops")


def _window(op: ir.Operation, window_operand: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(strides, dilations) of a convolution or pooling from its input's indexing map."""
    maps = _maps(op)
    out_map, in_map, window_map = maps[-1], maps[0], maps[window_operand]
    strides, dilations = [], []
    for axis in (2, 3):
        out_dim = ir.AffineDimExpr(out_map.results[axis]).position
        window_dim = ir.AffineDimExpr(window_map.results[len(window_map.results) - 4 + axis]).position
        coefficients = _coefficients(in_map.results[axis])
        if set(coefficients) != {out_dim, window_dim}:
            raise NotApplicable(f"input index {in_map.results[axis]} is not output * stride + window * dilation")
        strides.append(coefficients[out_dim])
        dilations.append(coefficients[window_dim])
    return (strides[0], strides[1]), (dilations[0], dilations[1])


def _fill_value(op: ir.Operation | None) -> float | None:
    if op is None:
        return None
    named = op.attributes.get(NAMED_OP_ATTR, None)
    if op.name != "linalg.fill" and (named is None or ir.StringAttr(named).value != "linalg.fill"):
        return None
    owner = owner_of(op.operands[0])
    if owner is None or owner.name != "arith.constant":
        return None
    return float(ir.FloatAttr(owner.attributes["value"]).value)


def _unpadded(value: ir.Value, pad_value: float) -> tuple[ir.Value, tuple[int, int], tuple[int, int]]:
    """(the tensor before padding, pads begin (top, left), pads end (bottom, right)) of a
    materialized pad (insert_slice of a copy into a fill); the value itself when not padded."""
    owner = owner_of(value)
    if owner is None or owner.name != "tensor.insert_slice":
        return value, (0, 0), (0, 0)
    source, dest = owner.operands[0], owner.operands[1]
    copy = owner_of(source)
    if _fill_value(owner_of(dest)) != pad_value or copy is None or copy.name != "linalg.generic":
        raise NotApplicable("the input is not padded with the value the operation needs")
    body = copy.regions[0].blocks[0]
    yielded = body.operations[len(body.operations) - 1].operands[0]
    if len(copy.operands) != 2 or len(body.operations) != 1 or yielded != body.arguments[0]:
        raise NotApplicable("the input's padding is not a plain copy")
    offsets = list(ir.DenseI64ArrayAttr(owner.attributes["static_offsets"]))
    inner, padded = _shape(copy.operands[0]), _shape(value)
    if offsets[:2] != [0, 0] or inner[:2] != padded[:2] or any(offsets[4:]) or inner[4:] != padded[4:]:
        raise NotApplicable("the input is padded along batch or channels")
    begin = (offsets[2], offsets[3])
    end = (padded[2] - inner[2] - offsets[2], padded[3] - inner[3] - offsets[3])
    return copy.operands[0], begin, end


def _subsampled(
    value: ir.Value, window: tuple[int, ...], strides: tuple[int, int], pads: tuple[int, ...]
) -> tuple[ir.Value, tuple[int, int]]:
    """A 1x1 convolution of stride 1, unpadded, reading a strided slice of every s-th row and
    column from the origin (how a strided 1x1 convolution is lowered: subsample, then convolve)
    is the strided convolution of the slice's source, which the library reads in place of a
    strided copy: (that source, the slice's strides); else (`value`, `strides`)."""
    owner = owner_of(value)
    if owner is None or owner.name != "tensor.extract_slice" or len(owner.operands) != 1:
        return value, strides
    if tuple(window) != (1, 1) or strides != (1, 1) or any(pads):
        return value, strides
    offsets = list(ir.DenseI64ArrayAttr(owner.attributes["static_offsets"]))
    steps = list(ir.DenseI64ArrayAttr(owner.attributes["static_strides"]))
    source, sliced = _shape(owner.operands[0]), _shape(value)
    if len(source) != len(sliced) or any(offsets) or len(source) < 4:
        return value, strides
    others = [axis for axis in range(len(source)) if axis not in (2, 3)]
    if any(steps[axis] != 1 or sliced[axis] != source[axis] for axis in others):
        return value, strides
    if any(sliced[axis] != (source[axis] - 1) // steps[axis] + 1 for axis in (2, 3)):
        return value, strides
    return owner.operands[0], (steps[2], steps[3])


def _operand_number(op: ir.Operation, value: ir.Value) -> int:
    return next(i for i, operand in enumerate(op.operands) if operand == value)


def _broadcast_shape(epilogue: ir.Operation, operand: int) -> tuple[int, ...]:
    """The shape (of the output's rank, 1 where broadcast) that `operand` has in memory."""
    out_shape = _shape(epilogue.results[0])
    amap = _maps(epilogue)[operand]
    shape = _shape(epilogue.operands[operand])
    result = [1] * len(out_shape)
    last = -1
    for position, expr in enumerate(amap.results):
        if isinstance(expr, ir.AffineDimExpr):
            dim = ir.AffineDimExpr(expr).position
            if dim <= last:
                raise NotApplicable(f"side operand {operand} of the epilogue is transposed")
            last = dim
            result[dim] = shape[position]
        elif shape[position] != 1:
            raise NotApplicable(f"side operand {operand} of the epilogue is indexed by {amap}")
    return tuple(result)


def _is_channel_bias(epilogue: ir.Operation, operand: int, channel_dim: int, first_weight: int) -> bool:
    amap = _maps(epilogue)[operand]
    results = list(amap.results)
    return (
        len(results) == 1
        and isinstance(results[0], ir.AffineDimExpr)
        and ir.AffineDimExpr(results[0]).position == channel_dim
        and _weight_arg(epilogue.operands[operand], first_weight) is not None
    )


def _is_blocked_bias(epilogue: ir.Operation, operand: int, first_weight: int) -> bool:
    """A (OB, bo) bias of a blocked convolution: indexed (d1, d4), a weight."""
    results = list(_maps(epilogue)[operand].results)
    return [ir.AffineDimExpr(r).position if isinstance(r, ir.AffineDimExpr) else -1 for r in results] == [
        1,
        4,
    ] and _weight_arg(epilogue.operands[operand], first_weight) is not None


def _epilogue(
    kernel: Kernel, channel_dim: int, first_weight: int, blocked: bool = False
) -> tuple[Epilogue | None, ir.Operation]:
    """The kernel's epilogue as post-ops (None when it has none) and the op the call replaces."""
    if kernel.epilogue is None:
        return None, kernel.main
    epilogue = kernel.epilogue
    main_operand = _operand_number(epilogue, kernel.main.results[0])
    inputs = len(epilogue.operands) - len(epilogue.results)

    def is_bias(i: int) -> bool:
        if blocked:
            return _is_blocked_bias(epilogue, i, first_weight)
        return _is_channel_bias(epilogue, i, channel_dim, first_weight)

    candidates = {i for i in range(inputs) if i != main_operand and is_bias(i)}
    try:
        return read_epilogue(epilogue, main_operand, candidates), epilogue
    except EpilogueError as err:
        raise NotApplicable(str(err)) from None


def _post_ops(kernel: Kernel, read: Epilogue | None) -> tuple[list[dict], list[ir.Value]]:
    """The post-ops as plain dicts (alg, alpha, beta, shape) and the side tensors they read."""
    post_ops, sides = [], []
    for step in read.steps if read else ():
        entry = {"kind": step.kind, "alg": step.alg, "alpha": step.alpha, "beta": step.beta}
        if step.kind == "binary":
            assert step.side is not None
            entry["shape"] = _broadcast_shape(kernel.epilogue, step.side)
            sides.append(kernel.epilogue.operands[step.side])
        post_ops.append(entry)
    return post_ops, sides


def match_kernel(kernel: Kernel, library: str, first_weight: int) -> LibraryPlan:
    """The library call that computes `kernel`; raises NotApplicable with the reason."""
    if library not in LIBRARIES:
        raise ValueError(f"unknown library '{library}' (known: {', '.join(LIBRARIES)})")
    name = kernel.named_op
    if library == "blas":
        if name not in _MATMUL_OPS:
            raise NotApplicable(f"BLAS computes matmul kernels, not {name.removeprefix('linalg.')}")
        return _matmul(kernel, library, first_weight)
    if name in _CONV_OPS:
        return _conv(kernel, first_weight)
    if name == BLOCKED_CONV:
        return _blocked_conv(kernel, first_weight)
    if name in _MATMUL_OPS:
        return _matmul(kernel, library, first_weight)
    if name in _POOL_OPS:
        return _pool(kernel)
    raise NotApplicable(f"oneDNN is not used for {name.removeprefix('linalg.')} kernels")


def _conv(kernel: Kernel, first_weight: int) -> LibraryPlan:
    main = kernel.main
    if _fill_value(kernel.fill) != 0.0:
        raise NotApplicable("the convolution does not start from a zero accumulator")
    strides, dilations = _window(main, 1)
    source, pads_begin, pads_end = _unpadded(main.operands[0], 0.0)
    weight = _weight_arg(main.operands[1], first_weight)
    if weight is None:
        raise NotApplicable("the filter is computed at run time, not a weight")
    _n, c, _, _ = _shape(source)
    filter_shape = _shape(main.operands[1])
    depthwise = kernel.named_op == "linalg.depthwise_conv_2d_nchw_chw"
    if depthwise:
        filter_shape = (filter_shape[0], 1, filter_shape[1], filter_shape[2])
    read, replaces = _epilogue(kernel, 1, first_weight)
    post_ops, sides = _post_ops(kernel, read)
    plan = LibraryPlan(
        library="onednn",
        op="conv",
        kernel_name=kernel.name,
        replaces=replaces,
        inputs=[source, *sides],
        output_shape=_shape(replaces.results[0]),
        params={
            "src_shape": _shape(source),
            "filter_shape": filter_shape,
            "strides": strides,
            "pads_begin": pads_begin,
            "pads_end": pads_end,
            "dilations": dilations,
            "groups": c if depthwise else 1,
            "post_ops": post_ops,
        },
        weight_args={"weights": weight},
        weight_transforms={"weights": "reshape"},
    )
    if read is not None and read.bias is not None:
        bias = _weight_arg(kernel.epilogue.operands[read.bias], first_weight)
        assert bias is not None
        plan.weight_args["bias"] = bias
    return plan


def _blocked_window(op: ir.Operation) -> tuple[tuple[int, int], tuple[int, int]]:
    """(strides, dilations) of a blocked convolution's generic over (n, ob, oh, ow, j | cb, kh, kw, i)."""
    maps = _maps(op)
    strides, dilations = [], []
    for axis in (2, 3):
        out_dim = ir.AffineDimExpr(maps[-1].results[axis]).position
        window_dim = ir.AffineDimExpr(maps[1].results[axis]).position
        coefficients = _coefficients(maps[0].results[axis])
        if set(coefficients) != {out_dim, window_dim}:
            raise NotApplicable(f"input index {maps[0].results[axis]} is not output * stride + window * dilation")
        strides.append(coefficients[out_dim])
        dilations.append(coefficients[window_dim])
    return (strides[0], strides[1]), (dilations[0], dilations[1])


def _blocked_formats(src: tuple[int, ...], packed: tuple[int, ...], groups: int) -> tuple[str, str, tuple, tuple]:
    """(src tag, weights tag, logical src shape, logical weights shape) of a blocked convolution
    that oneDNN has formats for (ops/layout.py's layout: the tags name the same memory)."""
    n, cbi, h, w, b_in = src
    ob, cbg, kh, kw, bi, bo = packed
    if bo not in (8, 16):
        raise NotApplicable(f"oneDNN has no blocked formats for blocks of {bo}")
    if groups == 1 and bi == b_in == bo and cbg == cbi:
        return f"nChw{bo}c", f"OIhw{bo}i{bo}o", (n, cbi * bo, h, w), (ob * bo, cbg * bo, kh, kw)
    if groups == 1 and bi == b_in == 1:
        return "nchw", f"Abcd{bo}a", (n, cbi, h, w), (ob * bo, cbg, kh, kw)
    if bi == cbg == 1 and b_in == bo and groups == ob * bo == cbi * b_in:
        return f"nChw{bo}c", f"Goihw{bo}g", (n, cbi * bo, h, w), (groups, 1, 1, kh, kw)
    raise NotApplicable(f"no oneDNN formats for a blocked convolution of {src} by {packed} in {groups} groups")


def _blocked_post_op_format(shape: tuple[int, ...], dst_tag: str) -> tuple[tuple[int, ...], str]:
    """A binary operand's logical NCHW shape and tag ('' plain) from its blocked (N, CB, H, W, b)
    shape in memory: the dst's tag when it varies over channels and pixels, plain otherwise (a
    per-channel or per-pixel operand has the same memory in both)."""
    n, cb, h, w, b = shape
    logical = (n, cb * b, h, w)
    return logical, (dst_tag if cb * b > 1 and h * w > 1 else "")


def _blocked_conv(kernel: Kernel, first_weight: int) -> LibraryPlan:
    main = kernel.main
    if _fill_value(kernel.fill) != 0.0:
        raise NotApplicable("the convolution does not start from a zero accumulator")
    strides, dilations = _blocked_window(main)
    source, pads_begin, pads_end = _unpadded(main.operands[0], 0.0)
    window = _shape(main.operands[1])[2:4]
    source, strides = _subsampled(source, window, strides, (*pads_begin, *pads_end))
    weight = _weight_arg(main.operands[1], first_weight)
    if weight is None:
        raise NotApplicable("the filter is computed at run time, not a weight")
    groups = ir.IntegerAttr(main.attributes[GROUPS_ATTR]).value
    src_tag, weights_tag, src_shape, filter_shape = _blocked_formats(_shape(source), _shape(main.operands[1]), groups)
    dst_tag = f"nChw{_shape(main.results[0])[4]}c"
    read, replaces = _epilogue(kernel, 1, first_weight, blocked=True)
    post_ops, sides = _post_ops(kernel, read)
    binary = []
    for entry in post_ops:
        if entry["kind"] == "binary":
            entry["shape"], tag = _blocked_post_op_format(entry["shape"], dst_tag)
            binary.append(tag)
    plan = LibraryPlan(
        library="onednn",
        op="blocked_conv",
        kernel_name=kernel.name,
        replaces=replaces,
        inputs=[source, *sides],
        output_shape=_shape(replaces.results[0]),
        params={
            "src_shape": src_shape,
            "filter_shape": filter_shape,
            "strides": strides,
            "pads_begin": pads_begin,
            "pads_end": pads_end,
            "dilations": dilations,
            "groups": groups,
            "post_ops": post_ops,
            "formats": {"src": src_tag, "weights": weights_tag, "dst": dst_tag, "binary": binary},
        },
        weight_args={"weights": weight},
    )
    if read is not None and read.bias is not None:
        bias = _weight_arg(kernel.epilogue.operands[read.bias], first_weight)
        assert bias is not None
        plan.weight_args["bias"] = bias
    return plan


def _matmul_weight(value: ir.Value, first_weight: int, transposed_b: bool) -> tuple[int, bool] | None:
    """(weight argument, whether it holds B transposed, i.e. N x K) of a matmul's right operand
    that is a weight (through reshapes, or a copy that swaps it); None when computed at run time."""
    weight = _weight_arg(value, first_weight)
    if weight is not None:
        return weight, transposed_b
    owner = owner_of(value)
    if owner is not None and owner.name == "linalg.generic" and len(owner.operands) == 2:
        maps = _maps(owner)
        body = owner.regions[0].blocks[0]
        is_copy = len(body.operations) == 1 and body.operations[0].operands[0] == body.arguments[0]
        swapped = maps[0] == ir.AffineMap.get_permutation([1, 0]) and maps[1] == ir.AffineMap.get_identity(2)
        weight = _weight_arg(owner.operands[0], first_weight)
        if is_copy and swapped and weight is not None:
            return weight, not transposed_b
    return None


def _dims(amap: ir.AffineMap) -> list[int]:
    if not all(isinstance(r, ir.AffineDimExpr) for r in amap.results):
        raise NotApplicable(f"the matmul reads an operand through {amap}, not a permutation of its loops")
    return [ir.AffineDimExpr(r).position for r in amap.results]


def _matmul_layout(op: ir.Operation) -> tuple[int, bool]:
    """(number of batch dims, whether B is read as N x K) of a (batch) matmul from its indexing
    maps: A (batch, m, k), B (batch, k, n) or (batch, n, k), C (batch, m, n)."""
    maps = _maps(op)
    if len(maps) != 3:
        raise NotApplicable(f"a matmul with {len(maps)} operands")
    a, b, c = (_dims(m) for m in maps)
    batch = c[:-2]
    (m, n), ks = c[-2:], set(range(maps[2].n_dims)) - set(c)
    if len(ks) != 1 or len(a) != len(c) or a != [*batch, m, *ks]:
        raise NotApplicable(f"the matmul's left operand is read through {maps[0]}, not as (batch, M, K)")
    (k,) = ks
    if b == [*batch, k, n]:
        return len(batch), False
    if b == [*batch, n, k]:
        return len(batch), True
    raise NotApplicable(f"the matmul's right operand is read through {maps[1]}, not as (batch, K, N) or (batch, N, K)")


def _kernel_of(op: ir.Operation) -> str | None:
    """The model kernel (or, before naming, the group) an op was lowered into."""
    for name in (MODEL_KERNEL_ATTR, GROUP_ATTR):
        if name in op.attributes:
            return str(op.attributes[name])
    return None


def _check_kernel_ends(kernel: Kernel, replaces: ir.Operation) -> None:
    """A library call computes the matmul (and its epilogue, or BLAS leaves that generated) only: a
    model kernel that goes on after them (wpk.attention: the softmax and the second product read
    the scores) is not one it computes."""
    own = _kernel_of(replaces)
    if own is None:
        return
    root = kernel.root.operation if isinstance(kernel.root, ir.OpView) else kernel.root
    for use in root.results[0].uses:
        user = use.owner
        user = user.operation if isinstance(user, ir.OpView) else user
        if user.name.startswith("linalg.") and _kernel_of(user) == own:
            raise NotApplicable(
                "the kernel goes on after the matmul (a fused attention's softmax and second product read it)"
            )


def _matmul(kernel: Kernel, library: str, first_weight: int) -> LibraryPlan:
    """A matmul with a constant right operand (op "matmul": the weight is packed once, at compile
    time), else one of two run-time operands, batched or not (op "runtime_matmul")."""
    main = kernel.main
    if _fill_value(kernel.fill) != 0.0:
        raise NotApplicable("the matmul does not start from a zero accumulator")
    a, b = main.operands[0], main.operands[1]
    batch_dims, transposed_b = _matmul_layout(main)
    if batch_dims > 1:
        raise NotApplicable(f"a matmul with {batch_dims} batch dims (the lowering collapses them into one)")
    weight = None if batch_dims else _matmul_weight(b, first_weight, transposed_b)
    out = _shape(main.results[0])
    m, k = _shape(a)[-2:]
    n = out[-1]
    if library == "blas":
        read, replaces, post_ops, sides = None, main, [], []
    else:
        read, replaces = _epilogue(kernel, len(out) - 1, first_weight)
        post_ops, sides = _post_ops(kernel, read)
    _check_kernel_ends(kernel, replaces)
    if weight is not None:
        plan = LibraryPlan(
            library=library,
            op="matmul",
            kernel_name=kernel.name,
            replaces=replaces,
            inputs=[a, *sides],
            output_shape=_shape(replaces.results[0]),
            params={"m": m, "k": k, "n": n, "post_ops": post_ops, "transposed_weights": weight[1]},
            weight_args={"weights": weight[0]},
        )
    else:
        plan = LibraryPlan(
            library=library,
            op="runtime_matmul",
            kernel_name=kernel.name,
            replaces=replaces,
            inputs=[a, b, *sides],
            output_shape=_shape(replaces.results[0]),
            params={
                "batch": out[0] if batch_dims else None,
                "m": m,
                "k": k,
                "n": n,
                "post_ops": post_ops,
                "transposed_b": transposed_b,
            },
        )
    if read is not None and read.bias is not None:
        bias = _weight_arg(kernel.epilogue.operands[read.bias], first_weight)
        assert bias is not None
        plan.weight_args["bias"] = bias
    return plan


def _pool(kernel: Kernel) -> LibraryPlan:
    main = kernel.main
    is_max = kernel.named_op == "linalg.pooling_nchw_max"
    start = -np.inf if is_max else 0.0
    if _fill_value(kernel.fill) != start:
        raise NotApplicable("the pooling does not start from its identity value")
    strides, dilations = _window(main, 1)
    if dilations != (1, 1):
        raise NotApplicable("oneDNN pooling here takes no dilation")
    source, pads_begin, pads_end = _unpadded(main.operands[0], start)
    window = _shape(main.operands[1])
    out = _shape(main.results[0])
    if is_max:
        if kernel.epilogue is not None:
            raise NotApplicable("a max pooling with an epilogue has no oneDNN post-ops here")
        kind, replaces = "max", main
    else:
        kind, replaces = _average_kind(kernel, _shape(source), window, strides, pads_begin, out), kernel.epilogue
    return LibraryPlan(
        library="onednn",
        op="max_pool" if is_max else "avg_pool",
        kernel_name=kernel.name,
        replaces=replaces,
        inputs=[source],
        output_shape=_shape(replaces.results[0]),
        params={
            "src_shape": _shape(source),
            "kind": kind,
            "kernel": (window[0], window[1]),
            "strides": strides,
            "pads_begin": pads_begin,
            "pads_end": pads_end,
        },
    )


def _average_kind(kernel: Kernel, src: tuple[int, ...], window, strides, pads_begin, out) -> str:
    """ "avg_include_pad" or "avg_exclude_pad": which divisor the sum pooling's epilogue divides by."""
    epilogue = kernel.epilogue
    if epilogue is None or len(epilogue.operands) != 3:
        raise NotApplicable("a sum pooling that is not divided by its window sizes")
    body = epilogue.regions[0].blocks[0]
    divide = body.operations[0].operation
    main_operand = _operand_number(epilogue, kernel.main.results[0])
    divisor_operand = 1 - main_operand
    owner = owner_of(epilogue.operands[divisor_operand])
    if (
        len(body.operations) != 2
        or divide.name != "arith.divf"
        or divide.operands[0] != body.arguments[main_operand]
        or divide.operands[1] != body.arguments[divisor_operand]
        or owner is None
        or owner.name != "arith.constant"
    ):
        raise NotApplicable("the sum pooling's epilogue is not a division by window counts")
    divisor = np.asarray(ir.DenseElementsAttr(owner.attributes["value"]), dtype=np.float64)
    counts = []
    for axis in (0, 1):
        begin = np.arange(out[2 + axis]) * strides[axis] - pads_begin[axis]
        end = begin + window[axis]
        counts.append(np.clip(end, 0, src[2 + axis]) - np.clip(begin, 0, src[2 + axis]))
    exclude = np.maximum(np.outer(counts[0], counts[1]), 1)
    if divisor.shape == exclude.shape and np.array_equal(divisor, exclude):
        return "avg_exclude_pad"
    if np.all(divisor == window[0] * window[1]):
        return "avg_include_pad"
    raise NotApplicable("the average pooling's divisor is neither the window size nor the count of real elements")


__all__ = ["LIBRARIES", "LibraryPlan", "NotApplicable", "Step", "match_kernel"]
