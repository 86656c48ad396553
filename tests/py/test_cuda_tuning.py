"""The CUDA side of auto-tuning: kernel parameters against the PTX, the tuning tasks of the
tiny ResNet and their standalone compilation, the batch format (export, measure, results,
resuming), `wpk measure` without MLIR, and the runner.

Without a GPU, a fake `cuda.bindings.driver` (FAKE_DRIVER: host memory, kernels that write the
mean of their inputs into their poisoned outputs, a virtual clock, PTX markers that make a
kernel fail, hang or compute a wrong result) stands in for the driver, in this process and in
the measuring subprocesses; where the real cuda-python is installed but no driver, every call
the launcher makes is also passed to the real binding to check its argument types. Tests
marked `gpu` run on a real device and are skipped without one.
"""

from __future__ import annotations

import builtins
import ctypes
import importlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from woodpecker.cli import measure as measure_cli
from woodpecker.compiler import compile
from woodpecker.gpu.arch import ARCHS
from woodpecker.gpu.model import CudaModel
from woodpecker.gpu.tasks import compile_candidate, cuda_tasks, space_for, task_weights
from woodpecker.kernels.task import KernelTask, MeasureResult, unique_tasks
from woodpecker.measure import batch as batch_mod
from woodpecker.measure.batch import (
    BATCH_FILE,
    REFERENCE_FILE,
    RESULTS_FILE,
    NoCudaDeviceError,
    measure_batch,
    read_batch,
    read_results,
)
from woodpecker.measure.cuda_runner import CudaRunner, export_candidates
from woodpecker.models import bundled_model_path
from woodpecker.runtime.cuda import launch
from woodpecker.runtime.cuda.launch import build_kernel_params, cuda_available, param_layout
from woodpecker.schedule import InvalidConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
ARCH = "sm_90"
HAS_GPU = cuda_available()
gpu = pytest.mark.gpu
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs an NVIDIA GPU with a CUDA driver")
no_gpu_only = pytest.mark.skipif(HAS_GPU, reason="checks the behaviour without a CUDA device")

FAKE_DRIVER = r'''
"""A fake `cuda.bindings.driver` for tests without a GPU."""

import ctypes
import enum
import os
import re
import time

import numpy as np


class CUresult(enum.IntEnum):
    CUDA_SUCCESS = 0
    CUDA_ERROR_INVALID_VALUE = 1
    CUDA_ERROR_NO_DEVICE = 100
    CUDA_ERROR_INVALID_PTX = 218
    CUDA_ERROR_INVALID_HANDLE = 400
    CUDA_ERROR_NOT_FOUND = 500
    CUDA_ERROR_ILLEGAL_ADDRESS = 700
    CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701


class CUdevice_attribute(enum.IntEnum):
    CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97


class CUfunction_attribute(enum.IntEnum):
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8


CC = tuple(int(x) for x in os.environ.get("WPK_FAKE_CUDA_CC", "10.0").split("."))
DEVICES = int(os.environ.get("WPK_FAKE_CUDA_DEVICES", "1"))
L2_BYTES = 1 << 20
OPT_IN = 227 * 1024
PARAM_BYTES = {"u64": 8, "b64": 8, "s64": 8, "f64": 8, "u32": 4, "b32": 4, "s32": 4, "f32": 4}
REAL = None  # the real cuda.bindings.driver: checks the argument types of every call
CALLS = []  # (name, args)
ERRORS = []  # why a call failed
_memory = {}
_modules = {}
_functions = {}
_events = {}
_next = [1000]
_clock = [0.0]  # milliseconds
_pending = [None]
_sticky = [None]


def use_real(real):
    """Checks every call's arguments with `real`'s signatures; returns its enums and handles."""
    global REAL, CUresult, CUdevice_attribute, CUfunction_attribute
    REAL = real
    CUresult = real.CUresult
    CUdevice_attribute = real.CUdevice_attribute
    CUfunction_attribute = real.CUfunction_attribute


def _handle(kind, value):
    return getattr(REAL, kind)(value) if REAL is not None else value


def _new():
    _next[0] += 1
    return _next[0]


def _fail(code, why):
    ERRORS.append(why)
    return (code,)


def _api(fn):
    name = fn.__name__

    def call(*args):
        CALLS.append((name, args))
        if REAL is not None:
            try:
                getattr(REAL, name)(*args)
            except (TypeError, ValueError, OverflowError) as err:
                raise AssertionError(f"{name}{args!r}: cuda-python rejects these arguments: {err}") from None
            except Exception:
                pass  # no driver library: the arguments were converted, the call went no further
        return fn(*args)

    call.__name__ = name
    return call


def _sync():
    if _pending[0] is not None:
        _sticky[0], _pending[0] = _pending[0], None
    return (_sticky[0],) if _sticky[0] is not None else (CUresult.CUDA_SUCCESS,)


def _buffer(ptr, nbytes):
    buf = _memory.get(int(ptr))
    return buf if buf is not None and nbytes <= ctypes.sizeof(buf) else None


@_api
def cuInit(flags):
    return (CUresult.CUDA_SUCCESS,) if DEVICES else (CUresult.CUDA_ERROR_NO_DEVICE,)


@_api
def cuDeviceGetCount():
    return (CUresult.CUDA_SUCCESS, DEVICES)


@_api
def cuDeviceGet(index):
    if index >= DEVICES:
        return (CUresult.CUDA_ERROR_INVALID_VALUE, None)
    return (CUresult.CUDA_SUCCESS, _handle("CUdevice", index))


@_api
def cuDeviceGetName(length, dev):
    return (CUresult.CUDA_SUCCESS, b"Fake CUDA GPU".ljust(length, b"\0"))


@_api
def cuDeviceGetAttribute(attribute, dev):
    values = {38: L2_BYTES, 75: CC[0], 76: CC[1], 97: OPT_IN}
    return (CUresult.CUDA_SUCCESS, values[int(attribute)])


@_api
def cuDevicePrimaryCtxRetain(dev):
    return (CUresult.CUDA_SUCCESS, _handle("CUcontext", 77))


@_api
def cuDevicePrimaryCtxRelease(dev):
    return (CUresult.CUDA_SUCCESS,)


@_api
def cuCtxSetCurrent(ctx):
    return (CUresult.CUDA_SUCCESS,)


@_api
def cuStreamCreate(flags):
    return (CUresult.CUDA_SUCCESS, _handle("CUstream", _new()))


@_api
def cuStreamDestroy(stream):
    return (CUresult.CUDA_SUCCESS,)


@_api
def cuStreamSynchronize(stream):
    return _sync()


@_api
def cuEventCreate(flags):
    handle = _new()
    _events[handle] = 0.0
    return (CUresult.CUDA_SUCCESS, _handle("CUevent", handle))


@_api
def cuEventRecord(event, stream):
    if _sticky[0] is not None:
        return (_sticky[0],)
    _events[int(event)] = _clock[0]
    return (CUresult.CUDA_SUCCESS,)


@_api
def cuEventSynchronize(event):
    return _sync()


@_api
def cuEventElapsedTime(start, end):
    return (CUresult.CUDA_SUCCESS, _events[int(end)] - _events[int(start)])


@_api
def cuEventDestroy(event):
    return (CUresult.CUDA_SUCCESS,)


@_api
def cuMemAlloc(nbytes):
    buf = ctypes.create_string_buffer(nbytes)
    _memory[ctypes.addressof(buf)] = buf
    return (CUresult.CUDA_SUCCESS, _handle("CUdeviceptr", ctypes.addressof(buf)))


@_api
def cuMemFree(ptr):
    _memory.pop(int(ptr), None)
    return (CUresult.CUDA_SUCCESS,)


@_api
def cuMemcpyHtoDAsync(dst, src, nbytes, stream):
    buf = _buffer(dst, nbytes)
    if buf is None:
        return _fail(CUresult.CUDA_ERROR_INVALID_VALUE, f"cuMemcpyHtoDAsync to {int(dst):#x}: not an allocation")
    ctypes.memmove(ctypes.addressof(buf), int(src), nbytes)
    return (CUresult.CUDA_SUCCESS,)


@_api
def cuMemcpyDtoHAsync(dst, src, nbytes, stream):
    buf = _buffer(src, nbytes)
    if buf is None:
        return _fail(CUresult.CUDA_ERROR_INVALID_VALUE, f"cuMemcpyDtoHAsync from {int(src):#x}: not an allocation")
    ctypes.memmove(int(dst), ctypes.addressof(buf), nbytes)
    return (CUresult.CUDA_SUCCESS,)


@_api
def cuMemsetD8Async(dst, value, nbytes, stream):
    buf = _buffer(dst, nbytes)
    if buf is None:
        return _fail(CUresult.CUDA_ERROR_INVALID_VALUE, f"cuMemsetD8Async of {int(dst):#x}: not an allocation")
    ctypes.memset(ctypes.addressof(buf), value, nbytes)
    _clock[0] += nbytes / 3e9  # 3 TB/s, in ms
    return (CUresult.CUDA_SUCCESS,)


@_api
def cuModuleLoadData(image):
    data = bytes(image)
    if data.startswith(b"\x7fELF"):
        entries, markers = None, set()
    else:
        text = data.rstrip(b"\0").decode()
        entries = {
            name: [PARAM_BYTES[t] for t in re.findall(r"\.param\s+\.(\w+)", params)]
            for name, params in re.findall(r"\.entry\s+(\w+)\s*\(([^)]*)\)", text)
        }
        if not entries:
            return (CUresult.CUDA_ERROR_INVALID_PTX, None)
        markers = set(re.findall(r"// FAKE: ([\w-]+)", text))
    handle = _new()
    _modules[handle] = (entries, markers)
    return (CUresult.CUDA_SUCCESS, _handle("CUmodule", handle))


@_api
def cuModuleUnload(module):
    return (CUresult.CUDA_SUCCESS,)


@_api
def cuModuleGetFunction(module, name):
    entries, markers = _modules[int(module)]
    name = name.decode()
    if entries is not None and name not in entries:
        return (CUresult.CUDA_ERROR_NOT_FOUND, None)
    handle = _new()
    params = None if entries is None else entries[name]
    _functions[handle] = {"name": name, "params": params, "markers": markers, "max_shared": 48 * 1024}
    return (CUresult.CUDA_SUCCESS, _handle("CUfunction", handle))


@_api
def cuFuncSetAttribute(function, attribute, value):
    if int(attribute) != 8 or value > OPT_IN:
        return (CUresult.CUDA_ERROR_INVALID_VALUE,)
    _functions[int(function)]["max_shared"] = value
    return (CUresult.CUDA_SUCCESS,)


@_api
def cuLaunchKernel(function, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
    if _sticky[0] is not None:
        return (_sticky[0],)
    fn = _functions.get(int(function))
    if fn is None:
        return (CUresult.CUDA_ERROR_INVALID_HANDLE,)
    if bx * by * bz > 1024 or shared > fn["max_shared"]:
        return _fail(CUresult.CUDA_ERROR_INVALID_VALUE, f"{fn['name']}: block {bx}x{by}x{bz}, shared {shared}")
    markers = fn["markers"]
    if "launch-fail" in markers:
        return (CUresult.CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES,)
    if "hang" in markers:
        time.sleep(3600)
    _clock[0] += 0.001 + 1e-6 * gx * gy * gz * bx * by * bz + 1e-8 * shared
    if fn["params"] is None:  # a cubin: the parameter list is not known here
        return (CUresult.CUDA_SUCCESS,)
    slots = (ctypes.c_void_p * max(len(fn["params"]), 1)).from_address(int(params))
    pointers = []
    for i, size in enumerate(fn["params"]):
        if not slots[i]:
            return _fail(CUresult.CUDA_ERROR_INVALID_VALUE, f"{fn['name']}: parameter {i} is NULL")
        value = (ctypes.c_uint64 if size == 8 else ctypes.c_uint32).from_address(slots[i]).value
        if value not in _memory:
            return _fail(CUresult.CUDA_ERROR_INVALID_VALUE, f"{fn['name']}: parameter {i} = {value:#x}")
        pointers.append(value)
    if "illegal-address" in markers:
        _pending[0] = CUresult.CUDA_ERROR_ILLEGAL_ADDRESS
        return (CUresult.CUDA_SUCCESS,)
    arrays = [np.frombuffer(_memory[p], dtype=np.float32) for p in pointers]
    poisoned = [a.view(np.uint32).min() == 0xFFFFFFFF for a in arrays]
    read = [a.astype(np.float64) for a, p in zip(arrays, poisoned) if not p]
    total = float(np.concatenate(read).mean()) if read else 0.5
    total += 1.0 if "wrong" in markers else 0.0
    for a, p in zip(arrays, poisoned):
        if p:
            a[:] = np.float32(total)
    return (CUresult.CUDA_SUCCESS,)


@_api
def cuGetErrorName(error):
    return (CUresult.CUDA_SUCCESS, CUresult(int(error)).name.encode())


@_api
def cuGetErrorString(error):
    return (CUresult.CUDA_SUCCESS, ("fake: " + CUresult(int(error)).name.lower()).encode())
'''


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet() -> CudaModel:
    model = compile(bundled_model_path(), target="cuda", arch=ARCH)
    assert isinstance(model, CudaModel)
    return model


@pytest.fixture(scope="module")
def saved(resnet: CudaModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return resnet.save_kernels(tmp_path_factory.mktemp("resnet") / "tiny_resnet.cuda")


@pytest.fixture(scope="module")
def tasks(resnet: CudaModel) -> list[KernelTask]:
    return cuda_tasks(resnet, ARCH, "Test GPU")


def _task(tasks: list[KernelTask], kernel: str) -> KernelTask:
    return next(t for t in tasks if kernel in t.model_kernels)


def _other_configs(task: KernelTask, count: int, seed: int = 1) -> list[dict]:
    """`count` distinct valid configurations other than the default."""
    space = space_for(task, ARCH)
    rng = random.Random(seed)
    found: list[dict] = []
    for _ in range(200):
        config = space.sample(rng)
        if config != space.default and config not in found:
            found.append(config)
        if len(found) == count:
            return found
    raise AssertionError(f"{task.key}: fewer than {count} non-default configurations")


def _make_fake(monkeypatch: pytest.MonkeyPatch, cc: str = "10.0") -> types.ModuleType:
    """Installs the fake driver as `cuda.bindings.driver` in this process."""
    monkeypatch.setenv("WPK_FAKE_CUDA_CC", cc)
    real = None
    if not HAS_GPU:
        try:
            real = importlib.import_module("cuda.bindings.driver")
        except ImportError:
            real = None
    fake = types.ModuleType("cuda.bindings.driver")
    exec(compile_source(FAKE_DRIVER), fake.__dict__)
    if real is not None:
        fake.use_real(real)
    monkeypatch.setitem(sys.modules, "cuda.bindings.driver", fake)
    return fake


def compile_source(text: str) -> types.CodeType:
    return builtins.compile(text, "<fake cuda driver>", "exec")


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    return _make_fake(monkeypatch)


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory first on the PYTHONPATH of subprocesses: the fake driver as
    `cuda.bindings.driver`, and an `mlir` package that refuses to be imported."""
    root = tmp_path / "fake_site"
    (root / "cuda" / "bindings").mkdir(parents=True)
    (root / "cuda" / "__init__.py").write_text("")
    (root / "cuda" / "bindings" / "__init__.py").write_text("")
    (root / "cuda" / "bindings" / "driver.py").write_text(FAKE_DRIVER)
    (root / "mlir").mkdir()
    (root / "mlir" / "__init__.py").write_text('raise ImportError("mlir must not be imported to measure a batch")\n')
    paths = [str(root), str(REPO_ROOT / "python"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    return root


def _ptx_params(ptx: str, entry: str) -> list[int]:
    """The byte sizes of the `.param`s of `.entry entry` in a PTX text."""
    match = re.search(rf"\.entry\s+{re.escape(entry)}\s*\(([^)]*)\)", ptx)
    assert match, f"no .entry {entry} in the PTX"
    sizes = {"u64": 8, "b64": 8, "s64": 8, "u32": 4, "b32": 4, "s32": 4, "f32": 4}
    return [sizes[t] for t in re.findall(r"\.param\s+\.(\w+)", match.group(1))]


# -- kernel parameters -----------------------------------------------------------------------------


def test_kernel_params_match_the_ptx_param_lists(saved: Path, tasks: list[KernelTask]) -> None:
    manifest = json.loads((saved / "manifest.json").read_text())
    kernels = [(k, (saved / k["ptx"]).read_text()) for k in manifest["kernels"]]
    # Kernels of non-default schedules too (promoted to shared memory, reduction tiles): every
    # launch of each candidate (a convolution's padding gather and the convolution).
    extra = 0
    for name in ("k0_conv", "k6_conv", "k9_matmul"):
        task = _task(tasks, name)
        model = compile_candidate(task, _other_configs(task, 1)[0], ARCH)
        out = model.save_kernels(saved.parent / f"cand_{name}")
        for k in json.loads((out / "manifest.json").read_text())["kernels"]:
            kernels.append((k, (out / k["ptx"]).read_text()))
            extra += 1
    assert extra >= 3 and len(kernels) == len(manifest["kernels"]) + extra
    for kernel, ptx in kernels:
        ptx_sizes = _ptx_params(ptx, kernel["entry"])
        pointers = [0x7F0000000000 + 0x100000 * i for i in range(len(kernel["args"]))]
        values, array = build_kernel_params(kernel, pointers, manifest["calling_convention"])
        assert [ctypes.sizeof(v) for v in values] == ptx_sizes, kernel["entry"]
        assert len(array) == len(ptx_sizes)
        for slot, value, pointer in zip(array, values, pointers, strict=True):
            assert slot == ctypes.addressof(value)
            assert ctypes.c_uint64.from_address(slot).value == pointer


def test_memref_calling_convention_flattens_descriptors() -> None:
    kernel = {"name": "k", "args": [{"shape": [2, 3, 4]}, {"shape": [5]}]}
    layout = param_layout(kernel, "memref")
    assert len(layout) == (3 + 2 * 3) + (3 + 2 * 1)
    values, array = build_kernel_params(kernel, [0x1000, 0x2000], "memref")
    assert [v.value for v in values[:9]] == [0x1000, 0x1000, 0, 2, 3, 4, 12, 4, 1]
    assert [v.value for v in values[9:]] == [0x2000, 0x2000, 0, 5, 1]
    assert len(array) == 14
    with pytest.raises(ValueError, match="2 arguments, 1 pointers"):
        build_kernel_params(kernel, [0x1000])
    with pytest.raises(launch.ManifestError, match="unknown calling convention"):
        param_layout(kernel, "fancy")


def test_cubin_compatibility() -> None:
    assert launch.cubin_runs_on("sm_80", (8, 6)) and launch.cubin_runs_on("sm_90", (9, 0))
    assert not launch.cubin_runs_on("sm_86", (8, 0)) and not launch.cubin_runs_on("sm_80", (9, 0))
    assert launch.cubin_runs_on("sm_90a", (9, 0)) and not launch.cubin_runs_on("sm_90a", (10, 0))


# -- tasks -----------------------------------------------------------------------------------------


def test_cuda_tasks_of_the_tiny_resnet(resnet: CudaModel, tasks: list[KernelTask]) -> None:
    kernels = [step.name for step in resnet.plan.steps]  # the model kernels, in launch order
    assert kernels == list(dict.fromkeys(k.model_kernel for k in resnet.kernels))
    assert len(tasks) == len(kernels) < len(resnet.kernels)  # some kernels have several launches
    for task, name in zip(tasks, kernels, strict=True):
        assert name in task.model_kernels
        assert task.target == "cuda" and task.device == "Test GPU"
        assert task.kernel_name == f"k0_{task.kind}" and task.template.startswith("cuda.")
        assert task.key.startswith(f"cuda.{task.kind}.{'x'.join(map(str, task.output_shape))}.{ARCH}.")
        assert "func.func @main(" in task.module_text
        assert len(task.arg_shapes) - task.num_weights >= 1 or task.kind == "elementwise"
    # Different problems (or epilogues: k2 has no residual input, k3 has) have different keys.
    assert _task(tasks, "k2_conv").key != _task(tasks, "k3_conv").key
    # The softmax is one kernel of four launches (max, exp, sum, divide), the average pool another.
    softmax = _task(tasks, "k10_reduction")
    assert softmax.description.endswith("+3 launches") and softmax.key != _task(tasks, "k8_reduction").key
    distinct = unique_tasks(tasks)
    assert len(distinct) == len({t.key for t in tasks}) == len(tasks)
    assert sorted(k for t in distinct for k in t.model_kernels) == sorted(kernels)
    conv = _task(tasks, "k0_conv")  # its padding gather and the convolution
    assert conv.description == "conv 1x3x66x66 * 8x3x3x3 -> 1x8x64x64 +epilogue(8) +1 launch"
    assert _task(tasks, "k3_conv").description == (
        "conv 1x8x34x34 * 8x8x3x3 -> 1x8x32x32 +epilogue(1x8x32x32, 8) +1 launch"
    )
    assert conv.flops == 2 * 8 * 64 * 64 * 3 * 3 * 3 and conv.num_weights == 2
    assert conv.arg_shapes[0] == (1, 3, 64, 64)  # the unpadded input: the kernel pads it
    # The same keys from the module's text, and the device is part of the key.
    again = cuda_tasks(str(resnet.linalg), ARCH, "Test GPU", num_inputs=1)
    assert [t.key for t in again] == [t.key for t in tasks]
    other = cuda_tasks(resnet, ARCH, "Other GPU")
    assert not {t.key for t in other} & {t.key for t in tasks}


def test_identical_cuda_kernels_share_one_task() -> None:
    """Two identical convolutions (with their pads) are one task standing for both kernels."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "twins", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 8, 16, 16))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 8, 16, 16))], [numpy_helper.from_array(w, "w")],
    )
    model = compile(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), target="cuda", arch=ARCH)
    first, second = cuda_tasks(model, ARCH)
    assert first is second and first.model_kernels == ("k0_conv", "k1_conv")


def test_task_spaces_have_valid_defaults(resnet: CudaModel, tasks: list[KernelTask]) -> None:
    model_spaces = resnet.search_spaces()
    for task in unique_tasks(tasks):
        space = space_for(task, ARCH)
        assert space.template == task.template and space.kernel == task.kernel_name
        assert space.is_valid(space.default)
        # The standalone kernel has the model kernel's space.
        model_space = model_spaces[task.model_kernels[0]]
        assert space.default == model_space.default
        assert [k.domain for k in space.knobs] == [k.domain for k in model_space.knobs]


def test_compile_candidate_compiles_only_that_kernel(tasks: list[KernelTask]) -> None:
    task = _task(tasks, "k0_conv")
    config = _other_configs(task, 1, seed=3)[0]
    model = compile_candidate(task, config, ARCH)
    pad, kernel = model.kernels  # the kernel's padding gather and its convolution
    assert [k.function for k in model.kernels] == ["k0_conv_0", "k0_conv"] and kernel.name == "k0_conv_kernel"
    assert {k.model_kernel for k in model.kernels} == {"k0_conv"} and pad.kind == "gather"
    assert f".entry {kernel.name}(" in kernel.ptx
    assert kernel.config.launch_shape(kernel.problem, ARCH).grid == kernel.grid
    assert model.input_names == ["x0"] and model.output_names == ["y"]
    assert [w.shape for w in model.weights] == [s for s in task.arg_shapes[1:]]
    assert all(np.array_equal(a, b) for a, b in zip(model.weights, task_weights(task), strict=True))
    # The cut kernel computes the model's pad + conv + bias + ReLU (its schedules run on the CPU).
    x = np.random.default_rng(5).standard_normal(task.arg_shapes[0]).astype(np.float32)
    (got,) = model.emulate({"x0": x})
    w = next(a for a in model.weights if a.ndim == 4).astype(np.float64)
    b = next(a for a in model.weights if a.ndim == 1).astype(np.float64)
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    expected = np.maximum(np.einsum("nchwij,fcij->nfhw", windows, w) + b[None, :, None, None], 0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(InvalidConfigError, match="thread_tile"):
        compile_candidate(task, {"thread_tile": (1, 1, 3, 3)}, ARCH)


# -- the batch format ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conv_batch_configs(tasks: list[KernelTask]) -> tuple[KernelTask, list[dict]]:
    task = _task(tasks, "k2_conv")
    space = space_for(task, ARCH)
    return task, [dict(space.default), *_other_configs(task, 2)]


def _export(task: KernelTask, configs: list[dict], directory: Path, **kwargs) -> Path:
    return export_candidates(task, configs, directory, ARCH, **kwargs)


def test_export_and_read_a_batch(conv_batch_configs, tmp_path: Path) -> None:
    task, configs = conv_batch_configs
    bad = {**configs[1], "thread_tile": (1, 1, 3, 3)}
    # The default is not first: the exporter still picks it as the reference.
    root = _export(task, [configs[1], configs[0], bad, configs[2]], tmp_path / "b", ids=[10, 11, 12, 13])
    data = json.loads((root / BATCH_FILE).read_text())
    assert data["format"] == "woodpecker.tune.batch" and data["version"] == 1
    assert data["arch"] == ARCH and data["device"] == "Test GPU" and data["reference"] == 11
    assert data["task"]["key"] == task.key and data["task"]["description"] == task.description
    assert [c["id"] for c in data["candidates"]] == [10, 11, 12, 13]
    assert data["candidates"][1]["config"]["block_tile"] == list(configs[0]["block_tile"])
    failed = data["candidates"][2]
    assert failed["dir"] is None and "compile error: InvalidConfigError" in failed["error"]
    batch = read_batch(root)
    assert batch.task == task and batch.reference == 11 and batch.seed == 0
    assert [c.config for c in batch.candidates] == [configs[1], configs[0], bad, configs[2]]
    for cand in batch.candidates:
        if cand.dir is None:
            continue
        model = CudaModel.load_kernels(batch.model_dir(cand))
        assert {k.model_kernel for k in model.kernels} == {task.kernel_name}
        manifest = json.loads((batch.model_dir(cand) / "manifest.json").read_text())
        (main,) = [k for k in manifest["kernels"] if k["function"] == task.kernel_name]
        assert batch_mod.config_from_json(main["config"]) == space_for(task, ARCH).validate(cand.config)
        assert cand.compile_seconds > 0
    # Identical weights are stored once (hard links).
    first, other = root / "cand_10" / "weight_0.npy", root / "cand_13" / "weight_0.npy"
    assert first.stat().st_ino == other.stat().st_ino
    with pytest.raises(batch_mod.BatchError, match="already holds a batch"):
        _export(task, configs, root)
    with pytest.raises(batch_mod.BatchError, match="not a batch directory"):
        read_batch(tmp_path)


def test_results_round_trip(conv_batch_configs, tmp_path: Path) -> None:
    _, configs = conv_batch_configs
    assert read_results(tmp_path) == {}
    entries = [
        {"id": 4, **MeasureResult(configs[0], [1e-5, 2e-5, 3e-5], None, 0.5).to_json(), "verified": "reference"},
        {"id": 9, **MeasureResult(configs[1], [], "CUDA error: boom", 0.25).to_json(), "verified": None},
    ]
    batch_mod.write_results(tmp_path, json.loads(json.dumps(entries)), {"name": "Fake", "arch": ARCH})
    results = read_results(tmp_path)
    assert set(results) == {4, 9}
    assert results[4].config == configs[0] and isinstance(results[4].config["block_tile"], tuple)
    assert results[4].ok and results[4].seconds == 2e-5 and results[4].compile_seconds == 0.5
    assert not results[9].ok and results[9].error == "CUDA error: boom" and results[9].seconds == float("inf")


@no_gpu_only
def test_measure_without_a_gpu_fails_clearly_and_keeps_results(
    conv_batch_configs, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    task, configs = conv_batch_configs
    root = _export(task, configs, tmp_path / "b")
    assert not launch.cuda_available() and "driver" in (launch.cuda_status() or "")
    with pytest.raises(NoCudaDeviceError, match=r"no CUDA device: .*wpk measure"):
        measure_batch(root)
    assert not (root / RESULTS_FILE).exists()
    assert measure_cli.main([str(root)]) == 1
    assert "no CUDA device" in capsys.readouterr().err
    assert measure_cli.main([str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match=r"^no CUDA device: use `wpk tune --target cuda --export DIR` and `wpk"):
        CudaRunner()


def test_measuring_needs_no_mlir(conv_batch_configs, tmp_path: Path) -> None:
    """`woodpecker.measure.batch` and the launcher import without MLIR, and measuring a batch
    there gives the device error (here) or results (on a GPU host)."""
    task, configs = conv_batch_configs
    root = _export(task, configs[:1], tmp_path / "b")
    script = f"""
import sys
sys.modules["mlir"] = None  # any import of mlir fails
import woodpecker.measure.batch as b
try:
    b.measure_batch({str(root)!r}, repeat=2, warmup=1)
    print("MEASURED", sorted(b.read_results({str(root)!r})))
except b.NoCudaDeviceError as err:
    print("NODEVICE", err)
except b.DeviceMismatchError as err:
    print("MISMATCH", err)
loaded = sorted(m for m in sys.modules if m.startswith(("mlir.", "woodpecker.gpu")) and sys.modules[m] is not None)
print("LOADED", loaded)
"""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "python")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout
    if HAS_GPU:
        assert "MEASURED [0]" in proc.stdout or "MISMATCH" in proc.stdout
    else:
        assert "NODEVICE no CUDA device" in proc.stdout and "Nothing was measured" in proc.stdout


# -- with the fake driver --------------------------------------------------------------------------


def test_launcher_runs_and_times_a_model_with_the_fake_driver(
    fake_cuda: types.ModuleType, saved: Path, tmp_path: Path
) -> None:
    with launch.CudaLauncher(saved) as launcher:
        assert launcher.info.name == "Fake CUDA GPU" and launcher.info.arch == "sm_100"
        assert {k.source for k in launcher.kernels} == {"ptx"}
        x = np.random.default_rng(0).standard_normal(launcher.input_shapes[0]).astype(np.float32)
        outputs = launcher.run({"input": x})
        assert [o.shape for o in outputs] == launcher.output_shapes
        assert all(np.isfinite(o).all() for o in outputs)  # every output written
        again = launcher.run([x])
        assert all(np.array_equal(a, b) for a, b in zip(outputs, again, strict=True))
        times = launcher.time(repeat=3, warmup=1)
        assert len(times) == 3 and all(t > 0 for t in times)
        with pytest.raises(ValueError, match="expected"):
            launcher.run([x[:, :2]])
    assert fake_cuda.ERRORS == []
    names = [name for name, _ in fake_cuda.CALLS]
    assert names.count("cuLaunchKernel") == 19 * (2 + 3 + 1) and "cuFuncSetAttribute" not in names
    assert "cuMemsetD8Async" in names and names[-1] == "cuDevicePrimaryCtxRelease"
    # A kernel with more than 48 KiB of dynamic shared memory gets the opt-in attribute; the
    # cubin is used when it runs on the device.
    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["kernels"][1]["shared_bytes"] = 60000
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with launch.CudaLauncher(copy) as launcher:
        launcher.time(repeat=1, warmup=0)
    assert ("cuFuncSetAttribute", 60000) in [(n, a[2]) for n, a in fake_cuda.CALLS if n == "cuFuncSetAttribute"]
    fake_cuda.CC = (9, 0)
    with launch.CudaLauncher(saved) as launcher:
        assert {k.source for k in launcher.kernels} == {"cubin"}


def test_launcher_errors_name_the_kernel(fake_cuda: types.ModuleType, saved: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    entry = manifest["kernels"][2]["entry"]
    with (copy / manifest["kernels"][2]["ptx"]).open("a") as f:
        f.write("\n// FAKE: illegal-address\n")
    with launch.CudaLauncher(copy) as launcher:
        x = np.ones(launcher.input_shapes[0], np.float32)
        with pytest.raises(launch.CudaError, match=rf"kernel {entry}: execution: CUDA_ERROR_ILLEGAL_ADDRESS") as err:
            launcher.run([x])
        assert err.value.sticky
    manifest["kernels"][0]["block"] = [2048, 1, 1]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    fake = _fresh_fake(fake_cuda)
    with launch.CudaLauncher(copy) as launcher, pytest.raises(launch.CudaError, match=r"cuLaunchKernel.*INVALID_VALUE"):
        launcher.time(repeat=1)
    assert fake.ERRORS


def _fresh_fake(old: types.ModuleType) -> types.ModuleType:
    """A new fake (no sticky error) in place of `old`."""
    fake = types.ModuleType("cuda.bindings.driver")
    exec(compile_source(FAKE_DRIVER), fake.__dict__)
    if old.REAL is not None:
        fake.use_real(old.REAL)
    sys.modules["cuda.bindings.driver"] = fake
    return fake


def _mark(root: Path, cid: int, marker: str) -> None:
    manifest = json.loads((root / f"cand_{cid}" / "manifest.json").read_text())
    with (root / f"cand_{cid}" / manifest["kernels"][0]["ptx"]).open("a") as f:
        f.write(f"\n// FAKE: {marker}\n")


def test_measure_batch_in_subprocesses(
    fake_cuda: types.ModuleType, fake_site: Path, conv_batch_configs, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    task, configs = conv_batch_configs
    bad = {**configs[1], "thread_tile": (1, 1, 3, 3)}
    all_configs = [configs[0], configs[1], configs[2], configs[1], configs[2], bad]
    root = _export(task, all_configs, tmp_path / "b", ids=[0, 1, 2, 3, 4, 5])
    _mark(root, 2, "wrong")
    _mark(root, 3, "launch-fail")
    _mark(root, 4, "illegal-address")
    lines: list[str] = []
    path = measure_batch(root, repeat=3, warmup=1, timeout_s=30, log=lines.append)
    assert path == root / RESULTS_FILE
    data = json.loads(path.read_text())
    assert data["device"]["name"] == "Fake CUDA GPU" and data["device"]["arch"] == "sm_100"
    by_id = {e["id"]: e for e in data["results"]}
    assert [e["id"] for e in data["results"]] == [0, 1, 2, 3, 4, 5]
    assert by_id[0]["verified"] == "reference" and by_id[1]["verified"] is True
    assert (root / REFERENCE_FILE).exists()
    results = read_results(root)
    assert results[0].ok and results[1].ok and len(results[0].times) == 3 and min(results[1].times) > 0
    assert results[0].config == configs[0] and results[0].compile_seconds > 0
    assert "wrong output 0" in results[2].error and by_id[2]["verified"] is False
    assert "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES" in results[3].error and "cuLaunchKernel" in results[3].error
    assert "CUDA_ERROR_ILLEGAL_ADDRESS" in results[4].error
    assert results[5].error.startswith("compile error: InvalidConfigError")
    assert not any("mlir" in (r.error or "") for r in results.values())
    assert lines[0] == "note: the task's device is 'Test GPU'; measuring on Fake CUDA GPU (sm_100)"
    assert len(lines) == 7 and lines[1].startswith("[1/6] candidate 0: ")
    # Resuming: nothing is measured again; a removed entry is.
    lines.clear()
    measure_batch(root, repeat=3, warmup=1, timeout_s=30, log=lines.append)
    assert lines[1:] == [] and read_results(root)[1].times == results[1].times
    data["results"] = [e for e in data["results"] if e["id"] != 1]
    (root / RESULTS_FILE).write_text(json.dumps(data))
    assert measure_cli.main([str(root), "--repeat", "2", "--warmup", "0"]) == 0
    out = capsys.readouterr()
    assert "[6/6] candidate 1:" in out.err
    assert re.search(r"^\*\s+0\s+\d+\.\d+\s+reference", out.out, re.M)
    assert re.search(r"^\s+2\s+-\s+no\s+wrong output", out.out, re.M) and "best: candidate" in out.out
    assert len(read_results(root)[1].times) == 2


def test_a_hanging_candidate_times_out(
    fake_cuda: types.ModuleType, fake_site: Path, conv_batch_configs, tmp_path: Path
) -> None:
    task, configs = conv_batch_configs
    root = _export(task, configs[:2], tmp_path / "b")
    _mark(root, 1, "hang")
    measure_batch(root, repeat=1, warmup=0, timeout_s=4)
    results = read_results(root)
    assert results[0].ok
    assert "timed out after 4 s" in results[1].error


def test_measure_in_process_and_a_failed_reference(
    fake_cuda: types.ModuleType, conv_batch_configs, tmp_path: Path
) -> None:
    task, configs = conv_batch_configs
    root = _export(task, configs, tmp_path / "b")
    _mark(root, 0, "launch-fail")
    lines: list[str] = []
    measure_batch(root, repeat=2, warmup=0, isolate=False, log=lines.append)
    results = read_results(root)
    entries = {e["id"]: e for e in json.loads((root / RESULTS_FILE).read_text())["results"]}
    assert not results[0].ok and results[1].ok and results[2].ok
    assert entries[1]["verified"] is None  # nothing to check against
    assert any("reference candidate 0 failed" in line for line in lines)
    assert not (root / REFERENCE_FILE).exists()


def test_cuda_runner_with_the_fake_driver(fake_cuda: types.ModuleType, conv_batch_configs) -> None:
    task, configs = conv_batch_configs
    bad = {**configs[1], "thread_tile": (1, 1, 3, 3)}
    with CudaRunner(ARCH, repeat=3, warmup=1) as runner:
        assert runner.device_name == "Fake CUDA GPU"
        results = runner.measure(task, [configs[0], bad, configs[1]])
        assert [r.config for r in results] == [configs[0], bad, configs[1]]
        assert results[0].ok and results[2].ok and all(t > 0 for t in results[0].times + results[2].times)
        assert results[1].error.startswith("compile error: InvalidConfigError")
        assert all(r.compile_seconds > 0 for r in results)
        reference = runner.reference_outputs(task)
        assert reference is not None and reference[0].shape == task.output_shape
        (later,) = runner.measure(task, [configs[2]])
        assert later.ok and runner.reference_outputs(task) is reference
    with pytest.raises(RuntimeError, match="after close"):
        runner.measure(task, configs[:1])
    assert fake_cuda.ERRORS == []


def test_cuda_runner_stops_after_a_sticky_fault(
    fake_cuda: types.ModuleType, conv_batch_configs, monkeypatch: pytest.MonkeyPatch
) -> None:
    import woodpecker.measure.cuda_runner as cuda_runner

    task, configs = conv_batch_configs
    compiled = cuda_runner.compile_candidate

    def faulty(task: KernelTask, config: dict, arch: str) -> CudaModel:
        model = compiled(task, config, arch)
        if config == configs[1]:
            model.kernels[0].ptx += "\n// FAKE: illegal-address\n"
        return model

    monkeypatch.setattr(cuda_runner, "compile_candidate", faulty)
    with CudaRunner(ARCH, repeat=2, warmup=0) as runner:
        results = runner.measure(task, configs)
    assert results[0].ok
    assert "CUDA_ERROR_ILLEGAL_ADDRESS" in results[1].error
    assert "the CUDA context is unusable after an earlier fault" in results[2].error


def test_cuda_runner_isolated_with_the_fake_driver(
    fake_cuda: types.ModuleType, fake_site: Path, conv_batch_configs
) -> None:
    task, configs = conv_batch_configs
    with CudaRunner(ARCH, repeat=2, warmup=0, isolate=True, timeout_s=30) as runner:
        first = runner.measure(task, configs[:2])
        assert all(r.ok for r in first) and runner.reference_outputs(task) is not None
        (second,) = runner.measure(task, configs[2:])
        assert second.ok and second.config == configs[2]


# -- on a GPU ---------------------------------------------------------------------------------------


def _device_arch() -> str:
    info = launch.device_info()
    if info.arch in ARCHS:
        return info.arch
    runnable = [a for a in ARCHS if batch_mod._arch_cc(a) <= info.compute_capability]
    return max(runnable, key=batch_mod._arch_cc)


@gpu
@needs_gpu
def test_gpu_tiny_resnet_matches_the_emulation(tmp_path: Path) -> None:
    arch = _device_arch()
    model = compile(bundled_model_path(), target="cuda", arch=arch)
    feeds = {"input": np.random.default_rng(7).standard_normal(model.input_shapes["input"]).astype(np.float32)}
    with launch.CudaLauncher(model.save_kernels(tmp_path / "m")) as launcher:
        outputs = launcher.run(feeds)
        times = launcher.time(repeat=5, warmup=2)
    for got, expected in zip(outputs, model.emulate(feeds), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert len(times) == 5 and all(t > 0 for t in times)


@gpu
@needs_gpu
def test_gpu_cuda_runner_measures_the_default_and_two_configs() -> None:
    arch = _device_arch()
    model = compile(bundled_model_path(), target="cuda", arch=arch)
    task = _task(cuda_tasks(model, arch), "k6_conv")
    space = space_for(task, arch)
    rng = random.Random(1)
    configs = [dict(space.default)]
    while len(configs) < 3:
        config = space.sample(rng)
        if config not in configs:
            configs.append(config)
    with CudaRunner(arch, repeat=5, warmup=2) as runner:
        results = runner.measure(task, configs)
    for result in results:
        assert result.ok, result.error
        assert all(t > 0 for t in result.times)


@gpu
@needs_gpu
def test_gpu_measure_batch_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    arch = _device_arch()
    model = compile(bundled_model_path(), target="cuda", arch=arch)
    task = _task(cuda_tasks(model, arch), "k0_conv")
    space = space_for(task, arch)
    configs = [dict(space.default), space.sample(random.Random(2))]
    root = export_candidates(task, configs, tmp_path / "b", arch)
    measure_batch(root, repeat=5, warmup=2, timeout_s=120)
    results = read_results(root)
    assert all(r.ok for r in results.values()), {i: r.error for i, r in results.items()}
    assert measure_cli.main([str(root)]) == 0
    assert "best: candidate" in capsys.readouterr().out
