"""Running an `InferencePlan` on an NVIDIA GPU with cuda-python: one arena, one stream, a CUDA graph.

`PlanExecutor(plan, weight_block)`:

1. retains the device's primary context and creates one stream;
2. allocates the arena (`plan.arena_bytes`: every input, output and intermediate at its planned
   offset) and the weight block, and uploads the weights once;
3. loads each step's generated kernels (their cubins when they run on the device, else the PTX,
   JIT-compiled by the driver) with their parameters fixed to arena addresses;
4. builds each library step (`woodpecker.runtime.cuda.libraries`: a cuDNN graph, a cuBLASLt matmul) on
   the same stream and binds it to its arena addresses and a shared workspace. Where the library
   has no engine for the call with its fused epilogue, the plain call runs followed by the step's
   epilogue kernel, in place (`split` says why); a library step the host cannot run at all
   (package missing, no engine) runs its generated kernels instead (`fallbacks` says why);
5. captures the whole step sequence into a CUDA graph (`cuStreamBeginCapture` ..
   `cuGraphInstantiate`) on the first run, and replays it (`cuGraphLaunch`) on every run; if
   capturing fails, the steps are launched one by one and `graph_error` says why.

`run(inputs)` copies the inputs into the arena, launches the graph, copies the outputs back:
the only host<->device copies. `time()` measures replays with CUDA events (L2 flushed before
each repeat), as the tuning runners do. `launches` counts what was enqueued (bookkeeping the
tests check without a GPU).

Errors are `CudaError`s (woodpecker.runtime.cuda.launch) naming the step and the CUDA call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from woodpecker.runtime.cuda.launch import (
    CudaError,
    DeviceResource,
    LoadedKernel,
    check,
    cuda_status,
    device_info,
    driver,
    load_kernel,
    release,
)
from woodpecker.runtime.cuda.libraries import LibraryCall, LibraryContext, LibraryUnavailable, make_call
from woodpecker.runtime.cuda.plan import InferencePlan, KernelLaunch, PlanError, Step
from woodpecker.runtime.memory import align


class CudaUnavailable(CudaError):
    """No usable CUDA device here (no cuda-python, no driver, no device)."""


@dataclass
class _KernelItem:
    step: str
    kernel: LoadedKernel
    entry: str = ""


@dataclass
class _LibraryItem:
    step: str
    call: LibraryCall
    operands: dict[str, str]  # role -> plan buffer
    epilogue: _KernelItem | None = None  # run after a plain call when the fused one is not supported


@dataclass
class Launches:
    """What the executor enqueued: counts per kind (for tests and reports)."""

    kernels: int = 0
    library_calls: int = 0
    graph_launches: int = 0
    uploads: int = 0  # host -> device copies (weights at set-up, inputs per run)
    downloads: int = 0  # device -> host copies (outputs per run)


class PlanExecutor(DeviceResource):
    """Runs `plan` (with its weight block) on device `device`; see the module docstring."""

    def __init__(
        self,
        plan: InferencePlan,
        weight_block: np.ndarray,
        device: int = 0,
        *,
        use_graph: bool = True,
        use_libraries: bool = True,
        prefer_cubin: bool = True,
    ):
        plan.validate()
        reason = cuda_status(device)
        if reason is not None:
            raise CudaUnavailable("no CUDA device", "", f"running a CUDA plan needs an NVIDIA GPU: {reason}")
        self.plan = plan
        self.cu = driver()
        self.info = device_info(device)
        self.use_graph = use_graph
        self.fallbacks: dict[str, str] = {}  # step -> why its library call is not used
        self.split: dict[str, str] = {}  # step -> why its epilogue runs as a kernel after the call
        self.graph_error: str | None = None
        self.launches = Launches()
        self._device = check(self.cu.cuDeviceGet(device), "cuDeviceGet")
        self._context = None
        self._stream = None
        self._allocations: list[Any] = []
        self._modules: list[Any] = []
        self._events: list[Any] = []
        self._graph = None
        self._graph_exec = None
        self._flush: tuple[int, int] | None = None
        self._libraries: LibraryContext | None = None
        self.items: list[_KernelItem | _LibraryItem] = []
        try:
            self._context = check(self.cu.cuDevicePrimaryCtxRetain(self._device), "cuDevicePrimaryCtxRetain")
            self._make_current()
            self._stream = check(self.cu.cuStreamCreate(0), "cuStreamCreate")
            self.arena = self._alloc(plan.arena_bytes, "the activation arena")
            self.weights = self._alloc(plan.weight_bytes, "the weight block")
            self._upload_weights(weight_block)
            calls = self._build(use_libraries, prefer_cubin)
            self._bind(calls, prefer_cubin)
        except BaseException:
            self.close()
            raise

    # -- set-up ----------------------------------------------------------------------------------

    def _make_current(self) -> None:
        check(self.cu.cuCtxSetCurrent(self._context), "cuCtxSetCurrent")

    def _alloc(self, nbytes: int, what: str) -> int:
        ptr = check(self.cu.cuMemAlloc(align(nbytes)), f"cuMemAlloc({nbytes} bytes) for {what}")
        self._allocations.append(ptr)
        return int(ptr)

    def address(self, buffer: str) -> int:
        """The device address of a plan buffer."""
        b = self.plan.buffers[buffer]
        return (self.weights if b.region == "weights" else self.arena) + b.offset

    def _upload_weights(self, block: np.ndarray) -> None:
        data = np.ascontiguousarray(block, dtype=np.float32).reshape(-1)
        if data.nbytes < self.plan.weight_bytes:
            raise PlanError(f"the weight block has {data.nbytes} bytes, the plan needs {self.plan.weight_bytes}")
        if self.plan.weight_bytes:
            check(
                self.cu.cuMemcpyHtoDAsync(self.weights, data.ctypes.data, self.plan.weight_bytes, self._stream),
                "upload of the weights",
            )
            self.launches.uploads += 1
        check(self.cu.cuStreamSynchronize(self._stream), "upload of the weights")

    def _build(self, use_libraries: bool, prefer_cubin: bool) -> list[LibraryCall]:
        libraries: dict[str, _LibraryItem] = {}
        for step in self.plan.steps:
            if step.library is None:
                continue
            if not use_libraries:
                self.fallbacks[step.name] = "library calls are turned off (use_libraries=False)"
                continue
            item = self._library_item(step, prefer_cubin)
            if item is not None:
                libraries[step.name] = item
        self._assemble(libraries, prefer_cubin)
        return [item.call for item in libraries.values()]

    def _assemble(self, libraries: dict[str, _LibraryItem], prefer_cubin: bool) -> None:
        """`items` in step order: library calls where they run, else the generated kernels."""
        loaded = {(item.step, item.entry): item for item in self.items if isinstance(item, _KernelItem)}
        self.items = []
        for step in self.plan.steps:
            if step.name in libraries:
                self.items.append(libraries[step.name])
                continue
            for kernel in step.kernels:
                item = loaded.get((step.name, kernel.entry))
                self.items.append(item or self._load_kernel(step, kernel, prefer_cubin))

    def _library_item(self, step: Step, prefer_cubin: bool) -> _LibraryItem | None:
        """The step's library call: fused with its epilogue; else the plain call followed by the
        epilogue kernel; else None (the generated kernel runs, `fallbacks` says why)."""
        library = step.library
        assert library is not None
        if self._libraries is None:
            self._libraries = LibraryContext(int(self._stream))
        try:
            call = make_call(library.library, library.spec, step.name, self._libraries)
            return _LibraryItem(step.name, call, dict(library.operands))
        except LibraryUnavailable as err:
            why = str(err)
        if library.epilogue is not None:
            spec, operands = library.plain()
            try:
                call = make_call(library.library, spec, step.name, self._libraries)
            except LibraryUnavailable as err:
                why += f"; without its epilogue: {err}"
            else:
                self.split[step.name] = f"{why}; runs the plain call and then its epilogue kernel"
                epilogue = self._load_kernel(step, library.epilogue, prefer_cubin)
                return _LibraryItem(step.name, call, operands, epilogue)
        self.fallbacks[step.name] = why
        return None

    def _bind(self, calls: Sequence[LibraryCall], prefer_cubin: bool) -> None:
        need = max((c.workspace_bytes for c in calls), default=0)
        workspace = self._alloc(need, "the library workspace") if need else 0
        bound: dict[str, _LibraryItem] = {}
        for item in [i for i in self.items if isinstance(i, _LibraryItem)]:
            try:
                item.call.bind({role: self.address(b) for role, b in item.operands.items()}, workspace)
                bound[item.step] = item
            except LibraryUnavailable as err:  # e.g. an operand alignment the library cannot take
                self.fallbacks[item.step] = str(err)
                self.split.pop(item.step, None)
                item.call.close()
        if len(bound) != sum(isinstance(i, _LibraryItem) for i in self.items):
            self._assemble(bound, prefer_cubin)  # the generated kernels instead

    def _load_kernel(self, step: Step, kernel: KernelLaunch, prefer_cubin: bool) -> _KernelItem:
        launch = {
            "entry": kernel.entry,
            "grid": kernel.grid,
            "block": kernel.block,
            "shared_bytes": kernel.shared_bytes,
            "args": [{"shape": list(shape)} for _, shape, _ in kernel.args],
        }
        pointers = [self.address(buffer) for buffer, _, _ in kernel.args]
        module, loaded = load_kernel(
            self.cu, self.info, self.plan.arch, launch, kernel.ptx.encode(), kernel.cubin, pointers,
            self.plan.calling_convention, f"step {step.name} (kernel {kernel.entry})", prefer_cubin,
        )
        self._modules.append(module)
        return _KernelItem(step.name, loaded, kernel.entry)

    # -- running ---------------------------------------------------------------------------------

    @property
    def captured(self) -> bool:
        return self._graph_exec is not None

    def _launch_kernel(self, item: _KernelItem) -> None:
        item.kernel.enqueue(self.cu, self._stream, f"step {item.step}")
        self.launches.kernels += 1

    def enqueue(self) -> None:
        """Enqueues every step in order on the stream (no graph)."""
        for item in self.items:
            if isinstance(item, _LibraryItem):
                item.call.enqueue()
                self.launches.library_calls += 1
                if item.epilogue is not None:
                    self._launch_kernel(item.epilogue)
            else:
                self._launch_kernel(item)

    def _capture(self) -> None:
        """Captures `enqueue` into a CUDA graph; on failure keeps launching step by step."""
        cu = self.cu
        mode = cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
        before = (self.launches.kernels, self.launches.library_calls)
        try:
            check(cu.cuStreamBeginCapture(self._stream, mode), "cuStreamBeginCapture")
            try:
                self.enqueue()
            finally:  # end the capture even when a step failed to enqueue (close() frees the graph)
                self._graph = check(cu.cuStreamEndCapture(self._stream), "cuStreamEndCapture")
            self._graph_exec = check(cu.cuGraphInstantiate(self._graph, 0), "cuGraphInstantiate")
        except (CudaError, RuntimeError) as err:
            self.graph_error = f"the plan runs without a CUDA graph: capturing it failed ({err})"
            self.use_graph = False
        finally:
            # Capturing records the steps; it launches nothing.
            self.launches.kernels, self.launches.library_calls = before

    def launch(self) -> None:
        """Runs every step once on the stream: one graph launch, or the steps one by one."""
        if self.use_graph and self._graph_exec is None and self.graph_error is None:
            self._capture()
        if self._graph_exec is not None and self.use_graph:
            check(self.cu.cuGraphLaunch(self._graph_exec, self._stream), "cuGraphLaunch")
            self.launches.graph_launches += 1
        else:
            self.enqueue()

    def set_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
        shapes = self.plan.input_shapes()
        for name, buffer in self.plan.inputs:
            if name not in inputs:
                raise ValueError(f"missing input '{name}'; inputs are {self.plan.input_names}")
            array = np.ascontiguousarray(inputs[name], dtype=np.float32)
            if array.shape != shapes[name]:
                raise ValueError(f"input '{name}' has shape {array.shape}, expected {shapes[name]}")
            check(
                self.cu.cuMemcpyHtoDAsync(self.address(buffer), array.ctypes.data, array.nbytes, self._stream),
                f"upload of input '{name}'",
            )
            self.launches.uploads += 1
            # pageable memory: the copy is staged before the call returns, `array` may go
        check(self.cu.cuStreamSynchronize(self._stream), "upload of the inputs")

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the plan on `inputs` (by graph input name); returns every output by name."""
        self._make_current()
        self.set_inputs(inputs)
        self.launch()
        outputs = {}
        shapes = self.plan.output_shapes()
        for name, buffer in self.plan.outputs:
            host = np.empty(shapes[name], dtype=np.float32)
            check(
                self.cu.cuMemcpyDtoHAsync(host.ctypes.data, self.address(buffer), host.nbytes, self._stream),
                f"download of output '{name}'",
            )
            self.launches.downloads += 1
            outputs[name] = host
        check(self.cu.cuStreamSynchronize(self._stream), f"running the plan ({len(self.items)} steps)")
        return outputs

    def _event(self) -> Any:
        event = check(self.cu.cuEventCreate(0), "cuEventCreate")
        self._events.append(event)
        return event

    def time(self, repeat: int = 20, warmup: int = 5, flush_l2: bool = True) -> list[float]:
        """Seconds per run (graph replay, or the steps one by one), one value per repeat, with
        CUDA events after `warmup` runs; with `flush_l2` a buffer twice the L2 size is written
        before each repeat, outside the timed region."""
        if repeat < 1 or warmup < 0:
            raise ValueError(f"repeat ({repeat}) must be positive and warmup ({warmup}) >= 0")
        self._make_current()
        for _ in range(warmup):
            self.launch()
        check(self.cu.cuStreamSynchronize(self._stream), "warm-up runs")
        if flush_l2 and self._flush is None:
            nbytes = max(2 * self.info.l2_bytes, 1 << 20)
            self._flush = (self._alloc(nbytes, "the L2 flush buffer"), nbytes)
        start, end = self._event(), self._event()
        times = []
        for r in range(repeat):
            if flush_l2 and self._flush is not None:
                check(self.cu.cuMemsetD8Async(self._flush[0], r & 0xFF, self._flush[1], self._stream), "L2 flush")
            check(self.cu.cuEventRecord(start, self._stream), "cuEventRecord")
            self.launch()
            check(self.cu.cuEventRecord(end, self._stream), "cuEventRecord")
            check(self.cu.cuEventSynchronize(end), "timed run")
            times.append(float(check(self.cu.cuEventElapsedTime(start, end), "cuEventElapsedTime")) / 1000.0)
        return times

    def describe(self) -> dict[str, Any]:
        """What runs: per step its implementation (after fallbacks), and how the plan launches."""
        impls: dict[str, str] = {}
        for item in self.items:
            if isinstance(item, _LibraryItem):
                impls[item.step] = item.call.library + (" + generated epilogue" if item.epilogue else "")
            elif item.step in impls:
                impls[item.step] += f", {item.kernel.source}"
            else:
                impls[item.step] = f"generated ({item.kernel.source}"
        impls = {step: text + ")" if text.startswith("generated (") else text for step, text in impls.items()}
        return {
            "device": self.info.name,
            "arch": self.info.arch,
            "graph": self.captured and self.use_graph,
            "graph_error": self.graph_error,
            "arena_bytes": self.plan.arena_bytes,
            "weight_bytes": self.plan.weight_bytes,
            "steps": impls,
            "fallbacks": dict(self.fallbacks),
            "split_epilogues": dict(self.split),
        }

    # -- tear-down -------------------------------------------------------------------------------

    def close(self) -> None:
        """Frees everything; errors after a sticky fault are ignored (the context is gone)."""
        cu = getattr(self, "cu", None)
        if cu is None or getattr(self, "_context", None) is None:
            return
        for item in self.items:
            if isinstance(item, _LibraryItem):
                with contextlib.suppress(Exception):
                    item.call.close()
        if self._libraries is not None:
            with contextlib.suppress(Exception):
                self._libraries.close()
        graphs: list[tuple[Any, Any]] = []
        if self._graph_exec is not None:
            graphs.append((cu.cuGraphExecDestroy, self._graph_exec))
        if self._graph is not None:
            graphs.append((cu.cuGraphDestroy, self._graph))
        release(cu, self._device, self._events, self._allocations, self._modules, self._stream, graphs)
        self._graph = self._graph_exec = None
        self._events, self._allocations, self._modules, self.items = [], [], [], []
        self._stream = self._context = self._libraries = None
