"""Which GPU kernels a vendor library can compute: a kernel task -> cuDNN / cuBLASLt call spec.

A CUDA kernel task (`woodpecker.gpu.tasks`) is `@main(inputs..., weights...)` with a zero
fill, one named op and optionally an epilogue `linalg.generic` that updates the op's result in
place; a convolution's kernel may start with the gather that zero-pads its input.
`match_cuda_kernel(task, library)` reads it into a `LibraryMatch`: the call's spec (the format
of `woodpecker.runtime.cuda.libraries`) and which task argument fills each of the call's roles;
a kernel the library cannot compute raises `NotApplicable` with the reason.

* cuDNN: `linalg.conv_2d_nchw_fchw` (strides, dilations) and `linalg.depthwise_conv_2d_nchw_chw`
  (groups = channels; the (C, R, S) filter is (C, 1, R, S) in memory). cuDNN pads itself: a
  zero pad of H and W in front of the convolution (a gather launch of the generated kernel)
  becomes the call's pads, and the call reads the unpadded input.
* cuBLASLt: `linalg.matmul` and `linalg.matmul_transpose_b` (B stored N x K).
* The epilogue becomes post-ops (`woodpecker.libs.epilogue`): a per-channel weight added first
  is the bias; then residual adds, activations...; each library then says whether it can fuse
  them (`cudnn_support`, `cublas_support`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from mlir import ir

from woodpecker.dialect import create_context
from woodpecker.gpu.prepare import PAD_TAG
from woodpecker.kernels.task import KernelTask
from woodpecker.libs.epilogue import EpilogueError, read_epilogue
from woodpecker.libs.match import NotApplicable, _broadcast_shape, _fill_value, _is_channel_bias
from woodpecker.runtime.cuda.libraries import LIBRARIES as CUDA_LIBRARIES
from woodpecker.runtime.cuda.libraries import cublas_support, cudnn_support

LIBRARY_NAMES = {"cudnn": "cuDNN", "cublas": "cuBLAS"}
_CONV_OPS = ("linalg.conv_2d_nchw_fchw", "linalg.depthwise_conv_2d_nchw_chw")
_MATMUL_OPS = ("linalg.matmul", "linalg.matmul_transpose_b")
_LIBRARY_OPS = {"cudnn": _CONV_OPS, "cublas": _MATMUL_OPS}
_SKIPPED = ("tensor.empty", "arith.constant", "func.return")


@dataclass(frozen=True)
class LibraryMatch:
    """A library call for a kernel task: `roles` maps each call operand ("x", "w", "bias",
    "side0", ...; "a", "b" for a matmul) to the task argument it reads; "y" is the output."""

    library: str
    spec: dict[str, Any]
    roles: dict[str, int]


def _shape(value: ir.Value) -> tuple[int, ...]:
    return tuple(ir.RankedTensorType(value.type).shape)


def _argument(value: ir.Value, what: str) -> int:
    if not isinstance(value.owner, ir.Block):
        raise NotApplicable(f"the {what} is computed inside the kernel, not read from a buffer")
    return ir.BlockArgument(value).arg_number


def _ints(op: ir.Operation, name: str) -> tuple[int, int]:
    values = [int(v) for v in ir.DenseIntElementsAttr(op.attributes[name])]
    return (values[0], values[1])


# Kernel kinds each library has calls for: other kinds are refused without parsing the task.
_LIBRARY_KINDS = {"cudnn": ("conv", "depthwise_conv"), "cublas": ("matmul",)}


def match_cuda_kernel(task: KernelTask, library: str) -> LibraryMatch:
    """The `library` call computing `task`'s kernel; raises NotApplicable with the reason."""
    if library not in CUDA_LIBRARIES:
        raise ValueError(f"unknown CUDA library '{library}' (known: {', '.join(CUDA_LIBRARIES)})")
    if task.kind not in _LIBRARY_KINDS[library]:
        raise NotApplicable(f"{LIBRARY_NAMES[library]} is not used for {task.kind} kernels")
    with create_context() as context, ir.Location.unknown(context):
        module = ir.Module.parse(task.module_text)
        main_fn = next(op for op in module.body.operations if op.operation.name == "func.func")
        block = main_fn.regions[0].blocks[0]
        first_weight = len(block.arguments) - task.num_weights
        ops = [op.operation for op in block.operations if op.operation.name not in _SKIPPED]
        pad = ops[0] if ops and PAD_TAG in ops[0].attributes else None
        if pad is not None:
            ops = ops[1:]
        named = [op for op in ops if op.name not in ("linalg.fill", "linalg.generic")]
        if len(named) != 1 or named[0].name not in _LIBRARY_OPS[library]:
            found = named[0].name.removeprefix("linalg.") if len(named) == 1 else f"{task.kind}"
            raise NotApplicable(f"{LIBRARY_NAMES[library]} is not used for {found} kernels")
        main = named[0]
        fill = ops[0] if ops and ops[0].name == "linalg.fill" else None
        if fill is None or _fill_value(fill) != 0.0 or main.operands[2] != fill.results[0]:
            raise NotApplicable("the kernel does not start from a zero accumulator")
        rest = ops[ops.index(main) + 1 :]
        epilogue = rest[0] if rest else None
        if len(rest) > 1 or (epilogue is not None and epilogue.name != "linalg.generic"):
            raise NotApplicable(f"the kernel has {', '.join(o.name for o in rest)} after its main op")
        channel_dim = 1
        post_ops, roles, bias = _post_ops(main, epilogue, channel_dim, first_weight)
        if pad is not None and (main.name not in _CONV_OPS or main.operands[0] != pad.results[0]):
            raise NotApplicable("the kernel pads a tensor its convolution does not read")
        if main.name in _CONV_OPS:
            spec, main_roles = _conv(main, pad)
        else:
            spec, main_roles = _matmul(main)
        roles = {**main_roles, **roles}
        spec["bias"] = bias
        spec["post_ops"] = post_ops
    reason = cudnn_support(spec) if library == "cudnn" else cublas_support(spec)
    if reason is not None:
        raise NotApplicable(reason)
    return LibraryMatch(library, spec, roles)


def _post_ops(
    main: ir.Operation, epilogue: ir.Operation | None, channel_dim: int, first_weight: int
) -> tuple[list[dict[str, Any]], dict[str, int], bool]:
    """(post-ops, roles of the bias and side operands, whether there is a bias)."""
    if epilogue is None:
        return [], {}, False
    try:
        main_operand = next(i for i, v in enumerate(epilogue.operands) if v == main.results[0])
    except StopIteration:
        raise NotApplicable("the epilogue does not read the main op's result") from None
    inputs = len(epilogue.operands) - len(epilogue.results)
    candidates = {
        i for i in range(inputs) if i != main_operand and _is_channel_bias(epilogue, i, channel_dim, first_weight)
    }
    try:
        read = read_epilogue(epilogue, main_operand, candidates)
    except EpilogueError as err:
        raise NotApplicable(str(err)) from None
    roles: dict[str, int] = {}
    if read.bias is not None:
        roles["bias"] = _argument(epilogue.operands[read.bias], "bias")
    post_ops = []
    sides = 0
    for step in read.steps:
        entry: dict[str, Any] = {"kind": step.kind, "alg": step.alg, "alpha": step.alpha, "beta": step.beta}
        if step.kind == "binary":
            assert step.side is not None
            entry["shape"] = list(_broadcast_shape(epilogue, step.side))
            roles[f"side{sides}"] = _argument(epilogue.operands[step.side], "side operand")
            sides += 1
        post_ops.append(entry)
    return post_ops, roles, read.bias is not None


def _zero_pad(pad: ir.Operation) -> tuple[ir.Value, list[int], list[int]]:
    """(the padded tensor, pads begin, pads end of H and W) of a zero-padding gather."""
    data = ir.DictAttr(pad.attributes[PAD_TAG])
    low, high = list(ir.DenseI64ArrayAttr(data["low"])), list(ir.DenseI64ArrayAttr(data["high"]))
    if float(ir.FloatAttr(data["value"]).value) != 0.0:
        raise NotApplicable("the convolution's input is padded with a value other than zero")
    if len(low) != 4 or any(low[:2]) or any(high[:2]):
        raise NotApplicable("the convolution's input is padded along N or C")
    sources = {
        value
        for op in pad.regions[0].blocks[0].operations
        if op.operation.name == "tensor.extract"
        for value in op.operation.operands[:1]
    }
    if len(sources) != 1:
        raise NotApplicable("the padding gather does not read one tensor")
    return next(iter(sources)), low[2:], high[2:]


def _conv(main: ir.Operation, pad: ir.Operation | None = None) -> tuple[dict[str, Any], dict[str, int]]:
    x, w = main.operands[0], main.operands[1]
    pads_begin, pads_end = [0, 0], [0, 0]
    if pad is not None:
        x, pads_begin, pads_end = _zero_pad(pad)
    x_shape, w_shape = _shape(x), _shape(w)
    depthwise = main.name == "linalg.depthwise_conv_2d_nchw_chw"
    if depthwise:
        w_shape = (w_shape[0], 1, w_shape[1], w_shape[2])
    spec = {
        "op": "conv",
        "x_shape": list(x_shape),
        "w_shape": list(w_shape),
        "y_shape": list(_shape(main.results[0])),
        "pads_begin": pads_begin,
        "pads_end": pads_end,
        "strides": list(_ints(main, "strides")),
        "dilations": list(_ints(main, "dilations")),
        "groups": x_shape[1] if depthwise else 1,
    }
    return spec, {"x": _argument(x, "input"), "w": _argument(w, "filter")}


def _matmul(main: ir.Operation) -> tuple[dict[str, Any], dict[str, int]]:
    a, b = main.operands[0], main.operands[1]
    m, k = _shape(a)
    n = _shape(main.results[0])[1]
    spec = {"op": "matmul", "m": m, "k": k, "n": n, "transposed_weights": main.name == "linalg.matmul_transpose_b"}
    return spec, {"a": _argument(a, "left operand"), "b": _argument(b, "right operand")}


@functools.lru_cache(maxsize=1024)
def library_match(task: KernelTask, library: str) -> LibraryMatch | str:
    """The library call for `task`, or why there is none."""
    try:
        return match_cuda_kernel(task, library)
    except NotApplicable as err:
        return str(err)
