"""Launching a saved `CudaModel` directory on an NVIDIA GPU with cuda-python (no MLIR needed).

This module imports only the standard library, numpy and (lazily) `cuda.bindings.driver`, so
it runs on a GPU host that has no MLIR: `woodpecker.measure.batch` loads it by file path there
(`woodpecker/gpu/__init__.py` imports MLIR). It reads what `CudaModel.save` writes:

    manifest.json      buffers (inputs, weights, outputs, intermediates) and kernels in launch
                       order: entry, ptx/cubin file, grid, block, shared_bytes, args
    <entry>.ptx        JIT-compiled by the driver (cuModuleLoadData); <entry>.cubin is used
                       instead when present and binary-compatible with the device
    weight_<i>.npy     uploaded once

`CudaLauncher(directory)` allocates one device buffer per program buffer (views alias their
buffer, so a kernel argument is its buffer's base pointer), uploads the weights, and then
`run(inputs)` returns the outputs, `time(repeat, warmup)` the seconds per run (CUDA events,
L2 flushed before each repeat by writing a buffer twice the L2 size). Kernel parameters follow
the manifest's calling convention (`build_kernel_params`): `bare_ptr` (one 64-bit pointer per
argument, what `compile_gpu` emits) or `memref` (MLIR's default descriptor: allocated and
aligned pointer, offset, sizes, strides).

Errors are `CudaError`s naming the CUDA error and what was being done ("kernel k3_conv_kernel:
cuLaunchKernel: CUDA_ERROR_INVALID_VALUE ..."). `run` synchronizes after every kernel so that
an asynchronous fault names its kernel. After a sticky error (illegal address, launch failure)
the process's CUDA context is unusable; measuring candidates in subprocesses
(`woodpecker.measure.batch`) contains that.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import importlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Self

import numpy as np

from woodpecker.errors import WoodpeckerError
from woodpecker.runtime import bundle

MANIFEST = "manifest.json"
FORMAT = "woodpecker.cuda"
FORMAT_VERSION = 1
SHARED_DEFAULT_BYTES = 48 * 1024
POISON_BYTE = 0xFF  # outputs and intermediates start as NaN (0xFFFFFFFF) in `run`
# Errors after which the context cannot be used any more (the process must exit).
STICKY_ERRORS = frozenset(
    {
        "CUDA_ERROR_ILLEGAL_ADDRESS",
        "CUDA_ERROR_LAUNCH_FAILED",
        "CUDA_ERROR_MISALIGNED_ADDRESS",
        "CUDA_ERROR_ILLEGAL_INSTRUCTION",
        "CUDA_ERROR_INVALID_ADDRESS_SPACE",
        "CUDA_ERROR_INVALID_PC",
        "CUDA_ERROR_HARDWARE_STACK_ERROR",
        "CUDA_ERROR_ASSERT",
        "CUDA_ERROR_LAUNCH_TIMEOUT",
    }
)


def driver() -> ModuleType:
    """`cuda.bindings.driver` (imported on first use; ImportError when cuda-python is missing)."""
    return importlib.import_module("cuda.bindings.driver")


class CudaError(RuntimeError):
    """A CUDA driver call failed: `name` is the CUresult's name, `where` what was being done."""

    def __init__(self, name: str, where: str, description: str = ""):
        self.name = name
        self.where = where
        self.description = description
        text = f"{where}: {name}" if where else name
        super().__init__(f"{text} ({description})" if description else text)

    @property
    def sticky(self) -> bool:
        """True when the CUDA context is unusable after this error."""
        return self.name in STICKY_ERRORS


def _error_text(err: Any) -> tuple[str, str]:
    cu = driver()
    name = getattr(err, "name", None) or str(err)
    description = ""
    try:
        status, text = cu.cuGetErrorString(err)
        if int(status) == 0 and text:
            description = text.decode() if isinstance(text, bytes) else str(text)
    except Exception:  # the error string is a nicety
        pass
    return name, description


def check(result: Any, where: str = "") -> Any:
    """Unpacks a cuda-python result `(CUresult, *values)`: raises `CudaError` unless it is
    CUDA_SUCCESS; returns None, the single value, or the tuple of values."""
    if isinstance(result, tuple):
        err, values = result[0], result[1:]
    else:
        err, values = result, ()
    if int(err) != 0:
        name, description = _error_text(err)
        raise CudaError(name, where, description)
    if not values:
        return None
    return values[0] if len(values) == 1 else values


# -- the device ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    """One GPU as the driver describes it."""

    index: int
    name: str
    compute_capability: tuple[int, int]
    l2_bytes: int
    shared_opt_in_bytes: int

    @property
    def arch(self) -> str:
        """The `sm_XY` the device runs natively."""
        return f"sm_{self.compute_capability[0]}{self.compute_capability[1]}"


def cuda_status(device: int = 0) -> str | None:
    """None when device `device` is usable; otherwise why not (no cuda-python, no driver, no
    device). Creates no context."""
    try:
        cu = driver()
    except ImportError as err:
        return f"cuda-python is not installed ({err})"
    try:
        check(cu.cuInit(0), "cuInit")
        count = check(cu.cuDeviceGetCount(), "cuDeviceGetCount")
    except CudaError as err:
        return str(err)
    except Exception as err:  # the driver library itself is missing (DynamicLibNotFoundError)
        return f"no NVIDIA driver ({type(err).__name__}: {err})"
    if count <= device:
        return f"no CUDA device {device} ({count} device(s) found)"
    return None


def cuda_available(device: int = 0) -> bool:
    """True when cuda-python, an NVIDIA driver and device `device` are there."""
    return cuda_status(device) is None


def device_info(device: int = 0) -> DeviceInfo:
    """Name, compute capability and cache sizes of device `device` (initializes the driver)."""
    cu = driver()
    check(cu.cuInit(0), "cuInit")
    dev = check(cu.cuDeviceGet(device), f"cuDeviceGet({device})")
    raw = check(cu.cuDeviceGetName(256, dev), "cuDeviceGetName")
    name = (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)).split("\0")[0].strip()
    attr = cu.CUdevice_attribute

    def get(which: Any) -> int:
        return int(check(cu.cuDeviceGetAttribute(which, dev), f"cuDeviceGetAttribute({which})"))

    return DeviceInfo(
        index=device,
        name=name,
        compute_capability=(
            get(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
            get(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
        ),
        l2_bytes=get(attr.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE),
        shared_opt_in_bytes=get(attr.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN),
    )


def cubin_runs_on(arch: str, compute_capability: tuple[int, int]) -> bool:
    """Whether a cubin built for `arch` (`sm_XY`) runs on a device of `compute_capability`:
    same major version, device minor at least the cubin's (arch-specific `sm_90a`: exact)."""
    body = arch.removeprefix("sm_")
    specific = body.endswith("a")
    digits = body.rstrip("a")
    if not digits.isdigit() or len(digits) < 2:
        return False
    major, minor = int(digits[:-1]), int(digits[-1])
    if specific:
        return (major, minor) == tuple(compute_capability)
    return major == compute_capability[0] and compute_capability[1] >= minor


def release(
    cu: ModuleType, device: Any, events: Sequence[Any], allocations: Sequence[Any], modules: Sequence[Any],
    stream: Any, extra: Sequence[tuple[Any, Any]] = (),
) -> None:
    """Destroys `extra` (callable, handle) pairs, then the events, allocations, modules and stream,
    and releases device's primary context; errors are ignored (after a sticky fault the context
    is gone anyway)."""
    calls: list[tuple[Any, Any]] = list(extra)
    calls += [(cu.cuEventDestroy, e) for e in events]
    calls += [(cu.cuMemFree, p) for p in allocations]
    calls += [(cu.cuModuleUnload, m) for m in modules]
    if stream is not None:
        calls.append((cu.cuStreamDestroy, stream))
    for fn, handle in calls:
        with contextlib.suppress(Exception):
            fn(handle)
    with contextlib.suppress(Exception):
        cu.cuDevicePrimaryCtxRelease(device)


# -- the manifest and kernel parameters -------------------------------------------------------------


class ManifestError(WoodpeckerError, ValueError):
    """A directory that is not a saved CUDA model of a format this launcher knows."""


def read_format_json(
    directory: str | os.PathLike, file: str, what: str, format_name: str, version: int,
    error: type[Exception] = ValueError,
) -> dict[str, Any]:
    """The JSON object `file` in `directory` (what a saved `what` holds: `bundle.read_json`),
    checked for its format name and version and for f32 data; `error` (naming the file and the
    problem) otherwise."""
    root = Path(directory)
    if not root.is_dir():
        raise error(f"{root}: no such directory (a saved {what} is a directory)")
    data = bundle.read_json(root, file, error)
    path = root / file
    if data.get("format") != format_name or type(data.get("version")) is not int or data.get("version") != version:
        raise error(
            f"{path}: format {data.get('format')!r:.60} version {data.get('version')!r:.20}, "
            f"expected {format_name!r} version {version}"
        )
    if data.get("element_type", "f32") != "f32":
        raise error(f"{path}: element type {data['element_type']!r:.60}; only f32 is handled")
    return data


def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The checked `manifest.json` of a saved CUDA model: every field the launcher and
    `CudaModel.load_kernels` use has its type and range checked (`check_manifest`)."""
    data = read_format_json(directory, MANIFEST, "CUDA model", FORMAT, FORMAT_VERSION, ManifestError)
    check_manifest(data, str(Path(directory) / MANIFEST))
    return data


BUFFER_KINDS = ("input", "weight", "output", "intermediate")
CALLING_CONVENTIONS = ("bare_ptr", "memref")
MAX_KERNEL_FILE_BYTES = 64 << 20  # one kernel's PTX or cubin


def check_manifest(data: Mapping[str, Any], where: str) -> None:
    """ManifestError unless every field of a kernels-only manifest that is read has its type and
    range: names, shapes, files (names only: `kernel_ptx`, `weight_array` check the files),
    grids, buffer references; the kernel's problem, config and resources are the loader's."""
    err = ManifestError
    bundle.text_field(data, "arch", err, where)
    if data.get("calling_convention", "bare_ptr") not in CALLING_CONVENTIONS:
        raise err(f"{where}: calling convention {data.get('calling_convention')!r:.60}, not one of bare_ptr, memref")
    counts: dict[str, int] = {}
    for key, kind in (("inputs", "input"), ("outputs", "output"), ("weights", "weight")):
        items = bundle.objects(data, key, err, where)
        counts[kind] = len(items)
        for i, item in enumerate(items):
            at = f"{where}: {key}[{i}]"
            bundle.text_field(item, "file" if kind == "weight" else "name", err, at)
            bundle.integers(item.get("shape"), err, f"{at}: shape")
    intermediates = set()
    for i, item in enumerate(bundle.objects(data, "intermediates", err, where)):
        at = f"{where}: intermediates[{i}]"
        intermediates.add(bundle.integer(item.get("index"), err, f"{at}: index", maximum=1 << 30))
        bundle.integers(item.get("shape"), err, f"{at}: shape")
    for i, kernel in enumerate(bundle.objects(data, "kernels", err, where)):
        at = f"{where}: kernels[{i}]"
        for key in ("name", "entry"):
            bundle.checked_name(bundle.field(kernel, key, str, err, at), err, f"{at}: {key}")
        bundle.text_field(kernel, "ptx", err, at)
        bundle.optional(kernel, "cubin", str, err, at)
        bundle.integers(kernel.get("grid"), err, f"{at}: grid", length=3, minimum=1)
        bundle.integers(kernel.get("block"), err, f"{at}: block", length=3, minimum=1)
        bundle.integer(kernel.get("shared_bytes"), err, f"{at}: shared_bytes", maximum=1 << 20)
        for j, arg in enumerate(bundle.objects(kernel, "args", err, at)):
            arg_at = f"{at}: args[{j}]"
            kind = bundle.text_field(arg, "buffer", err, arg_at, BUFFER_KINDS)
            index = bundle.integer(arg.get("index"), err, f"{arg_at}: index", maximum=1 << 30)
            if index not in intermediates if kind == "intermediate" else index >= counts[kind]:
                raise err(f"{arg_at}: buffer {kind}[{index}] is not in the buffer plan")
            bundle.integers(arg.get("shape"), err, f"{arg_at}: shape")
            bundle.text_field(arg, "access", err, arg_at, ("read", "write"))
            if "ptx_type" in arg:
                bundle.text_field(arg, "ptx_type", err, arg_at)


def kernel_ptx(root: Path, kernel: Mapping[str, Any], error: type[Exception] = ManifestError) -> bytes:
    """The PTX file a manifest kernel names, read checked (inside `root`, regular, bounded)."""
    return bundle.read_bytes(root, kernel["ptx"], error, max_bytes=MAX_KERNEL_FILE_BYTES)


def kernel_cubin(root: Path, kernel: Mapping[str, Any], error: type[Exception] = ManifestError) -> bytes | None:
    """The cubin a manifest kernel names (None when it names none), read checked."""
    name = kernel.get("cubin")
    return None if name is None else bundle.read_bytes(root, name, error, max_bytes=MAX_KERNEL_FILE_BYTES)


def weight_array(root: Path, weight: Mapping[str, Any], error: type[Exception] = ManifestError) -> np.ndarray:
    """The f32 `.npy` of a manifest weight, its size checked against its shape before reading."""
    shape = tuple(weight["shape"])
    array = bundle.load_npy(root, weight["file"], error, dtype=np.float32, nbytes=_nbytes(shape))
    return array.reshape(shape)


def _row_major_strides(shape: Sequence[int]) -> list[int]:
    strides, step = [], 1
    for extent in reversed(shape):
        strides.append(step)
        step *= max(int(extent), 1)
    return strides[::-1]


def param_layout(kernel: Mapping[str, Any], calling_convention: str = "bare_ptr") -> list[tuple[int, str, Any]]:
    """The kernel's parameters in order: (argument index, role, ctypes type). `bare_ptr`: one
    pointer per argument; `memref`: per argument allocated ptr, aligned ptr, offset, sizes,
    strides (i64), as MLIR's NVVM lowering flattens a memref descriptor."""
    layout: list[tuple[int, str, Any]] = []
    for i, arg in enumerate(kernel["args"]):
        ptx_type = arg.get("ptx_type", ".u64 .ptr")
        if calling_convention == "bare_ptr":
            if not ptx_type.startswith(".u64"):
                raise ManifestError(f"kernel {kernel['name']}: argument {i} has PTX type {ptx_type!r}, not a pointer")
            layout.append((i, "ptr", ctypes.c_void_p))
        elif calling_convention == "memref":
            rank = len(arg["shape"])
            layout.append((i, "allocated", ctypes.c_void_p))
            layout.append((i, "aligned", ctypes.c_void_p))
            layout.append((i, "offset", ctypes.c_int64))
            layout.extend((i, f"size{d}", ctypes.c_int64) for d in range(rank))
            layout.extend((i, f"stride{d}", ctypes.c_int64) for d in range(rank))
        else:
            raise ManifestError(f"unknown calling convention {calling_convention!r} (known: bare_ptr, memref)")
    return layout


def build_kernel_params(
    kernel: Mapping[str, Any], buffer_pointers: Sequence[int], calling_convention: str = "bare_ptr"
) -> tuple[list[Any], ctypes.Array]:
    """The `kernelParams` of `cuLaunchKernel` for a manifest kernel whose arguments point to
    `buffer_pointers` (one device address per `kernel["args"]` entry, in order): the ctypes
    values (keep them alive while the array is used) and the `void*[]` array pointing to them."""
    args = kernel["args"]
    if len(buffer_pointers) != len(args):
        raise ValueError(f"kernel {kernel['name']}: {len(args)} arguments, {len(buffer_pointers)} pointers given")
    values: list[Any] = []
    for i, role, ctype in param_layout(kernel, calling_convention):
        shape = args[i]["shape"]
        if role in ("ptr", "allocated", "aligned"):
            values.append(ctype(int(buffer_pointers[i])))
        elif role == "offset":
            values.append(ctype(0))
        elif role.startswith("size"):
            values.append(ctype(int(shape[int(role[4:])])))
        else:
            values.append(ctype(_row_major_strides(shape)[int(role[6:])]))
    array = (ctypes.c_void_p * max(len(values), 1))(*[ctypes.addressof(v) for v in values])
    return values, array


def _nbytes(shape: Sequence[int]) -> int:
    return math.prod(int(d) for d in shape) * 4


# -- the launcher ----------------------------------------------------------------------------------


@dataclass
class LoadedKernel:
    """A kernel loaded into the current context, its parameters fixed to device addresses."""

    name: str
    function: Any
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared_bytes: int
    values: list[Any]  # the ctypes values `params` points to (kept alive with it)
    params: ctypes.Array
    source: str  # "ptx" or "cubin"

    def enqueue(self, cu: ModuleType, stream: Any, where: str) -> None:
        check(
            cu.cuLaunchKernel(
                self.function, *self.grid, *self.block, self.shared_bytes, stream, ctypes.addressof(self.params), 0
            ),
            f"{where}: cuLaunchKernel {self.name} grid={self.grid} block={self.block} shared={self.shared_bytes}",
        )


def load_kernel(
    cu: ModuleType,
    info: DeviceInfo,
    arch: str,
    kernel: Mapping[str, Any],
    ptx: bytes,
    cubin: bytes | None,
    pointers: Sequence[int],
    calling_convention: str,
    where: str,
    prefer_cubin: bool = True,
) -> tuple[Any, LoadedKernel]:
    """(the CUmodule, the kernel) for `kernel` (entry, grid, block, shared_bytes, args with their
    shapes): from `cubin` when it runs on the device, else from `ptx` (JIT-compiled by the
    driver); dynamic shared memory above 48 KiB is opted into; parameters point to `pointers`."""
    entry = kernel["entry"]
    module, source = None, "ptx"
    if prefer_cubin and cubin is not None and cubin_runs_on(arch, info.compute_capability):
        with contextlib.suppress(CudaError):  # fall back to the PTX
            module = check(cu.cuModuleLoadData(cubin), f"{where}: cuModuleLoadData (cubin)")
            source = "cubin"
    if module is None:
        hint = f"PTX for {arch}, device {info.name} is {info.arch}"
        module = check(cu.cuModuleLoadData(ptx + b"\0"), f"{where}: cuModuleLoadData ({hint})")
    try:
        function = check(cu.cuModuleGetFunction(module, entry.encode()), f"{where}: cuModuleGetFunction")
        shared = int(kernel["shared_bytes"])
        if shared > SHARED_DEFAULT_BYTES:
            attribute = cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
            check(
                cu.cuFuncSetAttribute(function, attribute, shared),
                f"{where}: {shared} bytes of dynamic shared memory (device allows {info.shared_opt_in_bytes})",
            )
        values, params = build_kernel_params({"name": entry, **kernel}, pointers, calling_convention)
    except BaseException:
        with contextlib.suppress(Exception):
            cu.cuModuleUnload(module)
        raise
    grid = tuple(int(g) for g in kernel["grid"])
    block = tuple(int(b) for b in kernel["block"])
    return module, LoadedKernel(entry, function, grid, block, shared, values, params, source)


class DeviceResource(abc.ABC):
    """Something holding CUDA objects that `close()` frees: usable in `with`, closed when collected."""

    @abc.abstractmethod
    def close(self) -> None:
        """Frees the CUDA objects (idempotent; errors after a sticky fault are ignored)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class CudaLauncher(DeviceResource):
    """Runs and times the kernels of a saved CUDA model directory on device `device`."""

    def __init__(self, directory: str | os.PathLike, device: int = 0, prefer_cubin: bool = True):
        self.root = Path(directory)
        self.manifest = read_manifest(self.root)
        reason = cuda_status(device)
        if reason is not None:
            raise CudaError("no CUDA device", "", reason)
        self.cu = driver()
        self.info = device_info(device)
        self._device = check(self.cu.cuDeviceGet(device), "cuDeviceGet")
        self._context = None
        self._stream = None
        self._modules: list[Any] = []
        self._allocations: list[Any] = []
        self._events: list[Any] = []
        self._flush: tuple[Any, int] | None = None
        self.buffers: dict[tuple[str, int], tuple[int, tuple[int, ...]]] = {}
        self.kernels: list[LoadedKernel] = []
        try:
            self._context = check(self.cu.cuDevicePrimaryCtxRetain(self._device), "cuDevicePrimaryCtxRetain")
            self._make_current()
            self._stream = check(self.cu.cuStreamCreate(0), "cuStreamCreate")
            self._allocate()
            self._upload_weights()
            for kernel in self.manifest["kernels"]:
                self.kernels.append(self._load_kernel(kernel, prefer_cubin))
        except BaseException:
            self.close()
            raise

    # -- set-up --------------------------------------------------------------------------------

    @property
    def arch(self) -> str:
        return self.manifest["arch"]

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.manifest["inputs"]]

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(i["shape"]) for i in self.manifest["inputs"]]

    @property
    def output_names(self) -> list[str]:
        return [o["name"] for o in self.manifest["outputs"]]

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(o["shape"]) for o in self.manifest["outputs"]]

    def _make_current(self) -> None:
        check(self.cu.cuCtxSetCurrent(self._context), "cuCtxSetCurrent")

    def _alloc(self, nbytes: int, what: str) -> int:
        ptr = check(self.cu.cuMemAlloc(max(nbytes, 4)), f"cuMemAlloc({nbytes} bytes) for {what}")
        self._allocations.append(ptr)
        return int(ptr)

    def _allocate(self) -> None:
        m = self.manifest
        groups = {
            "input": [tuple(i["shape"]) for i in m["inputs"]],
            "weight": [tuple(w["shape"]) for w in m["weights"]],
            "output": [tuple(o["shape"]) for o in m["outputs"]],
        }
        for kind, shapes in groups.items():
            for index, shape in enumerate(shapes):
                self.buffers[(kind, index)] = (self._alloc(_nbytes(shape), f"{kind}[{index}]"), shape)
        for item in m["intermediates"]:
            shape = tuple(item["shape"])
            key = ("intermediate", int(item["index"]))
            self.buffers[key] = (self._alloc(_nbytes(shape), f"intermediate[{key[1]}]"), shape)

    def _upload(self, key: tuple[str, int], array: np.ndarray, what: str) -> None:
        ptr, shape = self.buffers[key]
        data = np.ascontiguousarray(array, dtype=np.float32)
        if data.size != math.prod(shape):
            raise ValueError(f"{what}: {data.shape} has {data.size} elements, the buffer holds shape {shape}")
        check(self.cu.cuMemcpyHtoDAsync(ptr, data.ctypes.data, data.nbytes, self._stream), f"upload of {what}")
        check(self.cu.cuStreamSynchronize(self._stream), f"upload of {what}")

    def _upload_weights(self) -> None:
        for index, weight in enumerate(self.manifest["weights"]):
            self._upload(("weight", index), weight_array(self.root, weight), f"weight[{index}] ({weight['file']})")

    def _load_kernel(self, kernel: Mapping[str, Any], prefer_cubin: bool) -> LoadedKernel:
        where = f"kernel {kernel['entry']}"
        pointers = []
        for arg in kernel["args"]:
            key = (arg["buffer"], int(arg["index"]))
            if key not in self.buffers:
                raise ManifestError(f"{where}: argument buffer {key[0]}[{key[1]}] is not in the buffer plan")
            ptr, shape = self.buffers[key]
            if math.prod(arg["shape"]) != math.prod(shape):
                raise ManifestError(f"{where}: argument shape {arg['shape']} does not view buffer {key} {shape}")
            pointers.append(ptr)
        module, loaded = load_kernel(
            self.cu, self.info, self.arch, kernel, kernel_ptx(self.root, kernel), kernel_cubin(self.root, kernel),
            pointers,
            self.manifest.get("calling_convention", "bare_ptr"), where, prefer_cubin,
        )
        self._modules.append(module)
        return loaded

    # -- running -------------------------------------------------------------------------------

    def set_inputs(self, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> None:
        """Uploads the graph inputs (a list in manifest order, or a dict by input name)."""
        names = self.input_names
        if isinstance(inputs, Mapping):
            missing = [n for n in names if n not in inputs]
            if missing:
                raise ValueError(f"missing input '{missing[0]}'; inputs are {names}")
            arrays = [inputs[n] for n in names]
        else:
            arrays = list(inputs)
            if len(arrays) != len(names):
                raise ValueError(f"{len(arrays)} inputs given, the model has {len(names)}: {names}")
        for index, (name, array, shape) in enumerate(zip(names, arrays, self.input_shapes, strict=True)):
            if tuple(np.shape(array)) != shape:
                raise ValueError(f"input '{name}' has shape {tuple(np.shape(array))}, expected {shape}")
            self._upload(("input", index), array, f"input '{name}'")

    def launch(self, sync_each: bool = False) -> None:
        """Enqueues every kernel in order on the launcher's stream (`sync_each`: waits after
        each, so that an asynchronous fault names its kernel)."""
        for k in self.kernels:
            k.enqueue(self.cu, self._stream, f"kernel {k.name}")
            if sync_each:
                check(self.cu.cuStreamSynchronize(self._stream), f"kernel {k.name}: execution")

    def run(self, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Runs the model on `inputs` and returns its outputs (in manifest order). Outputs and
        intermediates are filled with NaN first, so an element no kernel writes shows."""
        self._make_current()
        self.set_inputs(inputs)
        for (kind, index), (ptr, shape) in self.buffers.items():
            if kind in ("output", "intermediate"):
                check(
                    self.cu.cuMemsetD8Async(ptr, POISON_BYTE, _nbytes(shape), self._stream),
                    f"cuMemsetD8Async of {kind}[{index}]",
                )
        self.launch(sync_each=True)
        outputs = []
        for index, shape in enumerate(self.output_shapes):
            ptr, _ = self.buffers[("output", index)]
            host = np.empty(shape, dtype=np.float32)
            check(
                self.cu.cuMemcpyDtoHAsync(host.ctypes.data, ptr, host.nbytes, self._stream),
                f"download of output {index}",
            )
            outputs.append(host)
        check(self.cu.cuStreamSynchronize(self._stream), "download of the outputs")
        return outputs

    def _event(self) -> Any:
        event = check(self.cu.cuEventCreate(0), "cuEventCreate")
        self._events.append(event)
        return event

    def _flush_buffer(self) -> tuple[Any, int]:
        if self._flush is None:
            nbytes = max(2 * self.info.l2_bytes, 1 << 20)
            self._flush = (self._alloc(nbytes, "the L2 flush buffer"), nbytes)
        return self._flush

    def time(self, repeat: int = 10, warmup: int = 3, number: int = 1, flush_l2: bool = True) -> list[float]:
        """Seconds per run of all kernels, one value per repeat (the mean of `number` runs),
        measured with CUDA events after `warmup` runs; with `flush_l2`, a buffer twice the L2
        size is written before each repeat so that no repeat starts with a warm cache."""
        if repeat < 1 or number < 1 or warmup < 0:
            raise ValueError(f"repeat ({repeat}) and number ({number}) must be positive, warmup ({warmup}) >= 0")
        self._make_current()
        for _ in range(warmup):
            self.launch()
        check(self.cu.cuStreamSynchronize(self._stream), f"warm-up of kernels {[k.name for k in self.kernels]}")
        start, end = self._event(), self._event()
        flush = self._flush_buffer() if flush_l2 else None
        times = []
        for r in range(repeat):
            if flush is not None:
                check(self.cu.cuMemsetD8Async(flush[0], r & 0xFF, flush[1], self._stream), "L2 flush")
            check(self.cu.cuEventRecord(start, self._stream), "cuEventRecord")
            for _ in range(number):
                self.launch()
            check(self.cu.cuEventRecord(end, self._stream), "cuEventRecord")
            check(self.cu.cuEventSynchronize(end), f"timed run of kernels {[k.name for k in self.kernels]}")
            milliseconds = check(self.cu.cuEventElapsedTime(start, end), "cuEventElapsedTime")
            times.append(float(milliseconds) / 1000.0 / number)
        return times

    # -- tear-down -----------------------------------------------------------------------------

    def close(self) -> None:
        """Frees the buffers, modules, events and stream and releases the context (errors
        after a sticky fault are ignored: the context is gone anyway)."""
        cu = getattr(self, "cu", None)
        if cu is None or getattr(self, "_context", None) is None:
            return
        release(cu, self._device, self._events, self._allocations, self._modules, self._stream)
        self._events, self._allocations, self._modules = [], [], []
        self._stream = self._context = None
        self._flush = None
        self.kernels = []
