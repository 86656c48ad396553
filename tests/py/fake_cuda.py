"""An in-process fake `cuda.bindings.driver` that checks a CUDA plan's data flow without a GPU.

Device memory is host memory (one ctypes buffer per `cuMemAlloc`; a pointer anywhere inside an
allocation is valid, as in an arena). Kernels and library calls do not compute their real
function: each one writes, into every element of its output, `mix(inputs)` = 1 + half the sum
of its input buffers' means (`mix` below), which the tests evaluate independently on separate
numpy arrays per buffer. A memory plan that lets a buffer be overwritten while it is still
needed, a kernel parameter or library operand pointing at the wrong offset, or a step skipped
or run twice changes the outputs.

Which kernel parameters are outputs is registered per entry (`writes[entry]`, from the plan).
Work enqueued on a stream that is capturing (`cuStreamBeginCapture`) is recorded into the
graph and runs only on `cuGraphLaunch`. `calls` lists every driver call by name.
"""

from __future__ import annotations

import ctypes
import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class CUresult(enum.IntEnum):
    CUDA_SUCCESS = 0
    CUDA_ERROR_INVALID_VALUE = 1
    CUDA_ERROR_NO_DEVICE = 100
    CUDA_ERROR_INVALID_PTX = 218
    CUDA_ERROR_INVALID_HANDLE = 400
    CUDA_ERROR_NOT_FOUND = 500
    CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900


class CUdevice_attribute(enum.IntEnum):
    CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97


class CUfunction_attribute(enum.IntEnum):
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8


class CUstreamCaptureMode(enum.IntEnum):
    CU_STREAM_CAPTURE_MODE_GLOBAL = 0
    CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1
    CU_STREAM_CAPTURE_MODE_RELAXED = 2


def mix(inputs: Sequence[np.ndarray]) -> float:
    """What every fake kernel and library call writes into its output."""
    return float(np.float32(1.0 + 0.5 * sum(float(np.mean(np.asarray(a, dtype=np.float64))) for a in inputs)))


@dataclass
class _Graph:
    ops: list[Callable[[], None]] = field(default_factory=list)


class FakeDriver:
    """Install with `monkeypatch.setitem(sys.modules, "cuda.bindings.driver", FakeDriver().module())`."""

    CUresult = CUresult
    CUdevice_attribute = CUdevice_attribute
    CUfunction_attribute = CUfunction_attribute
    CUstreamCaptureMode = CUstreamCaptureMode

    def __init__(self, cc: tuple[int, int] = (9, 0), devices: int = 1, fail_capture: bool = False):
        self.cc = cc
        self.devices = devices
        self.fail_capture = fail_capture
        self.calls: list[str] = []
        self.memory: dict[int, ctypes.Array] = {}
        self.modules: dict[int, dict[str, int]] = {}
        self.functions: dict[int, dict[str, Any]] = {}
        self.writes: dict[str, set[int]] = {}  # kernel entry -> indexes of its output parameters
        self.param_bytes: dict[str, list[int]] = {}  # kernel entry -> bytes each parameter views
        self.capturing: dict[int, _Graph] = {}  # stream -> graph being captured
        self.graphs: dict[int, _Graph] = {}
        self.executed: list[str] = []  # kernel entries and library names, in execution order
        self.launched_in_capture = 0
        self._next = 5000
        self.clock = 0.0
        self.events: dict[int, float] = {}

    # -- plumbing ---------------------------------------------------------------------------------

    def module(self) -> Any:
        """A module-like object exposing the driver functions and enums."""
        import types

        mod = types.ModuleType("cuda.bindings.driver")
        for name in dir(self):
            if name.startswith("cu") or name.startswith("CU"):
                setattr(mod, name, getattr(self, name))
        mod.fake = self  # type: ignore[attr-defined]
        return mod

    def _new(self) -> int:
        self._next += 1
        return self._next

    def _ok(self, *values: Any) -> tuple:
        return (CUresult.CUDA_SUCCESS, *values)

    def region(self, ptr: int, nbytes: int) -> np.ndarray:
        """The f32 view of `nbytes` at device address `ptr` (inside one allocation)."""
        for base, buf in self.memory.items():
            if base <= ptr and ptr + nbytes <= base + ctypes.sizeof(buf):
                return np.frombuffer(buf, dtype=np.float32, count=nbytes // 4, offset=ptr - base)
        raise AssertionError(f"device address {ptr:#x} (+{nbytes} bytes) is in no allocation")

    def enqueue(self, stream: Any, what: str, op: Callable[[], None]) -> None:
        """Runs `op` now, or records it when `stream` is capturing (fake libraries use this)."""
        graph = self.capturing.get(int(stream))
        if graph is not None:
            self.launched_in_capture += 1
            graph.ops.append(lambda: (self.executed.append(what), op()))
        else:
            self.executed.append(what)
            op()

    # -- device and context -----------------------------------------------------------------------

    def cuInit(self, flags: int) -> tuple:
        self.calls.append("cuInit")
        return self._ok() if self.devices else (CUresult.CUDA_ERROR_NO_DEVICE,)

    def cuDeviceGetCount(self) -> tuple:
        return self._ok(self.devices)

    def cuDeviceGet(self, index: int) -> tuple:
        return self._ok(index) if index < self.devices else (CUresult.CUDA_ERROR_INVALID_VALUE, None)

    def cuDeviceGetName(self, length: int, dev: int) -> tuple:
        return self._ok(b"Fake GPU".ljust(length, b"\0"))

    def cuDeviceGetAttribute(self, attribute: int, dev: int) -> tuple:
        values = {38: 1 << 20, 75: self.cc[0], 76: self.cc[1], 97: 227 * 1024}
        return self._ok(values[int(attribute)])

    def cuDevicePrimaryCtxRetain(self, dev: int) -> tuple:
        return self._ok(77)

    def cuDevicePrimaryCtxRelease(self, dev: int) -> tuple:
        return self._ok()

    def cuCtxSetCurrent(self, ctx: int) -> tuple:
        return self._ok()

    def cuGetErrorString(self, error: int) -> tuple:
        return self._ok(f"fake: {CUresult(int(error)).name.lower()}".encode())

    # -- streams, memory, events ------------------------------------------------------------------

    def cuStreamCreate(self, flags: int) -> tuple:
        return self._ok(self._new())

    def cuStreamDestroy(self, stream: int) -> tuple:
        return self._ok()

    def cuStreamSynchronize(self, stream: int) -> tuple:
        self.calls.append("cuStreamSynchronize")
        if int(stream) in self.capturing:
            return (CUresult.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,)
        return self._ok()

    def cuMemAlloc(self, nbytes: int) -> tuple:
        self.calls.append("cuMemAlloc")
        buf = ctypes.create_string_buffer(int(nbytes))
        self.memory[ctypes.addressof(buf)] = buf
        return self._ok(ctypes.addressof(buf))

    def cuMemFree(self, ptr: int) -> tuple:
        self.memory.pop(int(ptr), None)
        return self._ok()

    def cuMemcpyHtoDAsync(self, dst: int, src: int, nbytes: int, stream: int) -> tuple:
        self.calls.append("cuMemcpyHtoDAsync")
        target = self.region(int(dst), nbytes)
        ctypes.memmove(target.ctypes.data, int(src), nbytes)
        return self._ok()

    def cuMemcpyDtoHAsync(self, dst: int, src: int, nbytes: int, stream: int) -> tuple:
        self.calls.append("cuMemcpyDtoHAsync")
        source = self.region(int(src), nbytes)
        ctypes.memmove(int(dst), source.ctypes.data, nbytes)
        return self._ok()

    def cuMemsetD8Async(self, dst: int, value: int, nbytes: int, stream: int) -> tuple:
        self.calls.append("cuMemsetD8Async")
        ctypes.memset(self.region(int(dst), nbytes).ctypes.data, value, nbytes)
        return self._ok()

    def cuEventCreate(self, flags: int) -> tuple:
        handle = self._new()
        self.events[handle] = 0.0
        return self._ok(handle)

    def cuEventRecord(self, event: int, stream: int) -> tuple:
        self.events[int(event)] = self.clock
        return self._ok()

    def cuEventSynchronize(self, event: int) -> tuple:
        return self._ok()

    def cuEventElapsedTime(self, start: int, end: int) -> tuple:
        return self._ok(self.events[int(end)] - self.events[int(start)])

    def cuEventDestroy(self, event: int) -> tuple:
        return self._ok()

    # -- modules and kernels ----------------------------------------------------------------------

    def cuModuleLoadData(self, image: bytes) -> tuple:
        self.calls.append("cuModuleLoadData")
        data = bytes(image)
        if data.startswith(b"\x7fELF"):
            return (CUresult.CUDA_ERROR_INVALID_PTX, None)  # the tests run PTX only
        text = data.rstrip(b"\0").decode()
        entries = {
            name: len(re.findall(r"\.param\s+\.\w+", params))
            for name, params in re.findall(r"\.entry\s+(\w+)\s*\(([^)]*)\)", text)
        }
        if not entries:
            return (CUresult.CUDA_ERROR_INVALID_PTX, None)
        handle = self._new()
        self.modules[handle] = entries
        return self._ok(handle)

    def cuModuleUnload(self, module: int) -> tuple:
        return self._ok()

    def cuModuleGetFunction(self, module: int, name: bytes) -> tuple:
        entries = self.modules[int(module)]
        entry = name.decode()
        if entry not in entries:
            return (CUresult.CUDA_ERROR_NOT_FOUND, None)
        handle = self._new()
        self.functions[handle] = {"name": entry, "params": entries[entry]}
        return self._ok(handle)

    def cuFuncSetAttribute(self, function: int, attribute: int, value: int) -> tuple:
        return self._ok()

    def cuLaunchKernel(self, function, gx, gy, gz, bx, by, bz, shared, stream, params, extra) -> tuple:
        self.calls.append("cuLaunchKernel")
        fn = self.functions.get(int(function))
        if fn is None:
            return (CUresult.CUDA_ERROR_INVALID_HANDLE,)
        slots = (ctypes.c_void_p * max(fn["params"], 1)).from_address(int(params))
        pointers = [ctypes.c_uint64.from_address(slots[i]).value for i in range(fn["params"])]
        writes = self.writes.get(fn["name"])
        if writes is None:
            raise AssertionError(f"kernel {fn['name']}: register its output parameters in FakeDriver.writes")
        # Resolve the views now (the parameters are fixed at capture), compute at execution.
        sizes = self.param_bytes.get(fn["name"], [])
        reads = [p for i, p in enumerate(pointers) if i not in writes]
        outs = [p for i, p in enumerate(pointers) if i in writes]

        def run() -> None:
            value = mix([self.region(p, sizes[pointers.index(p)]) for p in reads])
            for p in outs:
                self.region(p, sizes[pointers.index(p)])[:] = value
            self.clock += 0.01

        self.enqueue(stream, fn["name"], run)
        return self._ok()

    # -- graphs -----------------------------------------------------------------------------------

    def cuStreamBeginCapture(self, stream: int, mode: int) -> tuple:
        self.calls.append("cuStreamBeginCapture")
        self.capturing[int(stream)] = _Graph()
        return self._ok()

    def cuStreamEndCapture(self, stream: int) -> tuple:
        self.calls.append("cuStreamEndCapture")
        graph = self.capturing.pop(int(stream))
        handle = self._new()
        self.graphs[handle] = graph
        return self._ok(handle)

    def cuGraphInstantiate(self, graph: int, flags: int) -> tuple:
        self.calls.append("cuGraphInstantiate")
        if self.fail_capture:
            return (CUresult.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, None)
        handle = self._new()
        self.graphs[handle] = self.graphs[int(graph)]
        return self._ok(handle)

    def cuGraphLaunch(self, graph_exec: int, stream: int) -> tuple:
        self.calls.append("cuGraphLaunch")
        for op in self.graphs[int(graph_exec)].ops:
            op()
        return self._ok()

    def cuGraphExecDestroy(self, graph_exec: int) -> tuple:
        return self._ok()

    def cuGraphDestroy(self, graph: int) -> tuple:
        return self._ok()
