"""The `wpk-verify` pass: checks on `wpk` ops that the IRDL definition cannot express.

IRDL checks operand/result counts and the base kind of every type and attribute
(`!builtin.tensor`, `#builtin.integer`, ...). This pass checks the rest of the
contract in docs/DESIGN.md and dialects/WpkOps.td:

* every operand and result of a `wpk` op is a ranked, statically shaped f32 tensor;
* attribute element kinds: I64Attr is a 64-bit integer, BoolAttr an i1, F32Attr an
  f32 float, DenseI64ArrayAttr an `array<i64: ...>`;
* op-specific ranks, attribute lengths and value ranges (conv2d/pools are 4-D with
  2 strides, 2 dilations and 4 pads, axes are in range, ...), and that the result
  shape is the one the op's semantics give;
* fused kernels: known steps with the right number of parameters, one side
  operand per binary step, side operands that broadcast to the result.

Every failure is reported as an MLIR error diagnostic at the op's location
(`'wpk.conv2d' op ...`, as an ODS verifier would) and the pass fails.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from mlir import ir

from woodpecker.dialect.fused import FusedOperands, unpack
from woodpecker.dialect.steps import StepError, count_binary

# The attribute kinds of dialects/WpkOps.td (IRDL only knows their base kinds).
# The ODS constraint names map to: "i64" I64Attr, "bool" BoolAttr, "f32" F32Attr,
# "i64s" DenseI64ArrayAttr, "str" StrAttr, "strs" StrArrayAttr, "f32s" DenseF32ArrayAttr,
# "value" the weight/constant payload.
_CONV = {"strides": "i64s", "pads": "i64s", "dilations": "i64s", "groups": "i64"}
_GEMM = {"alpha": "f32", "beta": "f32", "trans_a": "bool", "trans_b": "bool"}
_EPILOGUE = {"epilogue": "strs", "epilogue_params": "f32s"}
ATTRIBUTE_KINDS: dict[str, dict[str, str]] = {
    "wpk.weight": {"value": "value"},
    "wpk.constant": {"value": "value"},
    "wpk.conv2d": _CONV,
    "wpk.matmul": {},
    "wpk.gemm": _GEMM,
    "wpk.add": {},
    "wpk.sub": {},
    "wpk.mul": {},
    "wpk.div": {},
    "wpk.relu": {},
    "wpk.sigmoid": {},
    "wpk.tanh": {},
    "wpk.global_avg_pool": {},
    "wpk.leaky_relu": {"alpha": "f32"},
    "wpk.clip": {"min": "f32", "max": "f32"},
    "wpk.batch_norm": {"epsilon": "f32"},
    "wpk.max_pool": {
        "kernel_shape": "i64s",
        "strides": "i64s",
        "pads": "i64s",
        "dilations": "i64s",
        "ceil_mode": "bool",
    },
    "wpk.avg_pool": {
        "kernel_shape": "i64s",
        "strides": "i64s",
        "pads": "i64s",
        "dilations": "i64s",
        "ceil_mode": "bool",
        "count_include_pad": "bool",
    },
    "wpk.softmax": {"axis": "i64"},
    "wpk.reshape": {},
    "wpk.flatten": {"axis": "i64"},
    "wpk.transpose": {"perm": "i64s"},
    "wpk.concat": {"axis": "i64"},
    "wpk.pad": {"pads": "i64s", "mode": "str", "value": "f32"},
    "wpk.reduce_mean": {"axes": "i64s", "keepdims": "bool"},
    "wpk.elementwise": {"steps": "strs", "params": "f32s"},
    "wpk.fused_conv2d": {**_CONV, **_EPILOGUE},
    "wpk.fused_matmul": _EPILOGUE,
    "wpk.fused_gemm": {**_GEMM, **_EPILOGUE},
}

PAD_MODES = ("constant", "reflect", "edge", "wrap")

_KIND_TEXT = {
    "i64": "a 64-bit signless integer attribute (I64Attr)",
    "bool": "a bool attribute (i1, BoolAttr)",
    "f32": "a 32-bit float attribute (F32Attr)",
    "i64s": "an i64 dense array attribute (array<i64: ...>)",
    "str": "a string attribute",
    "strs": "an array of string attributes",
    "f32s": "an f32 dense array attribute (array<f32: ...>)",
}


class OpVerificationError(Exception):
    """One failed check; the message follows the `'wpk.op' op` prefix."""


@dataclass(frozen=True)
class VerificationFailure:
    """A failed check on one op: where and why."""

    location: ir.Location
    op_name: str
    message: str

    def text(self) -> str:
        return f"'{self.op_name}' op {self.message}"


def _fail(message: str) -> NoReturn:
    raise OpVerificationError(message)


# ----------------------------------------------------------------------------
# Types and attributes.


def _static_f32_tensor(t: ir.Type) -> bool:
    return isinstance(t, ir.RankedTensorType) and t.has_static_shape and isinstance(t.element_type, ir.F32Type)


def _shape(value: ir.Value) -> list[int]:
    return list(ir.RankedTensorType(value.type).shape)


def _attr_ok(attr: ir.Attribute, kind: str) -> bool:
    if kind == "i64" or kind == "bool":
        if not isinstance(attr, ir.IntegerAttr | ir.BoolAttr):
            return False
        itype = ir.IntegerAttr(attr).type
        width = 64 if kind == "i64" else 1
        return isinstance(itype, ir.IntegerType) and itype.width == width and itype.is_signless
    if kind == "f32":
        return isinstance(attr, ir.FloatAttr) and isinstance(attr.type, ir.F32Type)
    if kind == "i64s":
        return isinstance(attr, ir.DenseI64ArrayAttr)
    if kind == "str":
        return isinstance(attr, ir.StringAttr)
    if kind == "strs":
        return isinstance(attr, ir.ArrayAttr) and all(isinstance(a, ir.StringAttr) for a in attr)
    if kind == "f32s":
        return isinstance(attr, ir.DenseF32ArrayAttr)
    return True


def _ints(op: ir.Operation, name: str) -> list[int]:
    return list(ir.DenseI64ArrayAttr(op.attributes[name]))


def _int(op: ir.Operation, name: str) -> int:
    return int(ir.IntegerAttr(op.attributes[name]).value)


def _bool(op: ir.Operation, name: str) -> bool:
    return bool(ir.IntegerAttr(op.attributes[name]).value)


def _expect_len(op: ir.Operation, name: str, n: int) -> list[int]:
    values = _ints(op, name)
    if len(values) != n:
        _fail(f"attribute '{name}' must have {n} values, but has {len(values)}")
    return values


def _expect_rank(what: str, shape: Sequence[int], rank: int) -> None:
    if len(shape) != rank:
        _fail(f"{what} must be {rank}-D, but has rank {len(shape)}")


def _expect_result(op: ir.Operation, expected: Sequence[int]) -> None:
    got = _shape(op.results[0])
    if list(got) != list(expected):
        _fail(f"result shape {_fmt(got)} does not match the expected shape {_fmt(expected)}")


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def broadcast_shapes(a: Sequence[int], b: Sequence[int]) -> list[int] | None:
    """Numpy broadcasting of two static shapes, None when incompatible."""
    out = []
    for i in range(max(len(a), len(b))):
        da = a[len(a) - 1 - i] if i < len(a) else 1
        db = b[len(b) - 1 - i] if i < len(b) else 1
        if da != db and da != 1 and db != 1:
            return None
        out.append(db if da == 1 else da)
    return out[::-1]


# ----------------------------------------------------------------------------
# Op-specific checks. Each takes an op whose operands/results are static f32
# tensors and whose attributes have the right kinds.


def _check_value(op: ir.Operation) -> None:
    attr = op.attributes["value"]
    result_type = op.results[0].type
    if attr.type != result_type:
        _fail(f"'value' has type {attr.type}, but the result type is {result_type}")


def _check_same_shape(op: ir.Operation) -> None:
    _expect_result(op, _shape(op.operands[0]))


def _check_binary(op: ir.Operation) -> None:
    lhs, rhs = _shape(op.operands[0]), _shape(op.operands[1])
    out = broadcast_shapes(lhs, rhs)
    if out is None:
        _fail(f"operand shapes {_fmt(lhs)} and {_fmt(rhs)} are not broadcast-compatible")
    _expect_result(op, out)


def _positive(name: str, values: Sequence[int]) -> None:
    if any(v < 1 for v in values):
        _fail(f"attribute '{name}' values must be positive, got {_fmt(values)}")


def _non_negative(name: str, values: Sequence[int]) -> None:
    if any(v < 0 for v in values):
        _fail(f"attribute '{name}' values must be non-negative, got {_fmt(values)}")


def _conv2d_shape(op: ir.Operation, x: list[int], w: list[int], bias: list[int] | None) -> list[int]:
    """The result shape of a convolution with `op`'s attributes (conv2d or fused_conv2d)."""
    _expect_rank("input", x, 4)
    _expect_rank("filter", w, 4)
    strides = _expect_len(op, "strides", 2)
    pads = _expect_len(op, "pads", 4)
    dilations = _expect_len(op, "dilations", 2)
    groups = _int(op, "groups")
    _positive("strides", strides)
    _positive("dilations", dilations)
    _non_negative("pads", pads)
    if groups < 1:
        _fail(f"attribute 'groups' must be positive, got {groups}")
    n, c, h, wd = x
    f, cg, kh, kw = w
    if c != cg * groups:
        _fail(f"input has {c} channels, but filter has {cg} per group x {groups} groups")
    if f % groups != 0:
        _fail(f"filter count {f} is not divisible by groups {groups}")
    if bias is not None and bias != [f]:
        _fail(f"bias shape {_fmt(bias)} must be [{f}] (one value per output channel)")
    out_hw = []
    for size, k, s, d, p0, p1 in zip((h, wd), (kh, kw), strides, dilations, pads[:2], pads[2:], strict=True):
        span = size + p0 + p1 - d * (k - 1) - 1
        if span < 0:
            _fail(f"dilated kernel {d * (k - 1) + 1} is larger than the padded input {size + p0 + p1}")
        out_hw.append(span // s + 1)
    return [n, f, *out_hw]


def _check_conv2d(op: ir.Operation) -> None:
    bias = _shape(op.operands[2]) if len(op.operands) == 3 else None
    _expect_result(op, _conv2d_shape(op, _shape(op.operands[0]), _shape(op.operands[1]), bias))


def _check_pool(op: ir.Operation) -> None:
    x = _shape(op.operands[0])
    _expect_rank("input", x, 4)
    kernel = _expect_len(op, "kernel_shape", 2)
    strides = _expect_len(op, "strides", 2)
    pads = _expect_len(op, "pads", 4)
    dilations = _expect_len(op, "dilations", 2)
    _positive("kernel_shape", kernel)
    _positive("strides", strides)
    _positive("dilations", dilations)
    _non_negative("pads", pads)
    out = _shape(op.results[0])
    _expect_rank("result", out, 4)
    if out[:2] != x[:2]:
        _fail(f"result batch/channels {_fmt(out[:2])} must equal the input's {_fmt(x[:2])}")
    for i, (size, k, s, d) in enumerate(zip(x[2:], kernel, strides, dilations, strict=True)):
        span = size + pads[i] + pads[i + 2] - d * (k - 1) - 1
        if span < 0:
            _fail(f"dilated kernel {d * (k - 1) + 1} is larger than the padded input {size + pads[i] + pads[i + 2]}")
        # floor mode gives the lower bound, ceil mode at most one more window.
        low, high = span // s + 1, -(-span // s) + 1
        if not low <= out[2 + i] <= high:
            want = str(low) if low == high else f"{low} (floor) or {high} (ceil)"
            _fail(f"result spatial dimension {i} is {out[2 + i]}, expected {want}")


def _check_global_avg_pool(op: ir.Operation) -> None:
    x = _shape(op.operands[0])
    if len(x) < 3:
        _fail(f"input must be at least 3-D (N, C, spatial...), but has rank {len(x)}")
    _expect_result(op, [x[0], x[1]] + [1] * (len(x) - 2))


def _matmul_shape(a: list[int], b: list[int]) -> list[int]:
    if not a or not b:
        _fail("operands must have rank >= 1")
    a2 = [1, *a] if len(a) == 1 else a
    b2 = [*b, 1] if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        _fail(f"contracting dimensions differ: lhs {_fmt(a)}, rhs {_fmt(b)}")
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    if batch is None:
        _fail(f"batch dimensions of {_fmt(a)} and {_fmt(b)} are not broadcast-compatible")
    out = [*batch]
    if len(a) > 1:
        out.append(a2[-2])
    if len(b) > 1:
        out.append(b2[-1])
    return out


def _check_matmul(op: ir.Operation) -> None:
    _expect_result(op, _matmul_shape(_shape(op.operands[0]), _shape(op.operands[1])))


def _gemm_shape(op: ir.Operation, a: list[int], b: list[int], c: list[int] | None) -> list[int]:
    _expect_rank("operand 'a'", a, 2)
    _expect_rank("operand 'b'", b, 2)
    m, k = (a[1], a[0]) if _bool(op, "trans_a") else (a[0], a[1])
    k2, n = (b[1], b[0]) if _bool(op, "trans_b") else (b[0], b[1])
    if k != k2:
        _fail(f"contracting dimensions differ: {k} vs {k2}")
    if c is not None and (len(c) > 2 or broadcast_shapes(c, [m, n]) != [m, n]):
        _fail(f"operand 'c' of shape {_fmt(c)} does not broadcast to {_fmt([m, n])}")
    return [m, n]


def _check_gemm(op: ir.Operation) -> None:
    c = _shape(op.operands[2]) if len(op.operands) == 3 else None
    _expect_result(op, _gemm_shape(op, _shape(op.operands[0]), _shape(op.operands[1]), c))


# ----------------------------------------------------------------------------
# Fused kernels.


def _fused(op: ir.Operation) -> tuple[FusedOperands, dict[str, list[int] | None]]:
    """The fused op taken apart, its steps checked against its side operands."""
    try:
        fused = unpack(op)
    except StepError as err:
        _fail(str(err))
    binary = count_binary(fused.steps)
    if binary != len(fused.sides):
        _fail(f"the steps take {binary} side operand(s), but {len(fused.sides)} are given")
    shapes = {name: (None if v is None else _shape(v)) for name, v in fused.anchor.items()}
    return fused, shapes


def _expect_sides_broadcast(fused: FusedOperands, out: list[int]) -> None:
    for i, side in enumerate(fused.sides):
        shape = _shape(side)
        if broadcast_shapes(shape, out) != out:
            _fail(f"side operand #{i} of shape {_fmt(shape)} does not broadcast to the result shape {_fmt(out)}")


def _check_elementwise(op: ir.Operation) -> None:
    fused, shapes = _fused(op)
    out: list[int] | None = shapes["input"]
    for side in fused.sides:
        out = broadcast_shapes(out, _shape(side)) if out is not None else None
    if out is None:
        _fail("the input and side operand shapes are not broadcast-compatible")
    _expect_result(op, out)


def _check_fused_conv2d(op: ir.Operation) -> None:
    fused, s = _fused(op)
    out = _conv2d_shape(op, s["input"], s["filter"], s["bias"])
    _expect_result(op, out)
    _expect_sides_broadcast(fused, out)


def _check_fused_matmul(op: ir.Operation) -> None:
    fused, s = _fused(op)
    out = _matmul_shape(s["lhs"], s["rhs"])
    _expect_result(op, out)
    _expect_sides_broadcast(fused, out)


def _check_fused_gemm(op: ir.Operation) -> None:
    fused, s = _fused(op)
    out = _gemm_shape(op, s["a"], s["b"], s["c"])
    _expect_result(op, out)
    _expect_sides_broadcast(fused, out)


def _check_batch_norm(op: ir.Operation) -> None:
    x = _shape(op.operands[0])
    if len(x) < 2:
        _fail(f"input must be at least 2-D, but has rank {len(x)}")
    for i, name in enumerate(("scale", "bias", "mean", "variance"), start=1):
        s = _shape(op.operands[i])
        if s != [x[1]]:
            _fail(f"operand '{name}' shape {_fmt(s)} must be [{x[1]}] (one value per channel)")
    _expect_result(op, x)


def _axis(op: ir.Operation, rank: int, inclusive_end: bool = False) -> int:
    axis = _int(op, "axis")
    hi = rank if inclusive_end else rank - 1
    if not 0 <= axis <= hi:
        _fail(f"attribute 'axis' = {axis} is out of range [0, {hi}]")
    return axis


def _check_softmax(op: ir.Operation) -> None:
    x = _shape(op.operands[0])
    _axis(op, len(x))
    _expect_result(op, x)


def _check_reshape(op: ir.Operation) -> None:
    x, out = _shape(op.operands[0]), _shape(op.results[0])
    if math.prod(x) != math.prod(out):
        _fail(f"cannot reshape {_fmt(x)} ({math.prod(x)} elements) to {_fmt(out)} ({math.prod(out)} elements)")


def _check_flatten(op: ir.Operation) -> None:
    x = _shape(op.operands[0])
    axis = _axis(op, len(x), inclusive_end=True)
    _expect_result(op, [math.prod(x[:axis]), math.prod(x[axis:])])


def _check_transpose(op: ir.Operation) -> None:
    x = _shape(op.operands[0])
    perm = _ints(op, "perm")
    if sorted(perm) != list(range(len(x))):
        _fail(f"attribute 'perm' {_fmt(perm)} is not a permutation of the {len(x)} input dimensions")
    _expect_result(op, [x[p] for p in perm])


def _check_concat(op: ir.Operation) -> None:
    shapes = [_shape(v) for v in op.operands]
    if not shapes:
        _fail("needs at least one input")
    rank = len(shapes[0])
    axis = _axis(op, rank)
    for i, s in enumerate(shapes):
        if len(s) != rank or any(d != e for j, (d, e) in enumerate(zip(s, shapes[0], strict=True)) if j != axis):
            _fail(f"input #{i} shape {_fmt(s)} does not match input #0 {_fmt(shapes[0])} outside axis {axis}")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    _expect_result(op, out)


def _check_pad(op: ir.Operation) -> None:
    x = _shape(op.operands[0])
    pads = _expect_len(op, "pads", 2 * len(x))
    mode = ir.StringAttr(op.attributes["mode"]).value
    if mode not in PAD_MODES:
        _fail(f"attribute 'mode' is '{mode}', expected one of {', '.join(PAD_MODES)}")
    out = [d + pads[i] + pads[i + len(x)] for i, d in enumerate(x)]
    if any(d < 0 for d in out):
        _fail(f"pads {_fmt(pads)} crop more than the input shape {_fmt(x)}")
    _expect_result(op, out)


def _check_reduce_mean(op: ir.Operation) -> None:
    x = _shape(op.operands[0])
    axes = _ints(op, "axes")
    if any(not 0 <= a < len(x) for a in axes) or any(a >= b for a, b in itertools.pairwise(axes)):
        _fail(f"attribute 'axes' {_fmt(axes)} must be sorted, unique and in [0, {len(x) - 1}]")
    if _bool(op, "keepdims"):
        out = [1 if i in axes else d for i, d in enumerate(x)]
    else:
        out = [d for i, d in enumerate(x) if i not in axes]
    _expect_result(op, out)


_OP_CHECKS: dict[str, Callable[[ir.Operation], None]] = {
    "wpk.weight": _check_value,
    "wpk.constant": _check_value,
    "wpk.conv2d": _check_conv2d,
    "wpk.matmul": _check_matmul,
    "wpk.gemm": _check_gemm,
    "wpk.add": _check_binary,
    "wpk.sub": _check_binary,
    "wpk.mul": _check_binary,
    "wpk.div": _check_binary,
    "wpk.relu": _check_same_shape,
    "wpk.sigmoid": _check_same_shape,
    "wpk.tanh": _check_same_shape,
    "wpk.leaky_relu": _check_same_shape,
    "wpk.clip": _check_same_shape,
    "wpk.global_avg_pool": _check_global_avg_pool,
    "wpk.batch_norm": _check_batch_norm,
    "wpk.max_pool": _check_pool,
    "wpk.avg_pool": _check_pool,
    "wpk.softmax": _check_softmax,
    "wpk.reshape": _check_reshape,
    "wpk.flatten": _check_flatten,
    "wpk.transpose": _check_transpose,
    "wpk.concat": _check_concat,
    "wpk.pad": _check_pad,
    "wpk.reduce_mean": _check_reduce_mean,
    "wpk.elementwise": _check_elementwise,
    "wpk.fused_conv2d": _check_fused_conv2d,
    "wpk.fused_matmul": _check_fused_matmul,
    "wpk.fused_gemm": _check_fused_gemm,
}


def verify_op(op: ir.Operation) -> str | None:
    """The first failed check of one `wpk` op (without the op prefix), or None."""
    name = op.name
    for i, value in enumerate(op.operands):
        if not _static_f32_tensor(value.type):
            return f"operand #{i} must be a statically shaped f32 tensor, but got {value.type}"
    for i, value in enumerate(op.results):
        if not _static_f32_tensor(value.type):
            return f"result #{i} must be a statically shaped f32 tensor, but got {value.type}"
    for attr_name, kind in ATTRIBUTE_KINDS.get(name, {}).items():
        if attr_name not in op.attributes:
            return f"attribute '{attr_name}' is required"
        attr = op.attributes[attr_name]
        if not _attr_ok(attr, kind):
            return f"attribute '{attr_name}' must be {_KIND_TEXT[kind]}, but got {attr}"
    check = _OP_CHECKS.get(name)
    if check is None:
        return None
    try:
        check(op)
    except OpVerificationError as err:
        return str(err)
    return None


def verify_module(root: ir.Operation) -> list[VerificationFailure]:
    """Checks every `wpk` op nested in `root`; returns the failures in IR order."""
    failures: list[VerificationFailure] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name.startswith("wpk."):
            message = verify_op(op)
            if message is not None:
                failures.append(VerificationFailure(op.location, op.name, message))
        return ir.WalkResult.ADVANCE

    root.walk(visit, ir.WalkOrder.PRE_ORDER)
    return failures


def wpk_verify_pass(op: ir.Operation, pass_: Any) -> None:
    """The `wpk-verify` pass: emits one error per failing op, then fails the pass."""
    failures = verify_module(op)
    for failure in failures:
        failure.location.emit_error(failure.text())
    if failures:
        pass_.signal_pass_failure()
