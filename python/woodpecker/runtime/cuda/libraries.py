"""Vendor-library calls of a CUDA inference plan: cuDNN convolutions and cuBLASLt matmuls (no MLIR needed).

A `LibraryCall` is built once from a JSON-able spec (what the compiler hands the executor), is
then bound once to raw device pointers (ints) into the executor's memory arena, and is finally
enqueued on the executor's stream as often as wanted. This module imports only the standard
library and numpy; the libraries are optional (the `cuda` extra) and imported lazily:

    cuDNN     the official cuDNN Python frontend, `nvidia-cudnn-frontend` (module `cudnn`)
    cuBLASLt  the low-level bindings of `nvmath-python` (`nvmath.bindings.cublasLt`)

Specs (data dense and row-major, f32 everywhere):

    conv    {"op": "conv", "x_shape": [N, C, H, W], "w_shape": [K, C // g, R, S], "y_shape": [N, K, P, Q],
             "pads_begin", "pads_end", "strides", "dilations": one entry per spatial dim, "groups": g,
             "bias": bool (a length-K vector, added first), "post_ops": [...]}   (2-D or 3-D spatial)
    matmul  {"op": "matmul", "m": M, "k": K, "n": N, "transposed_weights": bool, "bias": bool,
             "post_ops": [...]}: Y[M, N] = A[M, K] @ B, B stored K x N (or N x K, then Y = A @ B^T);
             bias: a length-N vector added to every row first.

post_ops apply in order to the running value after the bias: eltwise (oneDNN semantics) "relu"
(alpha = negative slope), "clip" [alpha, beta], "logistic", "tanh", "swish" (v * sigmoid(alpha v)),
"linear" (alpha v + beta); binary "add" / "sub" / "mul" / "div" with a run-time side tensor of the
output's rank that broadcasts (every dim equal to the output's or 1). Call-time pointer roles:
conv "x", "w", "bias", "side0", "side1", ..., "y"; matmul "a", "b", "bias", "side0", ..., "y".

What each library runs (`cudnn_support` / `cublas_support` say why not, statically, without a GPU
or the packages):

  cuDNN: one fused graph: conv_fprop (cross-correlation, NCHW / KCRS dense, pre/post padding,
    stride, dilation; groups are implied by the filter's C // g) followed by pointwise ops:
    bias = add of a [1, K, 1, ...] tensor; relu (negative_slope), clip = relu(lower_clip,
    upper_clip), logistic = sigmoid, tanh, swish(swish_beta); add / sub / mul / div with the side
    tensors at their broadcast dims and dense strides. "linear" and any other alg are refused.
    The graph is f32 for io, intermediates and compute, and engines carrying the numerical notes
    TENSOR_CORE, DOWN_CONVERT_INPUTS or REDUCED_PRECISION_REDUCTION are deselected, so TF32 is off.
    Heuristics A then FALLBACK; when no engine supports the graph the call raises
    `LibraryUnavailable` (no split into several graphs is attempted here: the executor then
    tries the plain convolution followed by the step's generated epilogue kernel).

  cuBLASLt: D = act(alpha * op(A) op(B) + beta * C + bias) with the epilogues DEFAULT, BIAS, RELU
    and RELU_BIAS: post_ops may be [], [add], [relu], [add, relu] where the add's side has exactly
    the output's shape [M, N] (it becomes C with beta = 1) and relu has slope 0. Compute type
    CUBLAS_COMPUTE_32F (not _FAST_TF32: TF32 off), scale type and all matrices CUDA_R_32F.

  Column-major mapping. cuBLASLt is column-major; a row-major X[r, c] is the column-major matrix
  X^T (c rows, r cols, ld c). So Y = A @ B is computed as Y^T = B^T A^T: cuBLASLt's "A" operand is
  our B, its "B" operand is our A, and cuBLAS (m, n, k) = (N, M, K):
      cuBLAS A = our B   plain: N x K, ld N, TRANSA = N      transposed_weights: K x N, ld K, TRANSA = T
      cuBLAS B = our A   K x M, ld K, TRANSB = N
      C, D = Y^T         N x M, ld N (C is the residual side, or D itself with beta = 0)
  The bias epilogue adds a vector along the rows of D (length N): our per-output-feature bias.

Capture safety: everything that allocates, synchronizes or queries (graph build, heuristics,
plan build, descriptor creation, handle creation and its stream) happens in the constructor and
`bind`; `enqueue` only calls `graph.execute` / `cublasLtMatmul` with the bound pointers and the
workspace pointer the executor gave (`workspace_bytes` says how much). Host-side scalars (alpha,
beta, the chosen algorithm) live on the call object for its lifetime.

Errors: `LibraryUnavailable` (a RuntimeError) when a package is missing or the library cannot
build or support a call on this device ("cuDNN cannot run kernel k3_conv: ..."); the executor
falls back to the generated kernel. `bind` raises ValueError for a missing pointer role or a
missing workspace, and LibraryUnavailable for a cuDNN operand that is not 16-byte aligned (the
frontend's alignment assumption); for cuBLASLt operands under 256-byte alignment it re-queries
the heuristic with the real alignments, within the workspace already reported.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

LIBRARIES = ("cudnn", "cublas")
_DISPLAY = {"cudnn": "cuDNN", "cublas": "cuBLASLt"}
_MODULES = {"cudnn": "cudnn", "cublas": "nvmath.bindings.cublasLt"}
_PACKAGES = {"cudnn": "nvidia-cudnn-frontend", "cublas": "nvmath-python"}

FLT_MAX = 3.4028234663852886e38
ELTWISE_ALGS = ("relu", "clip", "logistic", "tanh", "swish", "linear")
BINARY_ALGS = ("add", "sub", "mul", "div")
_CUDNN_ELTWISE = ("relu", "clip", "logistic", "tanh", "swish")
_CUDNN_DENIED_NOTES = ("TENSOR_CORE", "DOWN_CONVERT_INPUTS", "REDUCED_PRECISION_REDUCTION")

# C enum values of cublas_api.h / library_types.h (ABI-stable).
CUDA_R_32F = 0
CUBLAS_COMPUTE_32F = 68
CUBLAS_OP_N = 0
CUBLAS_OP_T = 1
# Workspace cap for the cuBLASLt heuristic (bytes); the chosen algorithm says what it needs.
CUBLASLT_MAX_WORKSPACE = 32 * 1024 * 1024
CUBLASLT_ALGO_COUNT = 8
_WORKSPACE_PAD = 16  # as nvmath-python does: an epilogue may touch a little past the reported workspace
# cublasLtMatmulHeuristicResult_t (used when the bindings do not export the dtype).
_HEURISTIC_RESULT_DTYPE = np.dtype(
    [
        ("algo", np.uint64, (8,)),
        ("workspace_size", np.uint64),
        ("state", np.int32),
        ("waves_count", np.float32),
        ("reserved", np.int32, (4,)),
    ]
)
CUDNN_ALIGNMENT = 16  # the frontend's default tensor alignment assumption (bytes)


class LibraryUnavailable(RuntimeError):
    """The library cannot run this call here (package missing, unsupported spec or device)."""


def _unavailable(library: str, name: str, reason: str) -> LibraryUnavailable:
    return LibraryUnavailable(f"{_DISPLAY[library]} cannot run kernel {name}: {reason}")


def _check_library(library: str) -> None:
    if library not in LIBRARIES:
        raise ValueError(f"unknown library {library!r} (known: {', '.join(LIBRARIES)})")


def availability(library: str) -> str | None:
    """None when `library`'s Python package imports here, else why not (no GPU needed)."""
    _check_library(library)
    try:
        importlib.import_module(_MODULES[library])
    except Exception as exc:  # ImportError, or a missing shared library raised as OSError
        return f"{_PACKAGES[library]} ({_MODULES[library]}) is not importable: {type(exc).__name__}: {exc}"
    return None


def _import(library: str, name: str) -> Any:
    reason = availability(library)
    if reason is not None:
        raise _unavailable(library, name, reason)
    return importlib.import_module(_MODULES[library])


# ----------------------------------------------------------------------------------------------
# Static checks
# ----------------------------------------------------------------------------------------------


def _row_major(shape: Sequence[int]) -> list[int]:
    strides, step = [], 1
    for extent in reversed(list(shape)):
        strides.append(step)
        step *= int(extent)
    return strides[::-1]


def _ints(value: Any, what: str, length: int | None = None) -> list[int]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{what} must be a list of ints, got {value!r}")
    if length is not None and len(value) != length:
        raise ValueError(f"{what} must have {length} entries, got {list(value)}")
    return [int(v) for v in value]


def _check_post_ops(post_ops: Any, out_shape: Sequence[int]) -> int:
    """Validates post_ops against the output shape (ValueError); returns the number of sides."""
    if not isinstance(post_ops, (list, tuple)):
        raise ValueError(f"post_ops must be a list, got {post_ops!r}")
    sides = 0
    for i, op in enumerate(post_ops):
        if not isinstance(op, Mapping):
            raise ValueError(f"post_op {i} must be an object, got {op!r:.60}")
        kind, alg = op.get("kind"), op.get("alg")
        for scalar in ("alpha", "beta"):
            value = op.get(scalar, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"post_op {i}: {scalar} must be a finite number, got {value!r:.60}")
        if kind == "eltwise":
            if not isinstance(alg, str):
                raise ValueError(f"post_op {i}: eltwise alg must be a string, got {alg!r}")
        elif kind == "binary":
            if alg not in BINARY_ALGS:
                raise ValueError(f"post_op {i}: unknown binary alg {alg!r} (known: {', '.join(BINARY_ALGS)})")
            shape = _ints(op.get("shape"), f"post_op {i} shape")
            if len(shape) != len(out_shape) or any(s not in (1, o) for s, o in zip(shape, out_shape, strict=True)):
                raise ValueError(f"post_op {i}: side shape {shape} does not broadcast to the output {list(out_shape)}")
            sides += 1
        else:
            raise ValueError(f"post_op {i}: unknown kind {kind!r} (eltwise or binary)")
    return sides


def _conv_geometry(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The conv spec's geometry, checked for consistency (ValueError)."""
    if spec.get("op") != "conv":
        raise ValueError(f"not a conv spec (op {spec.get('op')!r})")
    x = _ints(spec.get("x_shape"), "x_shape")
    rank = len(x)
    if rank not in (4, 5):
        raise ValueError(f"x_shape {x} must be 4-D (NCHW) or 5-D (NCDHW)")
    spatial = rank - 2
    w = _ints(spec.get("w_shape"), "w_shape", rank)
    y = _ints(spec.get("y_shape"), "y_shape", rank)
    pads_begin = _ints(spec.get("pads_begin", [0] * spatial), "pads_begin", spatial)
    pads_end = _ints(spec.get("pads_end", [0] * spatial), "pads_end", spatial)
    strides = _ints(spec.get("strides", [1] * spatial), "strides", spatial)
    dilations = _ints(spec.get("dilations", [1] * spatial), "dilations", spatial)
    groups = spec.get("groups", 1)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    n, c = x[0], x[1]
    k = w[0]
    if c % groups or k % groups or w[1] * groups != c:
        raise ValueError(f"groups {groups} does not fit x_shape {x} and w_shape {w}")
    if min(strides) < 1 or min(dilations) < 1 or min(pads_begin + pads_end) < 0 or min(x + w) < 1:
        raise ValueError("strides and dilations must be >= 1, pads >= 0, extents >= 1")
    expected = [n, k]
    for i in range(spatial):
        span = (w[i + 2] - 1) * dilations[i] + 1
        expected.append((x[i + 2] + pads_begin[i] + pads_end[i] - span) // strides[i] + 1)
    if y != expected:
        raise ValueError(f"y_shape {y} does not match the convolution's output {expected}")
    return {
        "x": x,
        "w": w,
        "y": y,
        "pads_begin": pads_begin,
        "pads_end": pads_end,
        "strides": strides,
        "dilations": dilations,
        "groups": groups,
        "bias": bool(spec.get("bias", False)),
        "post_ops": list(spec.get("post_ops", [])),
    }


def cudnn_support(spec: Mapping[str, Any]) -> str | None:
    """None when `spec` is one cuDNN graph (conv_fprop + pointwise ops), else the reason.

    Static: needs neither the package nor a GPU (an engine may still refuse the graph at build).
    """
    if spec.get("op") != "conv":
        return f"cuDNN calls here run only convolutions, not {spec.get('op')!r}"
    try:
        geometry = _conv_geometry(spec)
        _check_post_ops(geometry["post_ops"], geometry["y"])
    except (ValueError, TypeError, AttributeError) as exc:
        return f"malformed conv spec: {exc}"
    for i, op in enumerate(geometry["post_ops"]):
        if op["kind"] == "eltwise" and op["alg"] not in _CUDNN_ELTWISE:
            return f"post_op {i}: {op['alg']!r} eltwise has no cuDNN pointwise op here"
    return None


def _matmul_geometry(spec: Mapping[str, Any]) -> tuple[int, int, int]:
    if spec.get("op") != "matmul":
        raise ValueError(f"not a matmul spec (op {spec.get('op')!r})")
    m, k, n = (spec.get(key) for key in ("m", "k", "n"))
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (m, k, n)):
        raise ValueError(f"m, k, n must be positive ints, got {m!r}, {k!r}, {n!r}")
    return m, k, n


def _cublas_epilogue(spec: Mapping[str, Any]) -> tuple[bool, bool, bool]:
    """(bias, residual, relu) of a matmul spec; ValueError with the reason when not an epilogue."""
    m, _, n = _matmul_geometry(spec)
    post_ops = list(spec.get("post_ops", []))
    _check_post_ops(post_ops, [m, n])
    residual = relu = False
    for i, op in enumerate(post_ops):
        if op["kind"] == "binary":
            if op["alg"] != "add":
                raise ValueError(f"post_op {i}: binary {op['alg']!r} is not a cuBLASLt epilogue (only a residual add)")
            if list(op["shape"]) != [m, n]:
                raise ValueError(
                    f"post_op {i}: the residual add's side {list(op['shape'])} is broadcast; cuBLASLt's C must be the "
                    f"full output [{m}, {n}]"
                )
            if residual:
                raise ValueError(f"post_op {i}: a second residual add (cuBLASLt has one C)")
            if relu:
                raise ValueError(f"post_op {i}: a residual add after relu (cuBLASLt applies the activation last)")
            residual = True
        elif op["alg"] == "relu":
            if float(op.get("alpha", 0.0)) != 0.0:
                raise ValueError(f"post_op {i}: leaky relu (slope {op.get('alpha')}) is not a cuBLASLt epilogue")
            if relu:
                raise ValueError(f"post_op {i}: a second relu")
            relu = True
        else:
            raise ValueError(f"post_op {i}: {op['alg']!r} eltwise is not a cuBLASLt epilogue here (only relu)")
    return bool(spec.get("bias", False)), residual, relu


def cublas_support(spec: Mapping[str, Any]) -> str | None:
    """None when `spec` is one cuBLASLt matmul with epilogue (bias, relu, residual as C), else why not."""
    if spec.get("op") != "matmul":
        return f"cuBLASLt calls here run only matmuls, not {spec.get('op')!r}"
    try:
        _cublas_epilogue(spec)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        return str(exc)
    return None


def operand_elements(library: str, spec: Mapping[str, Any]) -> dict[str, int]:
    """The f32 element count of every operand role a `library` call with `spec` reads or writes
    (what the buffers bound to those roles must hold); ValueError when the spec is malformed.
    Static: needs neither the package nor a GPU."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"a {library} spec must be an object, not {type(spec).__name__}")
    try:
        if library == "cudnn":
            g = _conv_geometry(spec)
            sizes = {"x": math.prod(g["x"]), "w": math.prod(g["w"]), "y": math.prod(g["y"])}
            channels = g["y"][1]
            post_ops, out_shape = g["post_ops"], g["y"]
        elif library == "cublas":
            m, k, n = _matmul_geometry(spec)
            sizes = {"a": m * k, "b": k * n, "y": m * n}
            channels = n
            post_ops, out_shape = spec.get("post_ops", []), [m, n]
        else:
            raise ValueError(f"unknown library {library!r} (known: {', '.join(LIBRARIES)})")
        _check_post_ops(post_ops, out_shape)
    except (TypeError, AttributeError, KeyError) as exc:
        raise ValueError(f"malformed {library} spec ({type(exc).__name__}: {exc})") from None
    for flag in ("bias", "transposed_weights"):
        if not isinstance(spec.get(flag, False), bool):
            raise ValueError(f"{flag} must be true or false, got {spec.get(flag)!r:.60}")
    if spec.get("bias", False):
        sizes["bias"] = channels
    sides = [op for op in post_ops if op["kind"] == "binary"]
    for i, op in enumerate(sides):
        sizes[f"side{i}"] = math.prod(op["shape"])
    return sizes


# ----------------------------------------------------------------------------------------------
# Handles
# ----------------------------------------------------------------------------------------------


class LibraryContext:
    """Library handles for one executor and its stream (`stream`: the CUstream as an int).

    Handles are created lazily (the first call that needs one), bound to the stream once, and
    destroyed by `close`. Create the context with the executor's CUDA context current.
    """

    def __init__(self, stream: int):
        self.stream = int(stream)
        self._cudnn: Any = None
        self._cudnn_handle: Any = None
        self._lt: Any = None
        self._lt_handle: int | None = None

    def cudnn_handle(self) -> Any:
        if self._cudnn_handle is None:
            cudnn = _import("cudnn", "(handle)")
            try:
                handle = cudnn.create_handle()
                cudnn.set_stream(handle=handle, stream=self.stream)
            except Exception as exc:
                raise LibraryUnavailable(f"cuDNN: cannot create a handle on stream {self.stream:#x}: {exc}") from exc
            self._cudnn, self._cudnn_handle = cudnn, handle
        return self._cudnn_handle

    def cublaslt_handle(self) -> int:
        if self._lt_handle is None:
            lt = _import("cublas", "(handle)")
            try:
                handle = int(lt.create())
            except Exception as exc:
                raise LibraryUnavailable(f"cuBLASLt: cannot create a handle: {exc}") from exc
            self._lt, self._lt_handle = lt, handle
        return self._lt_handle

    def close(self) -> None:
        if self._cudnn_handle is not None:
            handle, self._cudnn_handle = self._cudnn_handle, None
            with contextlib.suppress(Exception):  # the CUDA context may already be gone
                self._cudnn.destroy_handle(handle)
        if self._lt_handle is not None:
            handle, self._lt_handle = self._lt_handle, None
            with contextlib.suppress(Exception):
                self._lt.destroy(handle)

    def __enter__(self) -> LibraryContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------
# Calls
# ----------------------------------------------------------------------------------------------


def _alignment(ptr: int) -> int:
    """The largest power of two (up to 256) dividing `ptr`."""
    return 256 if ptr % 256 == 0 else ptr & -ptr


class LibraryCall(abc.ABC):
    """One library call: built in the constructor, `bind` once, then `enqueue` (capture-safe).

    The base constructor checks that the library supports `spec` and imports its package; both
    failures are `LibraryUnavailable`."""

    library: str = ""
    workspace_bytes: int = 0

    def __init__(self, spec: Mapping[str, Any], name: str):
        self.name = name
        self.spec = dict(spec)
        reason = _SUPPORT[self.library](spec)
        if reason is not None:
            raise _unavailable(self.library, name, reason)
        self._module = _import(self.library, name)

    @abc.abstractmethod
    def roles(self) -> list[str]:
        """The pointer roles `bind` needs."""

    def _take_pointers(self, pointers: Mapping[str, int], workspace: int) -> dict[str, int]:
        out = {}
        for role in self.roles():
            if role not in pointers:
                raise ValueError(f"kernel {self.name} ({_DISPLAY[self.library]}): no pointer for role {role!r}")
            ptr = pointers[role]
            if isinstance(ptr, bool) or not isinstance(ptr, (int, np.integer)) or int(ptr) <= 0:
                raise ValueError(
                    f"kernel {self.name} ({_DISPLAY[self.library]}): role {role!r} needs a device pointer, got {ptr!r}"
                )
            if int(ptr) % 4:
                raise ValueError(f"kernel {self.name}: role {role!r} pointer {int(ptr):#x} is not f32-aligned")
            out[role] = int(ptr)
        workspace = int(workspace or 0)
        if self.workspace_bytes and not workspace:
            raise ValueError(f"kernel {self.name}: needs a workspace of {self.workspace_bytes} bytes, got none")
        return out

    @abc.abstractmethod
    def bind(self, pointers: Mapping[str, int], workspace: int) -> None:
        """Fixes the device pointers (by role) and the workspace, once."""

    @abc.abstractmethod
    def enqueue(self) -> None:
        """Enqueues the call on the context's stream (no allocation, no synchronization)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Frees what the call holds."""


def _side_roles(count: int) -> list[str]:
    return [f"side{i}" for i in range(count)]


class CudnnConvCall(LibraryCall):
    """conv_fprop + bias + post-ops as one cuDNN graph (see the module docstring)."""

    library = "cudnn"

    def __init__(self, spec: Mapping[str, Any], name: str, context: LibraryContext):
        super().__init__(spec, name)
        self._geometry = g = _conv_geometry(spec)
        self._sides = _check_post_ops(g["post_ops"], g["y"])
        cudnn = self._module
        self._cudnn = cudnn
        self._handle = context.cudnn_handle()
        self._pack: dict[Any, int] | None = None
        self._workspace = 0
        what = self.describe()
        try:
            self._build(cudnn)
        except LibraryUnavailable:
            raise
        except Exception as exc:
            raise _unavailable("cudnn", name, f"no engine supports {what} ({type(exc).__name__}: {exc})") from exc

    def describe(self) -> str:
        g = self._geometry
        ops = ["conv"] + (["bias"] if g["bias"] else []) + [op["alg"] for op in g["post_ops"]]
        layout = "NCHW" if len(g["x"]) == 4 else "NCDHW"
        return f"{'+'.join(ops)} with {layout} f32"

    def roles(self) -> list[str]:
        return ["x", "w"] + (["bias"] if self._geometry["bias"] else []) + _side_roles(self._sides) + ["y"]

    def _build(self, cudnn: Any) -> None:
        g = self._geometry
        f32 = cudnn.data_type.FLOAT
        graph = cudnn.pygraph(io_data_type=f32, intermediate_data_type=f32, compute_data_type=f32, handle=self._handle)
        tensors: dict[str, Any] = {}

        def tensor(role: str, dim: Sequence[int]) -> Any:
            t = graph.tensor(name=role, dim=list(dim), stride=_row_major(dim), data_type=f32)
            tensors[role] = t
            return t

        x, w = tensor("x", g["x"]), tensor("w", g["w"])
        v = graph.conv_fprop(
            image=x,
            weight=w,
            pre_padding=g["pads_begin"],
            post_padding=g["pads_end"],
            stride=g["strides"],
            dilation=g["dilations"],
            compute_data_type=f32,
            name="conv",
        )
        if g["bias"]:
            bias = tensor("bias", [1, g["y"][1]] + [1] * (len(g["y"]) - 2))
            v = graph.add(a=v, b=bias, compute_data_type=f32, name="bias")
        side = 0
        for i, op in enumerate(g["post_ops"]):
            alg, alpha, beta = op["alg"], float(op.get("alpha", 0.0)), float(op.get("beta", 0.0))
            label = f"post{i}_{alg}"
            if op["kind"] == "binary":
                s = tensor(f"side{side}", op["shape"])
                side += 1
                v = getattr(graph, alg)(a=v, b=s, compute_data_type=f32, name=label)
            elif alg == "relu":
                if alpha == 0.0:
                    v = graph.relu(input=v, compute_data_type=f32, name=label)
                else:
                    v = graph.relu(input=v, negative_slope=alpha, compute_data_type=f32, name=label)
            elif alg == "clip":
                v = graph.relu(
                    input=v,
                    lower_clip=max(alpha, -FLT_MAX),
                    upper_clip=min(beta, FLT_MAX),
                    compute_data_type=f32,
                    name=label,
                )
            elif alg == "logistic":
                v = graph.sigmoid(input=v, compute_data_type=f32, name=label)
            elif alg == "tanh":
                v = graph.tanh(input=v, compute_data_type=f32, name=label)
            elif alg == "swish":
                v = graph.swish(input=v, swish_beta=alpha, compute_data_type=f32, name=label)
            else:  # cudnn_support refused it already
                raise LibraryUnavailable(f"'{alg}' eltwise has no cuDNN pointwise op here")
        v.set_output(True).set_data_type(f32)
        v.set_dim(list(g["y"]))
        v.set_stride(_row_major(g["y"]))
        tensors["y"] = v
        graph.validate()
        graph.build_operation_graph()
        graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        # TF32 off: no tensor-core (TF32 for f32 data) or down-converting engines.
        notes = cudnn.numerical_note
        denied = [getattr(notes, n) for n in _CUDNN_DENIED_NOTES if hasattr(notes, n)]
        graph.deselect_numeric_notes(denied)
        graph.check_support()
        graph.build_plans()
        self.workspace_bytes = int(graph.get_workspace_size())
        self._graph, self._tensors = graph, tensors

    def bind(self, pointers: Mapping[str, int], workspace: int) -> None:
        ptrs = self._take_pointers(pointers, workspace)
        for role, ptr in ptrs.items():
            if ptr % CUDNN_ALIGNMENT:
                raise LibraryUnavailable(
                    f"cuDNN cannot run kernel {self.name}: role {role!r} pointer {ptr:#x} is not "
                    f"{CUDNN_ALIGNMENT}-byte aligned (the graph assumes it)"
                )
        self._pack = {self._tensors[role]: ptr for role, ptr in ptrs.items()}
        self._workspace = int(workspace or 0)

    def enqueue(self) -> None:
        if self._pack is None:
            raise RuntimeError(f"kernel {self.name} (cuDNN): enqueue before bind")
        self._graph.execute(self._pack, self._workspace, handle=self._handle)

    def close(self) -> None:
        self._pack = None
        self._graph = self._tensors = None


class CublasLtMatmulCall(LibraryCall):
    """One cublasLtMatmul with an epilogue, in the column-major mapping of the module docstring."""

    library = "cublas"

    def __init__(self, spec: Mapping[str, Any], name: str, context: LibraryContext):
        super().__init__(spec, name)
        self._m, self._k, self._n = _matmul_geometry(spec)
        self._bias, self._residual, self._relu = _cublas_epilogue(spec)
        self._transposed = bool(spec.get("transposed_weights", False))
        lt = self._module
        self._lt = lt
        self._handle = context.cublaslt_handle()
        self._stream = context.stream
        self._desc: int | None = None
        self._layouts: list[int] = []
        self._pref: int | None = None
        self._args: tuple[Any, ...] | None = None
        # Host scalars (pointer mode HOST): alive as long as the call.
        self._alpha = np.ones(1, dtype=np.float32)
        self._beta = np.array([1.0 if self._residual else 0.0], dtype=np.float32)
        try:
            self._build()
        except LibraryUnavailable:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise _unavailable("cublas", name, f"{self.describe()}: {type(exc).__name__}: {exc}") from exc

    def describe(self) -> str:
        t = "A @ B^T" if self._transposed else "A @ B"
        return f"matmul {self._m}x{self._k}x{self._n} ({t}) epilogue {self.epilogue_name()} f32"

    def epilogue_name(self) -> str:
        return {(False, False): "DEFAULT", (True, False): "BIAS", (False, True): "RELU", (True, True): "RELU_BIAS"}[
            (self._bias, self._relu)
        ]

    def roles(self) -> list[str]:
        return ["a", "b"] + (["bias"] if self._bias else []) + (["side0"] if self._residual else []) + ["y"]

    def _set(self, setter: Any, obj: int, attr: Any, value: np.ndarray) -> None:
        setter(obj, int(attr), value.ctypes.data, value.nbytes)

    def _build(self) -> None:
        lt, m, k, n = self._lt, self._m, self._k, self._n
        attr = lt.MatmulDescAttribute
        self._desc = int(lt.matmul_desc_create(CUBLAS_COMPUTE_32F, CUDA_R_32F))
        set_desc = lt.matmul_desc_set_attribute
        trans_a = CUBLAS_OP_T if self._transposed else CUBLAS_OP_N
        self._set(set_desc, self._desc, attr.TRANSA, np.array([trans_a], dtype=np.int32))
        self._set(set_desc, self._desc, attr.TRANSB, np.array([CUBLAS_OP_N], dtype=np.int32))
        epilogue = int(getattr(lt.Epilogue, self.epilogue_name()))
        self._set(set_desc, self._desc, attr.EPILOGUE, np.array([epilogue], dtype=np.uint32))
        # cuBLAS A = our B, cuBLAS B = our A, C = D = Y^T (N x M, ld N).
        # B stored N x K row-major = K x N column-major (used transposed); K x N row-major = N x K column-major.
        a_layout = (k, n, k) if self._transposed else (n, k, n)
        b_layout = (k, m, k)  # A stored M x K row-major = K x M column-major
        d_layout = (n, m, n)
        self._a_desc = int(lt.matrix_layout_create(CUDA_R_32F, *a_layout))
        self._layouts.append(self._a_desc)
        self._b_desc = int(lt.matrix_layout_create(CUDA_R_32F, *b_layout))
        self._layouts.append(self._b_desc)
        self._d_desc = int(lt.matrix_layout_create(CUDA_R_32F, *d_layout))
        self._layouts.append(self._d_desc)
        self._pref = int(lt.matmul_preference_create())
        self.workspace_bytes = self._choose_algorithm(CUBLASLT_MAX_WORKSPACE, None)

    def _choose_algorithm(self, max_workspace: int, alignments: Mapping[str, int] | None) -> int:
        """Heuristic query (host only): picks the first algorithm; returns the workspace bytes it needs."""
        lt = self._lt
        pref_attr = lt.MatmulPreferenceAttribute
        set_pref = lt.matmul_preference_set_attribute
        self._set(set_pref, self._pref, pref_attr.MAX_WORKSPACE_BYTES, np.array([max_workspace], dtype=np.uint64))
        for which, value in (alignments or {}).items():
            self._set(
                set_pref, self._pref, getattr(pref_attr, f"MIN_ALIGNMENT_{which}_BYTES"), np.array([value], np.uint32)
            )
        dtype = getattr(lt, "matmul_heuristic_result_dtype", _HEURISTIC_RESULT_DTYPE)
        results = np.zeros(CUBLASLT_ALGO_COUNT, dtype=dtype)
        count = np.zeros(1, dtype=np.int32)
        lt.matmul_algo_get_heuristic(
            self._handle,
            self._desc,
            self._a_desc,
            self._b_desc,
            self._d_desc,
            self._d_desc,
            self._pref,
            CUBLASLT_ALGO_COUNT,
            results.ctypes.data,
            count.ctypes.data,
        )
        found = [i for i in range(int(count[0])) if int(results[i]["state"]) == 0]
        if not found:
            raise _unavailable(
                "cublas", self.name, f"no cuBLASLt algorithm for {self.describe()} (heuristic found none)"
            )
        self._results = results  # the chosen cublasLtMatmulAlgo_t lives here
        self._algo_ptr = results.ctypes.data + found[0] * results.dtype.itemsize + results.dtype.fields["algo"][1]
        need = int(results[found[0]]["workspace_size"])
        return need + _WORKSPACE_PAD if need and self.epilogue_name() != "DEFAULT" else need

    def bind(self, pointers: Mapping[str, int], workspace: int) -> None:
        ptrs = self._take_pointers(pointers, workspace)
        if self._bias:
            self._set(
                self._lt.matmul_desc_set_attribute,
                self._desc,
                self._lt.MatmulDescAttribute.BIAS_POINTER,
                np.array([ptrs["bias"]], dtype=np.int64),
            )
        c = ptrs["side0"] if self._residual else ptrs["y"]
        operands = {"A": ptrs["b"], "B": ptrs["a"], "C": c, "D": ptrs["y"]}
        aligned = {which: _alignment(ptr) for which, ptr in operands.items()}
        if min(aligned.values()) < 256:  # the first query assumed 256-byte aligned operands: ask again
            pad = _WORKSPACE_PAD if self.workspace_bytes and self.epilogue_name() != "DEFAULT" else 0
            need = self._choose_algorithm(self.workspace_bytes - pad, aligned)
            if need > self.workspace_bytes:
                raise _unavailable("cublas", self.name, f"the algorithm for {aligned} needs {need} workspace bytes")
        self._args = (
            self._handle,
            self._desc,
            self._alpha.ctypes.data,
            operands["A"],
            self._a_desc,
            operands["B"],
            self._b_desc,
            self._beta.ctypes.data,
            operands["C"],
            self._d_desc,
            operands["D"],
            self._d_desc,
            self._algo_ptr,
            int(workspace or 0),
            self.workspace_bytes,
            self._stream,
        )

    def enqueue(self) -> None:
        if self._args is None:
            raise RuntimeError(f"kernel {self.name} (cuBLASLt): enqueue before bind")
        self._lt.matmul(*self._args)

    def close(self) -> None:
        lt = self._lt
        self._args = None
        for destroy, obj in (
            [(lt.matrix_layout_destroy, d) for d in self._layouts]
            + ([(lt.matmul_desc_destroy, self._desc)] if self._desc is not None else [])
            + ([(lt.matmul_preference_destroy, self._pref)] if self._pref is not None else [])
        ):
            with contextlib.suppress(Exception):
                destroy(obj)
        self._layouts, self._desc, self._pref = [], None, None


_SUPPORT = {"cudnn": cudnn_support, "cublas": cublas_support}


def make_call(library: str, spec: Mapping[str, Any], name: str, context: LibraryContext) -> LibraryCall:
    """Builds the call of `library` for `spec` (raises LibraryUnavailable when it cannot)."""
    _check_library(library)
    if library == "cudnn":
        return CudnnConvCall(spec, name, context)
    return CublasLtMatmulCall(spec, name, context)


def conv_reference(
    spec: Mapping[str, Any], x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, sides: Sequence[np.ndarray]
) -> np.ndarray:
    """float64 numpy reference of a conv spec (for tests and checks)."""
    g = _conv_geometry(spec)
    x = np.asarray(x, np.float64).reshape(g["x"])
    w = np.asarray(w, np.float64).reshape(g["w"])
    spatial = len(g["x"]) - 2
    x = np.pad(x, [(0, 0), (0, 0), *list(zip(g["pads_begin"], g["pads_end"], strict=True))])
    groups, k = g["groups"], g["w"][0]
    cg, kg = g["x"][1] // groups, k // groups
    y = np.zeros(g["y"], np.float64)
    out_sp = g["y"][2:]
    for offset in np.ndindex(*g["w"][2:]):
        index = tuple(
            slice(
                offset[i] * g["dilations"][i],
                offset[i] * g["dilations"][i] + (out_sp[i] - 1) * g["strides"][i] + 1,
                g["strides"][i],
            )
            for i in range(spatial)
        )
        patch = x[(slice(None), slice(None), *index)]  # N, C, *out
        for grp in range(groups):
            xs = patch[:, grp * cg : (grp + 1) * cg]
            ws = w[(slice(grp * kg, (grp + 1) * kg), slice(None), *offset)]  # kg, cg
            y[:, grp * kg : (grp + 1) * kg] += np.einsum("nc...,kc->nk...", xs, ws)
    if g["bias"]:
        y = y + np.asarray(bias, np.float64).reshape([1, k] + [1] * spatial)
    return apply_post_ops(y, g["post_ops"], sides)


def apply_post_ops(v: np.ndarray, post_ops: Sequence[Mapping[str, Any]], sides: Sequence[np.ndarray]) -> np.ndarray:
    """The post-op semantics of the specs, in float64 numpy."""
    side = 0
    for op in post_ops:
        alg, alpha, beta = op["alg"], float(op.get("alpha", 0.0)), float(op.get("beta", 0.0))
        if op["kind"] == "binary":
            s = np.asarray(sides[side], np.float64).reshape(op["shape"])
            side += 1
            v = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[alg](v, s)
        elif alg == "relu":
            v = np.where(v >= 0, v, alpha * v)
        elif alg == "clip":
            v = np.clip(v, alpha, beta)
        elif alg == "logistic":
            v = 1.0 / (1.0 + np.exp(-v))
        elif alg == "tanh":
            v = np.tanh(v)
        elif alg == "swish":
            v = v / (1.0 + np.exp(-alpha * v))
        elif alg == "linear":
            v = alpha * v + beta
        else:
            raise ValueError(f"unknown eltwise alg {alg!r}")
    return v


__all__ = [
    "LIBRARIES",
    "CublasLtMatmulCall",
    "CudnnConvCall",
    "LibraryCall",
    "LibraryContext",
    "LibraryUnavailable",
    "apply_post_ops",
    "availability",
    "conv_reference",
    "cublas_support",
    "cudnn_support",
    "make_call",
]
