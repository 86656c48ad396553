"""oneDNN 3.2 (the `onednn-cpu-gomp` 2023.2.0 wheel) through ctypes: convolution, matmul and pooling primitives.

Each primitive object owns its oneDNN handles (primitive descriptors, primitives, memory objects, the reordered
weights) and exposes what generated code needs to call it by address: the CPU stream, the runtime memory objects
whose data handle is set per call, and the list of `dnnl_primitive_execute` calls to make in order.

Layout. The tensors around a call are plain NCHW. A convolution either takes them as they are ("plain") or is
created with `format_tag_any` for src/dst and wrapped in reorders plain -> preferred -> plain ("blocked"; binary
post-op operands are then reordered into the destination's layout too). Measured on this AVX2 machine (AMD EPYC,
2 cores, batch 1, bias + relu, median of 50 calls, ms; other work was running, so +-20%; "auto" as below):

    layer                           plain  impl           blocked  impl (+ reorders)       auto
    3x3 64->64 56x56 p1              4.54  x64:gemm:jit     2.06   brgconv:avx2 (+2)       2.11
    1x1 256->64 56x56                1.60  x64:gemm:jit     1.43   brgconv_1x1:avx2 (+2)   1.29
    3x3 s2 128->128 56->28           2.83  x64:gemm:jit     1.93   brgconv:avx2 (+2)       2.00
    1x1 1024->256 14x14              1.10  x64:gemm:jit     1.02   brgconv_1x1:avx2 (+2)   1.02
    7x7 s2 3->64 224->112 p3         6.35  x64:gemm:jit     1.85   jit:avx2 (+1: dst)      1.81
    dw 3x3 96ch 112x112             12.93  x64:gemm:jit     2.97   brdgmm_dw:avx2 (+2)     2.75
    3x3 64->64 56x56 +add(residual)  6749  ref:any          2.46   brgconv:avx2 (+3)       2.70

With plain NCHW src/dst oneDNN 3.2 only has its im2col+sgemm convolution ("x64:gemm:jit"), and with a full-shape
binary post-op only the reference one ("ref:any", thousands of times slower); the blocked layout gets the JIT
kernels, and pays for its reorders everywhere measured. "auto" therefore uses the plain descriptor only when
its implementation is not a generic one (not "gemm"/"ref", e.g. on an AVX-512 machine) or when blocked finds
nothing better.

OpenMP. libdnnl.so.3 from this wheel links against the system's GNU libgomp.so.1 (versioned references
GOMP_*@GOMP_1.0 and omp_*@OMP_1.0). Intel's libiomp5.so, which the generated code uses, defines those same
versioned symbols. `load()` therefore dlopens libiomp5 with RTLD_GLOBAL before libdnnl: a dlopen-ed library
binds its undefined symbols to the global scope first, so libdnnl's OpenMP calls go to libiomp5. libgomp.so.1 is
still mapped (a DT_NEEDED of libdnnl) but none of its entry points is called, so it never starts threads. Checked
by counting /proc/self/task: after a libiomp5 GOMP_parallel region on 2 cores the process has 1 worker, and
running oneDNN convolutions then adds none; when libdnnl is loaded *before* libiomp5 it adds a second pool
(libgomp's worker). `OneDnn.openmp_library` names the file that provides the binding (dladdr on the global
scope's omp_set_num_threads, checked with RTLD_NOLOAD that libdnnl was not already loaded), and `set_threads`
calls omp_set_num_threads there. oneDNN fixes a primitive's thread count when it is created (a convolution made
with 1 thread stays at 1 thread when run after set_threads(2), and vice versa): call `set_threads` before
constructing the primitives.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from woodpecker.runtime.shared_libs import openmp_runtime

# ---------------------------------------------------------------------------------------------------------------
# oneDNN 3.2's enum values and argument indices (from oneapi/dnnl/dnnl_types.h and dnnl_common_types.h of the
# 2023.2.0 devel package); the library is checked to be 3.x when loaded.
# ---------------------------------------------------------------------------------------------------------------

_STATUS_NAMES = {
    0: "dnnl_success",
    1: "dnnl_out_of_memory",
    2: "dnnl_invalid_arguments",
    3: "dnnl_unimplemented",
    4: "dnnl_last_impl_reached",
    5: "dnnl_runtime_error",
    6: "dnnl_not_required",
    7: "dnnl_invalid_graph",
    8: "dnnl_invalid_graph_op",
    9: "dnnl_invalid_shape",
    10: "dnnl_invalid_data_type",
}
_F32 = 3  # dnnl_f32
_FORMAT_TAG_ANY = 1  # dnnl_format_tag_any
# The dnnl_format_tag_t values of the blocked channel layout (woodpecker.ops.layout: a tensor
# (N, CB, H, W, b) is nChw<b>c, or nhwc when it is one block of all its channels; a packed filter
# (OB, CBg, KH, KW, bi, bo) is OIhw<b>i<b>o, Abcd<b>a (Oihw<b>o) when bi = 1 (a first conv on an
# NCHW input, blocks of one channel), Goihw<b>g for a depthwise one), read from the 2023.2.0 devel
# package's dnnl_types.h.
FORMAT_TAGS = {
    "nchw": 5,
    "nhwc": 22,
    "nChw16c": 78,
    "nChw8c": 102,
    "OIhw16i16o": 79,
    "OIhw8i8o": 107,
    "Ohwi16o": 211,
    "Ohwi8o": 216,
    "Abcd16a": 73,  # Oihw16o
    "Abcd8a": 74,  # Oihw8o
    "Goihw16g": 114,
    "Goihw8g": 138,
}
_ENGINE_CPU = 1  # dnnl_cpu
_STREAM_DEFAULT_FLAGS = 1  # dnnl_stream_default_flags == dnnl_stream_in_order
_FORWARD_INFERENCE = 96  # dnnl_forward_inference
_CONVOLUTION_DIRECT = 0x1  # dnnl_convolution_direct
_SCRATCHPAD_MODE_USER = 1  # dnnl_scratchpad_mode_user
_QUERY_IMPL_INFO_STR = 8  # dnnl_query_impl_info_str
_QUERY_SRC_MD = 129  # dnnl_query_src_md
_QUERY_WEIGHTS_MD = 131  # dnnl_query_weights_md (index 1: bias)
_QUERY_DST_MD = 133  # dnnl_query_dst_md
_QUERY_SCRATCHPAD_MD = 136  # dnnl_query_scratchpad_md
_QUERY_EXEC_ARG_MD = 255  # dnnl_query_exec_arg_md (index: the DNNL_ARG_*)
_RUNTIME_OMP = 2  # DNNL_RUNTIME_OMP (dnnl_version_t.cpu_runtime)

_ARG_SRC = _ARG_FROM = 1  # DNNL_ARG_SRC == DNNL_ARG_FROM
_ARG_SRC_1 = 2  # DNNL_ARG_SRC_1
_ARG_DST = _ARG_TO = 17  # DNNL_ARG_DST == DNNL_ARG_TO
_ARG_WEIGHTS = 33  # DNNL_ARG_WEIGHTS
_ARG_BIAS = 41  # DNNL_ARG_BIAS
_ARG_SCRATCHPAD = 80  # DNNL_ARG_SCRATCHPAD
_ARG_ATTR_MULTIPLE_POST_OP_BASE = 32768  # DNNL_ARG_ATTR_MULTIPLE_POST_OP_BASE

_ELTWISE_ALGS = {  # dnnl_alg_kind_t
    "relu": 0x20,  # dnnl_eltwise_relu: x > 0 ? x : alpha * x
    "tanh": 0x21,  # dnnl_eltwise_tanh
    "linear": 0x26,  # dnnl_eltwise_linear: alpha * x + beta
    "logistic": 0x29,  # dnnl_eltwise_logistic
    "swish": 0x2C,  # dnnl_eltwise_swish: x * logistic(alpha * x)
    "clip": 0x2E,  # dnnl_eltwise_clip: min(beta, max(alpha, x))
}
_BINARY_ALGS = {  # dnnl_alg_kind_t
    "add": 0x1FFF0,  # dnnl_binary_add
    "mul": 0x1FFF1,  # dnnl_binary_mul
    "div": 0x1FFF4,  # dnnl_binary_div
    "sub": 0x1FFF5,  # dnnl_binary_sub
}
_POOLING_ALGS = {  # dnnl_alg_kind_t
    "max": 0x1FF,  # dnnl_pooling_max
    "avg_include_pad": 0x2FF,  # dnnl_pooling_avg_include_padding
    "avg_exclude_pad": 0x3FF,  # dnnl_pooling_avg_exclude_padding
}

_MAX_NDIMS = 12  # DNNL_MAX_NDIMS
_Dims = ctypes.c_int64 * _MAX_NDIMS  # dnnl_dims_t
_MEMORY_NONE = None  # DNNL_MEMORY_NONE
_MEMORY_ALLOCATE = ctypes.c_void_p(ctypes.c_size_t(-1).value)  # DNNL_MEMORY_ALLOCATE

# Implementation names (substrings, e.g. "x64:gemm:jit", "ref:any") of generic convolutions: "auto" avoids them.
_SLOW_IMPLS = ("gemm", "ref")


def _is_slow(impl: str) -> bool:
    return any(part in impl for part in _SLOW_IMPLS)


class _ExecArg(ctypes.Structure):
    """dnnl_exec_arg_t."""

    _fields_ = [("arg", ctypes.c_int), ("memory", ctypes.c_void_p)]


class _Version(ctypes.Structure):
    """dnnl_version_t."""

    _fields_ = [
        ("major", ctypes.c_int),
        ("minor", ctypes.c_int),
        ("patch", ctypes.c_int),
        ("hash", ctypes.c_char_p),
        ("cpu_runtime", ctypes.c_uint),
        ("gpu_runtime", ctypes.c_uint),
    ]


class _DlInfo(ctypes.Structure):
    """glibc's Dl_info, for dladdr."""

    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


_VP = ctypes.c_void_p
_PVP = ctypes.POINTER(ctypes.c_void_p)
_PDIMS = ctypes.POINTER(ctypes.c_int64)
_INT = ctypes.c_int

# Functions returning dnnl_status_t, with their argument types (enums are C ints).
_STATUS_FUNCTIONS: dict[str, tuple[type, ...]] = {
    "dnnl_engine_create": (_PVP, _INT, ctypes.c_size_t),
    "dnnl_stream_create": (_PVP, _VP, ctypes.c_uint),
    "dnnl_stream_wait": (_VP,),
    "dnnl_memory_desc_create_with_strides": (_PVP, _INT, _PDIMS, _INT, _PDIMS),
    "dnnl_memory_desc_create_with_tag": (_PVP, _INT, _PDIMS, _INT, _INT),
    "dnnl_memory_desc_destroy": (_VP,),
    "dnnl_memory_create": (_PVP, _VP, _VP, _VP),
    "dnnl_memory_set_data_handle": (_VP, _VP),
    "dnnl_memory_destroy": (_VP,),
    "dnnl_primitive_attr_create": (_PVP,),
    "dnnl_primitive_attr_destroy": (_VP,),
    "dnnl_primitive_attr_set_post_ops": (_VP, _VP),
    "dnnl_primitive_attr_set_scratchpad_mode": (_VP, _INT),
    "dnnl_post_ops_create": (_PVP,),
    "dnnl_post_ops_destroy": (_VP,),
    "dnnl_post_ops_append_eltwise": (_VP, _INT, ctypes.c_float, ctypes.c_float),
    "dnnl_post_ops_append_binary": (_VP, _INT, _VP),
    # (pd*, engine, prop_kind, alg_kind, src, weights, bias, dst, strides, dilates, padding_l, padding_r, attr)
    "dnnl_convolution_forward_primitive_desc_create": (_PVP, _VP, _INT, _INT, _VP, _VP, _VP, _VP, *[_PDIMS] * 4, _VP),
    "dnnl_matmul_primitive_desc_create": (_PVP, _VP, _VP, _VP, _VP, _VP, _VP),
    # (pd*, engine, prop_kind, alg_kind, src, dst, strides, kernel, dilation, padding_l, padding_r, attr)
    "dnnl_pooling_forward_primitive_desc_create": (_PVP, _VP, _INT, _INT, _VP, _VP, *[_PDIMS] * 5, _VP),
    "dnnl_reorder_primitive_desc_create": (_PVP, _VP, _VP, _VP, _VP, _VP),
    "dnnl_primitive_desc_query": (_VP, _INT, _INT, _VP),
    "dnnl_primitive_desc_destroy": (_VP,),
    "dnnl_primitive_create": (_PVP, _VP),
    "dnnl_primitive_execute": (_VP, _VP, _INT, _VP),
    "dnnl_primitive_destroy": (_VP,),
}
# Functions returning something else: name -> (restype, argtypes).
_OTHER_FUNCTIONS: dict[str, tuple[type, tuple[type, ...]]] = {
    "dnnl_primitive_desc_query_md": (_VP, (_VP, _INT, _INT)),
    "dnnl_memory_desc_equal": (_INT, (_VP, _VP)),
    "dnnl_memory_desc_get_size": (ctypes.c_size_t, (_VP,)),
    "dnnl_version": (ctypes.POINTER(_Version), ()),
}


class OneDnnError(Exception):
    """A oneDNN call failed; `function` and `status` name the call and its dnnl_status_t."""

    def __init__(self, message: str, function: str = "", status: str = "") -> None:
        super().__init__(message)
        self.function = function
        self.status = status


class OneDnnUnavailable(OneDnnError):
    """The oneDNN package is not installed or libdnnl fails to load."""


# ---------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------


def library_path() -> Path | None:
    """Where libdnnl.so.3 (from the onednn-cpu-gomp package) is, or None."""
    candidates = [Path(sys.prefix) / "lib" / "libdnnl.so.3", Path(sys.base_prefix) / "lib" / "libdnnl.so.3"]
    candidates += [Path(p).parent.parent / "libdnnl.so.3" for p in sys.path if p.endswith("site-packages")]
    return next((path for path in candidates if path.exists()), None)


class OneDnn:
    """The loaded library, with the process's CPU engine and stream (see `load`)."""

    def __init__(self, path: Path, lib: ctypes.CDLL, openmp: ctypes.CDLL | None, preloaded: bool) -> None:
        self.path = path
        self._lib = lib
        self._openmp = openmp  # kept loaded (RTLD_GLOBAL) for as long as libdnnl is
        version = lib.dnnl_version().contents
        self.version = (version.major, version.minor, version.patch)
        self.cpu_runtime = version.cpu_runtime
        engine, stream = ctypes.c_void_p(), ctypes.c_void_p()
        self.call("dnnl_engine_create", ctypes.byref(engine), _ENGINE_CPU, 0)
        self.call("dnnl_stream_create", ctypes.byref(stream), engine, _STREAM_DEFAULT_FLAGS)
        self.engine: int = engine.value or 0
        self.stream: int = stream.value or 0
        self.openmp_library, self._set_num_threads, self._get_max_threads = _bound_openmp(lib, preloaded)

    def call(self, function: str, *args: object) -> None:
        """Call a function returning dnnl_status_t; raise OneDnnError naming it unless it returns dnnl_success."""
        status = getattr(self._lib, function)(*args)
        if status != 0:
            name = _STATUS_NAMES.get(status, f"dnnl_status_t {status}")
            raise OneDnnError(f"{function} failed: {name}", function, name)

    def function(self, name: str) -> ctypes._CFuncPtr:
        """A function that does not return a status (queries)."""
        return getattr(self._lib, name)


def _declare(lib: ctypes.CDLL) -> None:
    for name, argtypes in _STATUS_FUNCTIONS.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = ctypes.c_int, list(argtypes)
    for name, (restype, argtypes) in _OTHER_FUNCTIONS.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, list(argtypes)


def _is_loaded(path: Path) -> bool:
    try:
        ctypes.CDLL(str(path), mode=os.RTLD_NOLOAD)
    except OSError:
        return False
    return True


def _bound_openmp(lib: ctypes.CDLL, preloaded: bool) -> tuple[str, ctypes._CFuncPtr, ctypes._CFuncPtr]:
    """The OpenMP runtime that libdnnl's omp_* references are bound to, and its thread-count functions.

    A library loaded with dlopen binds its undefined symbols to the global scope's definitions first (dlsym on the
    main program handle searches exactly that scope), then to its own dependencies' (dlsym on its handle). The
    global scope is the one of when libdnnl was loaded: when it was already loaded before `load`, it is assumed to
    have bound to its own libgomp.
    """
    functions = None
    if not preloaded:
        with contextlib.suppress(AttributeError):
            global_scope = ctypes.CDLL(None)
            functions = global_scope.omp_set_num_threads, global_scope.omp_get_max_threads
    set_num_threads, get_max_threads = functions or (lib.omp_set_num_threads, lib.omp_get_max_threads)
    set_num_threads.restype, set_num_threads.argtypes = None, [ctypes.c_int]
    get_max_threads.restype, get_max_threads.argtypes = ctypes.c_int, []
    info = _DlInfo()
    found = ctypes.CDLL(None).dladdr(ctypes.cast(set_num_threads, ctypes.c_void_p), ctypes.byref(info))
    library = info.dli_fname.decode() if found and info.dli_fname else "unknown"
    return library, set_num_threads, get_max_threads


@cache
def load() -> OneDnn:
    """Load libdnnl (after libiomp5 when installed, so that both share one OpenMP runtime); raise OneDnnUnavailable."""
    path = library_path()
    if path is None:
        raise OneDnnUnavailable(f"libdnnl.so.3 not found under {sys.prefix}/lib: install onednn-cpu-gomp==2023.2.0")
    openmp_path = openmp_runtime()
    try:
        openmp = ctypes.CDLL(str(openmp_path), mode=ctypes.RTLD_GLOBAL) if openmp_path is not None else None
        preloaded = _is_loaded(path)
        lib = ctypes.CDLL(str(path))
        _declare(lib)
    except (OSError, AttributeError) as error:
        raise OneDnnUnavailable(f"cannot load {path}: {error}") from error
    version = lib.dnnl_version().contents
    if version.major != 3:
        found = f"{version.major}.{version.minor}.{version.patch}"
        raise OneDnnUnavailable(f"{path} is oneDNN {found}; this binding hard-codes oneDNN 3.2's enums")
    if version.cpu_runtime != _RUNTIME_OMP:
        raise OneDnnUnavailable(f"{path} is not built with the OpenMP CPU runtime (cpu_runtime={version.cpu_runtime})")
    try:
        return OneDnn(path, lib, openmp, preloaded)
    except (OneDnnError, AttributeError) as error:
        raise OneDnnUnavailable(f"cannot start oneDNN from {path}: {error}") from error


def availability() -> str | None:
    """None when oneDNN is usable, else why not (never raises)."""
    try:
        load()
    except OneDnnUnavailable as error:
        return str(error)
    except Exception as error:  # anything unexpected while loading also means "not usable"
        return f"oneDNN failed to load: {error!r}"
    return None


def set_threads(n: int) -> None:
    """Set the number of OpenMP threads of parallel regions that oneDNN starts from the calling thread.

    This is omp_set_num_threads of the runtime libdnnl's references are bound to (libiomp5 when installed, so it
    also applies to the generated code). oneDNN fixes a primitive's thread count when the primitive is created:
    call this before constructing Convolution / MatMul / Pooling objects.
    """
    if n < 1:
        raise ValueError(f"thread count must be at least 1, got {n}")
    load()._set_num_threads(n)


def get_threads() -> int:
    """omp_get_max_threads of the runtime oneDNN uses."""
    return int(load()._get_max_threads())


# ---------------------------------------------------------------------------------------------------------------
# Post-ops
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostOp:
    """An operation fused after a primitive, applied in order to its result.

    eltwise: "relu" (alpha = negative slope), "clip" (alpha=lo, beta=hi), "logistic", "tanh",
    "swish" (x * logistic(alpha * x): alpha=1 for SiLU), "linear" (alpha * x + beta).
    binary: "add", "sub", "mul", "div" with a runtime operand of `shape` (same rank as the destination, each dim 1
    or equal to the destination's: broadcast).
    """

    kind: str
    alg: str
    alpha: float = 0.0
    beta: float = 0.0
    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        algs = {"eltwise": _ELTWISE_ALGS, "binary": _BINARY_ALGS}.get(self.kind)
        if algs is None:
            raise ValueError(f"post-op kind must be 'eltwise' or 'binary', got {self.kind!r}")
        if self.alg not in algs:
            raise ValueError(f"unsupported {self.kind} post-op {self.alg!r}: expected one of {sorted(algs)}")
        if self.kind == "eltwise" and self.shape:
            raise ValueError(f"eltwise post-op {self.alg!r} takes no operand shape, got {self.shape}")

    def check_broadcast(self, dst_shape: tuple[int, ...]) -> None:
        """Raise ValueError unless this binary operand broadcasts to dst_shape."""
        if len(self.shape) != len(dst_shape) or any(
            s not in (1, d) for s, d in zip(self.shape, dst_shape, strict=True)
        ):
            raise ValueError(
                f"binary post-op {self.alg!r} operand shape {self.shape} does not broadcast to the output "
                f"shape {dst_shape} (same rank, each dim 1 or equal)"
            )


# ---------------------------------------------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Execution:
    """One dnnl_primitive_execute call: `args` is the address of a dnnl_exec_arg_t array owned by the caller."""

    primitive: int
    nargs: int
    args: int


def _dims(values: Sequence[int]) -> _Dims:
    return _Dims(*values)


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def _pair(name: str, value: Sequence[int], minimum: int) -> tuple[int, int]:
    values = tuple(int(v) for v in value)
    if len(values) != 2 or any(v < minimum for v in values):
        raise ValueError(f"{name} must be two integers >= {minimum}, got {tuple(value)}")
    return values[0], values[1]


def _float32(name: str, array: np.ndarray, ndim: int) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    if array.dtype != np.float32:
        array = array.astype(np.float32)
    return array


@dataclass
class _Handle:
    destroy: str
    value: int


@dataclass
class _Attr:
    handle: int
    binary_shapes: list[tuple[int, ...]] = field(default_factory=list)
    binary_indices: list[int] = field(default_factory=list)
    binary_mds: list[int] = field(default_factory=list)


class LibraryCall:
    """A oneDNN computation: runtime memory objects to point at the operands, then primitives to execute.

    `runtime_memories` are in the order of the runtime operands (the inputs, then the output last) and
    `runtime_shapes` gives their plain C-contiguous float32 shapes.
    """

    def __init__(self) -> None:
        self._handles: list[_Handle] = []
        self._keep: list[object] = []
        self._lib = load()
        self.stream: int = self._lib.stream
        self.runtime_memories: list[int] = []
        self.runtime_shapes: list[tuple[int, ...]] = []
        self.executions: list[Execution] = []
        self.name = ""
        self.description = ""

    def __call__(self, *arrays: np.ndarray) -> None:
        """Run on numpy arrays in `runtime_memories` order; the last one is the output, written in place."""
        if len(arrays) != len(self.runtime_memories):
            raise ValueError(f"{self.name}: expected {len(self.runtime_memories)} arrays, got {len(arrays)}")
        for index, (memory, shape, array) in enumerate(
            zip(self.runtime_memories, self.runtime_shapes, arrays, strict=True)
        ):
            if not isinstance(array, np.ndarray) or array.dtype != np.float32 or not array.flags.c_contiguous:
                raise ValueError(f"operand {index} must be a C-contiguous float32 numpy array")
            if array.shape != shape:
                raise ValueError(f"operand {index} has shape {array.shape}, expected {shape}")
            self._lib.call("dnnl_memory_set_data_handle", memory, array.ctypes.data)
        if not arrays[-1].flags.writeable:
            raise ValueError("the output array is read-only")
        for execution in self.executions:
            self._lib.call("dnnl_primitive_execute", execution.primitive, self.stream, execution.nargs, execution.args)
        self._lib.call("dnnl_stream_wait", self.stream)

    def __del__(self) -> None:
        handles = getattr(self, "_handles", [])
        while handles:
            handle = handles.pop()
            # Destructors must not raise (a failing destroy leaks at worst); plain try/except, as
            # module globals such as contextlib may already be gone at interpreter shutdown.
            try:  # noqa: SIM105
                self._lib.call(handle.destroy, handle.value)
            except Exception:
                pass

    # -- handle creation (every handle is owned by self and destroyed in reverse order) --

    def _own(self, destroy: str, value: int | None) -> int:
        if not value:
            raise OneDnnError(f"oneDNN returned a null handle (to be destroyed by {destroy})")
        self._handles.append(_Handle(destroy, value))
        return value

    def _create(self, function: str, destroy: str, *args: object) -> int:
        handle = ctypes.c_void_p()
        self._lib.call(function, ctypes.byref(handle), *args)
        return self._own(destroy, handle.value)

    def _release(self, value: int) -> None:
        """Destroy an owned handle before the object goes away."""
        for index, handle in enumerate(self._handles):
            if handle.value == value:
                del self._handles[index]
                self._lib.call(handle.destroy, value)
                return

    def _md(self, shape: tuple[int, ...], strides: tuple[int, ...] | None = None) -> int:
        """A float32 memory descriptor: plain (C-contiguous) by default, else with element strides."""
        strides = _contiguous_strides(shape) if strides is None else strides
        return self._create(
            "dnnl_memory_desc_create_with_strides",
            "dnnl_memory_desc_destroy",
            len(shape),
            _dims(shape),
            _F32,
            _dims(strides),
        )

    def _tagged_md(self, shape: tuple[int, ...], tag: str) -> int:
        """A float32 memory descriptor of logical `shape` in the oneDNN format `tag` (FORMAT_TAGS)."""
        if tag not in FORMAT_TAGS:
            raise ValueError(f"unknown oneDNN format tag {tag!r}: expected one of {sorted(FORMAT_TAGS)}")
        args = (len(shape), _dims(shape), _F32, FORMAT_TAGS[tag])
        return self._create("dnnl_memory_desc_create_with_tag", "dnnl_memory_desc_destroy", *args)

    def _any_md(self, shape: tuple[int, ...]) -> int:
        """A float32 memory descriptor letting the primitive choose its layout."""
        args = (len(shape), _dims(shape), _F32, _FORMAT_TAG_ANY)
        return self._create("dnnl_memory_desc_create_with_tag", "dnnl_memory_desc_destroy", *args)

    def _runtime_memory(self, md: int, shape: tuple[int, ...]) -> int:
        memory = self._create("dnnl_memory_create", "dnnl_memory_destroy", md, self._lib.engine, _MEMORY_NONE)
        self.runtime_memories.append(memory)
        self.runtime_shapes.append(shape)
        return memory

    def _allocated_memory(self, md: int) -> int:
        return self._create("dnnl_memory_create", "dnnl_memory_destroy", md, self._lib.engine, _MEMORY_ALLOCATE)

    def _attr(
        self,
        post_ops: Sequence[PostOp],
        dst_shape: tuple[int, ...],
        binary_any: bool = False,
        binary_tags: Sequence[str] | None = None,
    ) -> _Attr:
        """A primitive attribute with a user-managed scratchpad and the post-ops.

        Binary operands are described as plain, or with format_tag_any (the primitive then picks the
        destination's layout for them, and `_binary_args` reorders the plain runtime operand into it),
        or with the format tags `binary_tags` (one per binary post-op, "" for plain).
        """
        tags = iter(binary_tags or ())
        attr = _Attr(self._create("dnnl_primitive_attr_create", "dnnl_primitive_attr_destroy"))
        self._lib.call("dnnl_primitive_attr_set_scratchpad_mode", attr.handle, _SCRATCHPAD_MODE_USER)
        if not post_ops:
            return attr
        chain = self._create("dnnl_post_ops_create", "dnnl_post_ops_destroy")
        for index, op in enumerate(post_ops):
            if not isinstance(op, PostOp):
                raise ValueError(f"post-ops must be PostOp objects, got {op!r}")
            if op.kind == "eltwise":
                alg = _ELTWISE_ALGS[op.alg]
                self._lib.call("dnnl_post_ops_append_eltwise", chain, alg, op.alpha, op.beta)
                continue
            op.check_broadcast(dst_shape)
            tag = next(tags, "")
            plain = self._any_md if binary_any else self._md
            md = self._tagged_md(op.shape, tag) if tag else plain(op.shape)
            attr.binary_mds.append(md)
            self._lib.call("dnnl_post_ops_append_binary", chain, _BINARY_ALGS[op.alg], md)
            attr.binary_shapes.append(op.shape)
            attr.binary_indices.append(index)
        self._lib.call("dnnl_primitive_attr_set_post_ops", attr.handle, chain)
        return attr

    def _binary_args(self, attr: _Attr, pd: int, reorders: list[str]) -> dict[int, int]:
        """Plain runtime memories for the binary post-op operands (reordered when pd wants another layout)."""
        args = {}
        for index, shape in zip(attr.binary_indices, attr.binary_shapes, strict=True):
            arg = _ARG_ATTR_MULTIPLE_POST_OP_BASE * (index + 1) | _ARG_SRC_1
            plain_md = self._md(shape)
            memory = self._runtime_memory(plain_md, shape)
            wanted_md = self._query_md(pd, _QUERY_EXEC_ARG_MD, arg)
            if not self._same_md(wanted_md, plain_md):
                operand = self._allocated_memory(wanted_md)
                reorders.append(self._reorder(memory, plain_md, operand, wanted_md))
                memory = operand
            args[arg] = memory
        return args

    def _query_md(self, pd: int, what: int, index: int = 0) -> int:
        md = self._lib.function("dnnl_primitive_desc_query_md")(pd, what, index)
        if not md:
            raise OneDnnError(f"dnnl_primitive_desc_query_md({what}, {index}) returned no memory descriptor")
        return md

    def _impl_name(self, pd: int) -> str:
        name = ctypes.c_char_p()
        self._lib.call("dnnl_primitive_desc_query", pd, _QUERY_IMPL_INFO_STR, 0, ctypes.byref(name))
        return (name.value or b"").decode()

    def _same_md(self, lhs: int, rhs: int) -> bool:
        return bool(self._lib.function("dnnl_memory_desc_equal")(lhs, rhs))

    def _primitive(self, pd: int, args: dict[int, int]) -> None:
        """Create the primitive of an owned descriptor with its scratchpad and append its execution."""
        primitive = self._create("dnnl_primitive_create", "dnnl_primitive_destroy", pd)
        scratchpad = self._query_md(pd, _QUERY_SCRATCHPAD_MD)
        if self._lib.function("dnnl_memory_desc_get_size")(scratchpad) > 0:
            args = {**args, _ARG_SCRATCHPAD: self._allocated_memory(scratchpad)}
        array = (_ExecArg * len(args))(*(_ExecArg(arg, memory) for arg, memory in args.items()))
        self._keep.append(array)
        self.executions.append(Execution(primitive, len(args), ctypes.addressof(array)))

    def _convolution_pd(
        self, geometry: _ConvGeometry, mds: tuple[int, int, int | None, int], attr: _Attr, what: str
    ) -> int:
        """An owned forward-inference convolution descriptor for (src, weights, bias or None, dst)
        memory descriptors; a OneDnnError naming the geometry and `what` when oneDNN has none."""
        src_md, weights_md, bias_md, dst_md = mds
        pd = ctypes.c_void_p()
        try:
            self._lib.call(
                "dnnl_convolution_forward_primitive_desc_create",
                ctypes.byref(pd),
                self._lib.engine,
                _FORWARD_INFERENCE,
                _CONVOLUTION_DIRECT,
                src_md,
                weights_md,
                bias_md,
                dst_md,
                _dims(geometry.strides),
                _dims([d - 1 for d in geometry.dilations]),
                _dims(geometry.pads_begin),
                _dims(geometry.pads_end),
                attr.handle,
            )
        except OneDnnError as error:
            raise OneDnnError(
                f"oneDNN has no convolution for {geometry} ({what}): {error.status}",
                error.function,
                error.status,
            ) from None
        return self._own("dnnl_primitive_desc_destroy", pd.value)

    def _reorder_pd(self, src_md: int, dst_md: int) -> int:
        attr = self._attr((), ())
        engine = self._lib.engine
        args = (src_md, engine, dst_md, engine, attr.handle)
        return self._create("dnnl_reorder_primitive_desc_create", "dnnl_primitive_desc_destroy", *args)

    def _reorder(self, src: int, src_md: int, dst: int, dst_md: int) -> str:
        """Append a reorder execution from memory src to memory dst; return its implementation name."""
        pd = self._reorder_pd(src_md, dst_md)
        self._primitive(pd, {_ARG_SRC: src, _ARG_DST: dst})
        return self._impl_name(pd)

    def _constant(self, array: np.ndarray, dst_md: int, src_md: int | None = None) -> int:
        """A memory owning its data, laid out as dst_md, holding a copy of array (reordered once, now);
        `src_md` describes the array's memory (default: its numpy strides; else it must be C-contiguous)."""
        if src_md is not None or any(stride < 0 or stride % array.itemsize for stride in array.strides):
            array = np.ascontiguousarray(array)
        if src_md is None:
            src_md = self._md(array.shape, tuple(stride // array.itemsize for stride in array.strides))
        dst = self._allocated_memory(dst_md)
        src = self._create("dnnl_memory_create", "dnnl_memory_destroy", src_md, self._lib.engine, _MEMORY_NONE)
        self._lib.call("dnnl_memory_set_data_handle", src, array.ctypes.data)
        pd = self._reorder_pd(src_md, dst_md)
        primitive = self._create("dnnl_primitive_create", "dnnl_primitive_destroy", pd)
        temporaries = [src_md, src, pd, primitive]
        args = (_ExecArg * 2)(_ExecArg(_ARG_FROM, src), _ExecArg(_ARG_TO, dst))
        scratchpad = self._query_md(pd, _QUERY_SCRATCHPAD_MD)
        if self._lib.function("dnnl_memory_desc_get_size")(scratchpad) > 0:
            scratch = self._allocated_memory(scratchpad)
            temporaries.append(scratch)
            args = (_ExecArg * 3)(*args, _ExecArg(_ARG_SCRATCHPAD, scratch))
        try:
            self._lib.call("dnnl_primitive_execute", primitive, self.stream, len(args), args)
            self._lib.call("dnnl_stream_wait", self.stream)
        finally:
            for handle in reversed(temporaries):
                self._release(handle)
        return dst


def _describe_post_ops(post_ops: Sequence[PostOp]) -> str:
    parts = []
    for op in post_ops:
        if op.kind == "binary":
            parts.append(f"{op.alg}{list(op.shape)}")
        elif op.alpha or op.beta:
            parts.append(f"{op.alg}({op.alpha:g},{op.beta:g})")
        else:
            parts.append(op.alg)
    return "+".join(parts)


@dataclass(frozen=True)
class _ConvGeometry:
    src_shape: tuple[int, int, int, int]
    weights_shape: tuple[int, int, int, int]
    strides: tuple[int, int]
    pads_begin: tuple[int, int]
    pads_end: tuple[int, int]
    dilations: tuple[int, int]
    groups: int

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        n, _, h, w = self.src_shape
        o, _, kh, kw = self.weights_shape
        out = []
        for size, kernel, stride, begin, end, dilation in zip(
            (h, w), (kh, kw), self.strides, self.pads_begin, self.pads_end, self.dilations, strict=True
        ):
            out.append((size + begin + end - (kernel - 1) * dilation - 1) // stride + 1)
        return n, o, out[0], out[1]

    def check(self) -> None:
        c = self.src_shape[1]
        o, c_per_group = self.weights_shape[:2]
        if min(self.src_shape) < 1 or min(self.weights_shape) < 1:
            raise ValueError(f"convolution shapes must be positive: src {self.src_shape}, weights {self.weights_shape}")
        if self.groups < 1 or c % self.groups or o % self.groups or c_per_group != c // self.groups:
            raise ValueError(
                f"convolution weights {self.weights_shape} do not match src {self.src_shape} with groups="
                f"{self.groups}: expected (O, C/groups={c // max(self.groups, 1)}, KH, KW) with C and O divisible "
                "by groups"
            )
        if min(self.output_shape[2:]) < 1:
            raise ValueError(f"convolution output would be empty: {self}")

    def __str__(self) -> str:
        kh, kw = self.weights_shape[2:]
        text = f"{list(self.src_shape)}->{list(self.output_shape)} {kh}x{kw}"
        text += f" s{self.strides} p{self.pads_begin}{self.pads_end} d{self.dilations}"
        return text + (f" g{self.groups}" if self.groups > 1 else "")


class Convolution(LibraryCall):
    """2-D forward convolution on plain NCHW float32 tensors, with bias and fused post-ops.

    Runtime operands: src (NCHW), one per binary post-op (its PostOp.shape), then dst (`output_shape`).
    layout: "plain" (the primitive reads/writes NCHW), "blocked" (the primitive's preferred layout, with reorders
    before and after), or "auto" (see the module docstring).
    """

    def __init__(
        self,
        src_shape: tuple[int, int, int, int],
        weights: np.ndarray,
        bias: np.ndarray | None,
        strides: tuple[int, int],
        pads_begin: tuple[int, int],
        pads_end: tuple[int, int],
        dilations: tuple[int, int] = (1, 1),
        groups: int = 1,
        post_ops: Sequence[PostOp] = (),
        *,
        layout: str = "auto",
    ) -> None:
        super().__init__()
        if layout not in ("plain", "blocked", "auto"):
            raise ValueError(f"layout must be 'plain', 'blocked' or 'auto', got {layout!r}")
        if len(tuple(src_shape)) != 4:
            raise ValueError(f"convolution src shape must be NCHW, got {src_shape}")
        weights = _float32("convolution weights", weights, 4)
        geometry = _ConvGeometry(
            tuple(int(d) for d in src_shape),  # type: ignore[arg-type]
            weights.shape,  # type: ignore[arg-type]
            _pair("strides", strides, 1),
            _pair("pads_begin", pads_begin, 0),
            _pair("pads_end", pads_end, 0),
            _pair("dilations", dilations, 1),
            int(groups),
        )
        geometry.check()
        out_channels = weights.shape[0]
        if bias is not None:
            bias = _float32("convolution bias", bias, 1)
            if bias.shape != (out_channels,):
                raise ValueError(f"convolution bias must have shape ({out_channels},), got {bias.shape}")
        self.output_shape: tuple[int, ...] = geometry.output_shape
        self.layout = ""
        self._build(geometry, weights, bias, list(post_ops), layout)

    def _weights_view(self, geometry: _ConvGeometry, weights: np.ndarray) -> np.ndarray:
        if geometry.groups == 1:
            return weights
        o, c_per_group, kh, kw = weights.shape
        return np.ascontiguousarray(weights).reshape(geometry.groups, o // geometry.groups, c_per_group, kh, kw)

    def _conv_pd(
        self, geometry: _ConvGeometry, weights: np.ndarray, bias: bool, post_ops: list[PostOp], layout: str
    ) -> tuple[int, _Attr]:
        """Create the convolution descriptor for plain or blocked src/dst; raise a clear OneDnnError."""
        attr = self._attr(post_ops, self.output_shape, binary_any=layout == "blocked")
        make_md = self._md if layout == "plain" else self._any_md
        src_md, dst_md = make_md(geometry.src_shape), make_md(self.output_shape)
        weights_md = self._any_md(weights.shape)
        bias_md = self._md((self.output_shape[1],)) if bias else None
        pd = self._convolution_pd(geometry, (src_md, weights_md, bias_md, dst_md), attr, f"{layout} layout")
        return pd, attr

    def _choose_pd(
        self, geometry: _ConvGeometry, weights: np.ndarray, bias: bool, post_ops: list[PostOp], layout: str
    ) -> tuple[int, _Attr]:
        """The descriptor for `layout`; for "auto" the plain one unless only a generic implementation supports it."""
        if layout != "auto":
            self.layout = layout
            return self._conv_pd(geometry, weights, bias, post_ops, layout)
        plain, plain_attr = self._conv_pd(geometry, weights, bias, post_ops, "plain")
        self.layout = "plain"
        if not _is_slow(self._impl_name(plain)):
            return plain, plain_attr
        try:
            blocked, blocked_attr = self._conv_pd(geometry, weights, bias, post_ops, "blocked")
        except OneDnnError:
            return plain, plain_attr
        if _is_slow(self._impl_name(blocked)):
            self._release(blocked)
            return plain, plain_attr
        self._release(plain)
        self.layout = "blocked"
        return blocked, blocked_attr

    def _build(
        self,
        geometry: _ConvGeometry,
        weights: np.ndarray,
        bias: np.ndarray | None,
        post_ops: list[PostOp],
        layout: str,
    ) -> None:
        weights = self._weights_view(geometry, weights)
        pd, attr = self._choose_pd(geometry, weights, bias is not None, post_ops, layout)
        args = {_ARG_WEIGHTS: self._constant(weights, self._query_md(pd, _QUERY_WEIGHTS_MD))}
        if bias is not None:
            args[_ARG_BIAS] = self._constant(bias, self._query_md(pd, _QUERY_WEIGHTS_MD, 1))
        reorders: list[str] = []
        args[_ARG_SRC] = self._plain_to(pd, _QUERY_SRC_MD, geometry.src_shape, reorders)
        args |= self._binary_args(attr, pd, reorders)
        plain_dst_md = self._md(self.output_shape)
        dst = self._runtime_memory(plain_dst_md, self.output_shape)
        pd_dst_md = self._query_md(pd, _QUERY_DST_MD)
        conv_dst = dst if self._same_md(pd_dst_md, plain_dst_md) else self._allocated_memory(pd_dst_md)
        self._primitive(pd, args | {_ARG_DST: conv_dst})
        # The convolution alone (no reorders): what a benchmark of the blocked layout times.
        self.conv_execution = self.executions[-1]
        if conv_dst != dst:
            reorders.append(self._reorder(conv_dst, pd_dst_md, dst, plain_dst_md))
        self.name = self._impl_name(pd)
        self.description = (
            f"convolution {geometry} bias={bias is not None} post_ops=[{_describe_post_ops(post_ops)}] "
            f"layout={self.layout} impl={self.name}" + (f" reorders={reorders}" if reorders else "")
        )

    def _plain_to(self, pd: int, query: int, shape: tuple[int, ...], reorders: list[str]) -> int:
        """A plain runtime memory for an input, reordered into what pd wants if that differs; the memory to use."""
        plain_md = self._md(shape)
        memory = self._runtime_memory(plain_md, shape)
        wanted_md = self._query_md(pd, query)
        if self._same_md(wanted_md, plain_md):
            return memory
        inner = self._allocated_memory(wanted_md)
        reorders.append(self._reorder(memory, plain_md, inner, wanted_md))
        return inner


@dataclass(frozen=True)
class BlockedFormats:
    """The oneDNN format tags of a blocked convolution's tensors (FORMAT_TAGS): src, packed weights,
    dst, and one per binary post-op ("" for an operand that is plain in memory, e.g. per channel)."""

    src: str
    weights: str
    dst: str
    binary: tuple[str, ...] = ()


def blocked_shape(shape: Sequence[int], tag: str) -> tuple[int, ...]:
    """The (N, CB, H, W, b) array shape of a logical NCHW `shape` in format `tag`: nChw<b>c has
    blocks of b; nchw blocks of one channel; nhwc (any other tag) one block of all C channels."""
    n, c, h, w = (int(d) for d in shape)
    if tag.startswith("nChw") and tag.endswith("c"):
        b = int(tag[4:-1])
        return n, -(-c // b), h, w, b
    if tag == "nchw":
        return n, c, h, w, 1
    return n, 1, h, w, c


class BlockedConvolution(LibraryCall):
    """2-D forward convolution on tensors in the blocked channel layout, with bias and post-ops.

    The runtime tensors are in the formats `formats` says (src nChw<b>c or nhwc, dst nChw<b>c,
    binary operands in the dst's format or plain); `weights` are already packed in
    `formats.weights` (logical shape `weights_shape`: (O, C/groups, KH, KW), or (G, 1, 1, KH, KW)
    for a depthwise Goihw<b>g). The primitive is created for exactly these formats, so a call makes
    no reorder; oneDNN refusing them is a OneDnnError. Runtime operands: src, one per binary
    post-op, then dst, as numpy arrays of `blocked_shape`.
    """

    def __init__(
        self,
        src_shape: tuple[int, int, int, int],
        weights: np.ndarray,
        weights_shape: tuple[int, ...],
        bias: np.ndarray | None,
        strides: tuple[int, int],
        pads_begin: tuple[int, int],
        pads_end: tuple[int, int],
        dilations: tuple[int, int],
        groups: int,
        post_ops: Sequence[PostOp],
        formats: BlockedFormats,
    ) -> None:
        super().__init__()
        weights_shape = tuple(int(d) for d in weights_shape)
        plain_weights = (
            weights_shape if len(weights_shape) == 4 else (weights_shape[0] * weights_shape[1], 1, *weights_shape[3:])
        )
        geometry = _ConvGeometry(
            tuple(int(d) for d in src_shape),  # type: ignore[arg-type]
            plain_weights,  # type: ignore[arg-type]
            _pair("strides", strides, 1),
            _pair("pads_begin", pads_begin, 0),
            _pair("pads_end", pads_end, 0),
            _pair("dilations", dilations, 1),
            int(groups),
        )
        geometry.check()
        packed = np.ascontiguousarray(weights, dtype=np.float32)
        if packed.size != int(np.prod(weights_shape)):
            raise ValueError(
                f"packed weights hold {packed.size} values, {weights_shape} needs {np.prod(weights_shape)}"
            )
        self.output_shape: tuple[int, ...] = geometry.output_shape
        post_ops = list(post_ops)
        binary = [op for op in post_ops if op.kind == "binary"]
        if len(formats.binary) != len(binary):
            raise ValueError(f"{len(binary)} binary post-ops but {len(formats.binary)} binary formats")
        attr = self._attr(post_ops, self.output_shape, binary_tags=formats.binary)
        src_md = self._tagged_md(geometry.src_shape, formats.src)
        dst_md = self._tagged_md(self.output_shape, formats.dst)
        bias_md = self._md((self.output_shape[1],)) if bias is not None else None
        what = f"{formats.src} -> {formats.dst}"
        pd = self._convolution_pd(geometry, (src_md, self._any_md(weights_shape), bias_md, dst_md), attr, what)
        weights_md = self._query_md(pd, _QUERY_WEIGHTS_MD)
        args = {_ARG_WEIGHTS: self._constant(packed, weights_md, self._tagged_md(weights_shape, formats.weights))}
        if bias is not None:
            flat = np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
            if flat.shape != (self.output_shape[1],):
                raise ValueError(f"convolution bias must have {self.output_shape[1]} values, got {flat.size}")
            args[_ARG_BIAS] = self._constant(flat, self._query_md(pd, _QUERY_WEIGHTS_MD, 1))
        args[_ARG_SRC] = self._runtime_memory(src_md, blocked_shape(geometry.src_shape, formats.src))
        for index, md, shape, tag in zip(
            attr.binary_indices, attr.binary_mds, attr.binary_shapes, formats.binary, strict=True
        ):
            arg = _ARG_ATTR_MULTIPLE_POST_OP_BASE * (index + 1) | _ARG_SRC_1
            args[arg] = self._runtime_memory(md, blocked_shape(shape, tag or formats.dst))
        args[_ARG_DST] = self._runtime_memory(dst_md, blocked_shape(self.output_shape, formats.dst))
        self._primitive(pd, args)
        self.layout = formats.dst
        self.name = self._impl_name(pd)
        self.description = (
            f"convolution {geometry} bias={bias is not None} post_ops=[{_describe_post_ops(post_ops)}] "
            f"formats={formats.src}/{formats.weights}->{formats.dst} impl={self.name}"
        )


class MatMul(LibraryCall):
    """(M, K) x (K, N) float32 matrix product with bias and fused post-ops, on plain row-major tensors.

    Runtime operands: src (M, K), one per binary post-op (its PostOp.shape, rank 2), then dst (M, N).
    """

    def __init__(
        self,
        m: int,
        k: int,
        weights: np.ndarray,
        bias: np.ndarray | None,
        post_ops: Sequence[PostOp] = (),
    ) -> None:
        super().__init__()
        weights = _float32("matmul weights", weights, 2)
        m, k = int(m), int(k)
        if m < 1 or k < 1 or weights.shape[0] != k or weights.shape[1] < 1:
            raise ValueError(f"matmul weights must have shape (K={k}, N) with M={m} >= 1, got {weights.shape}")
        n = weights.shape[1]
        if bias is not None:
            bias = _float32("matmul bias", bias, 1)
            if bias.shape != (n,):
                raise ValueError(f"matmul bias must have shape ({n},), got {bias.shape}")
        self.output_shape: tuple[int, ...] = (m, n)
        post_ops = list(post_ops)
        attr = self._attr(post_ops, self.output_shape)
        src_md, dst_md = self._md((m, k)), self._md((m, n))
        bias_md = self._md((1, n)) if bias is not None else None
        what = f"matmul ({m}x{k}) x ({k}x{n})"
        pd_handle = _matmul_primitive_desc(self, src_md, self._any_md((k, n)), bias_md, dst_md, attr, what)
        args = {_ARG_WEIGHTS: self._constant(weights, self._query_md(pd_handle, _QUERY_WEIGHTS_MD))}
        if bias is not None:
            args[_ARG_BIAS] = self._constant(bias.reshape(1, n), self._query_md(pd_handle, _QUERY_WEIGHTS_MD, 1))
        args[_ARG_SRC] = self._runtime_memory(src_md, (m, k))
        args |= self._binary_args(attr, pd_handle, [])
        args[_ARG_DST] = self._runtime_memory(dst_md, (m, n))
        self._primitive(pd_handle, args)
        self.name = self._impl_name(pd_handle)
        self.description = f"{what} bias={bias is not None} post_ops=[{_describe_post_ops(post_ops)}] impl={self.name}"


def matmul_weights_strides(batch: int | None, k: int, n: int, transposed: bool) -> tuple[int, ...]:
    """Element strides of a logical (B,) K x N right operand held as (B,) K x N, or as (B,) N x K
    when `transposed` (read through the strides, no copy)."""
    inner = (1, k) if transposed else (n, 1)
    return inner if batch is None else (k * n, *inner)


class RuntimeMatMul(LibraryCall):
    """A matrix product of two run-time operands, (B,) M x K times (B,) K x N, with bias and post-ops.

    `batch` None is a 2-D product, else both operands have `batch` matrices (broadcast batch dims
    are materialized before, by the lowering). The right operand is (B,) K x N in memory, or
    (B,) N x K when `transposed_b` (oneDNN reads it through strides: no copy, no reorder). The
    bias is a weight of N values. Runtime operands: src, the right operand (its shape in memory),
    one per binary post-op (PostOp.shape, the output's rank), then dst (B,) M x N.
    """

    def __init__(
        self,
        batch: int | None,
        m: int,
        k: int,
        n: int,
        transposed_b: bool,
        bias: np.ndarray | None,
        post_ops: Sequence[PostOp] = (),
    ) -> None:
        super().__init__()
        m, k, n = int(m), int(k), int(n)
        batch = None if batch is None else int(batch)
        if min(m, k, n) < 1 or (batch is not None and batch < 1):
            raise ValueError(f"matmul sizes must be >= 1, got batch={batch} m={m} k={k} n={n}")
        lead = () if batch is None else (batch,)
        if bias is not None:
            bias = _float32("matmul bias", bias, 1)
            if bias.shape != (n,):
                raise ValueError(f"matmul bias must have shape ({n},), got {bias.shape}")
        self.output_shape: tuple[int, ...] = (*lead, m, n)
        post_ops = list(post_ops)
        attr = self._attr(post_ops, self.output_shape)
        src_md, dst_md = self._md((*lead, m, k)), self._md(self.output_shape)
        weights_md = self._md((*lead, k, n), matmul_weights_strides(batch, k, n, transposed_b))
        bias_shape = (*[1] * len(lead), 1, n)
        bias_md = self._md(bias_shape) if bias is not None else None
        rhs = f"({n}x{k})^T" if transposed_b else f"({k}x{n})"
        what = f"matmul {'' if batch is None else f'{batch} x '}({m}x{k}) x {rhs}"
        pd_handle = _matmul_primitive_desc(self, src_md, weights_md, bias_md, dst_md, attr, what)
        args = {}
        if bias is not None:
            args[_ARG_BIAS] = self._constant(bias.reshape(bias_shape), self._query_md(pd_handle, _QUERY_WEIGHTS_MD, 1))
        args[_ARG_SRC] = self._runtime_memory(src_md, (*lead, m, k))
        args[_ARG_WEIGHTS] = self._runtime_memory(weights_md, (*lead, n, k) if transposed_b else (*lead, k, n))
        args |= self._binary_args(attr, pd_handle, [])
        args[_ARG_DST] = self._runtime_memory(dst_md, self.output_shape)
        self._primitive(pd_handle, args)
        self.name = self._impl_name(pd_handle)
        self.description = f"{what} bias={bias is not None} post_ops=[{_describe_post_ops(post_ops)}] impl={self.name}"


class Pooling(LibraryCall):
    """2-D forward max / average pooling on plain NCHW float32 tensors.

    Runtime operands: src, dst. Output size per spatial dim: (in + pad_begin + pad_end - kernel) // stride + 1
    (pass pads_end already enlarged for ceil_mode).
    """

    def __init__(
        self,
        src_shape: tuple[int, int, int, int],
        kind: str,
        kernel: tuple[int, int],
        strides: tuple[int, int],
        pads_begin: tuple[int, int],
        pads_end: tuple[int, int],
    ) -> None:
        super().__init__()
        if kind not in _POOLING_ALGS:
            raise ValueError(f"unsupported pooling kind {kind!r}: expected one of {sorted(_POOLING_ALGS)}")
        src_shape = tuple(int(d) for d in src_shape)  # type: ignore[assignment]
        if len(src_shape) != 4 or min(src_shape) < 1:
            raise ValueError(f"pooling src shape must be a positive NCHW shape, got {src_shape}")
        kernel = _pair("kernel", kernel, 1)
        strides = _pair("strides", strides, 1)
        pads_begin, pads_end = _pair("pads_begin", pads_begin, 0), _pair("pads_end", pads_end, 0)
        n, c, h, w = src_shape
        sizes = zip((h, w), kernel, strides, pads_begin, pads_end, strict=True)
        out = [(size + b + e - k) // s + 1 for size, k, s, b, e in sizes]
        what = f"{kind} pooling {list(src_shape)} kernel {kernel} s{strides} p{pads_begin}{pads_end}"
        if min(out) < 1:
            raise ValueError(f"{what}: the output would be empty")
        self.output_shape: tuple[int, ...] = (n, c, out[0], out[1])
        attr = self._attr((), ())
        src_md, dst_md = self._md(src_shape), self._md(self.output_shape)
        pd = ctypes.c_void_p()
        try:
            self._lib.call(
                "dnnl_pooling_forward_primitive_desc_create",
                ctypes.byref(pd),
                self._lib.engine,
                _FORWARD_INFERENCE,
                _POOLING_ALGS[kind],
                src_md,
                dst_md,
                _dims(strides),
                _dims(kernel),
                _dims((0, 0)),
                _dims(pads_begin),
                _dims(pads_end),
                attr.handle,
            )
        except OneDnnError as error:
            raise OneDnnError(f"oneDNN has no {what}: {error.status}", error.function, error.status) from None
        pd_handle = self._own("dnnl_primitive_desc_destroy", pd.value)
        src = self._runtime_memory(src_md, src_shape)
        dst = self._runtime_memory(dst_md, self.output_shape)
        self._primitive(pd_handle, {_ARG_SRC: src, _ARG_DST: dst})
        self.name = self._impl_name(pd_handle)
        self.description = f"{what} -> {list(self.output_shape)} impl={self.name}"


def _matmul_primitive_desc(owner, src_md, weights_md, bias_md, dst_md, attr, what: str):
    """A oneDNN matmul primitive descriptor, owned by `owner` (a constant- or a run-time-weight
    matmul); one OneDnnError naming `what` when oneDNN has no implementation."""
    pd = ctypes.c_void_p()
    try:
        owner._lib.call(
            "dnnl_matmul_primitive_desc_create",
            ctypes.byref(pd),
            owner._lib.engine,
            src_md,
            weights_md,
            bias_md,
            dst_md,
            attr.handle,
        )
    except OneDnnError as error:
        raise OneDnnError(f"oneDNN has no {what}: {error.status}", error.function, error.status) from None
    return owner._own("dnnl_primitive_desc_destroy", pd.value)
