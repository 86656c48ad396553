"""The per-call cost of compiled CPU code: what is built once (library primitives, the argument
array, the arena), the thread count of the parallel regions, and the per-kernel profile
(woodpecker.backend.profile). No timings are asserted: each test checks what is built or
emitted, and the numbers against ONNX Runtime (rtol 1e-4, atol 1e-5 x the largest magnitude).
"""

from __future__ import annotations

import threading

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from mlir import ir
from mlir.passmanager import PassManager
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker.backend.arena import Arena
from woodpecker.backend.cpu import CpuOptions
from woodpecker.backend.pipelines import cpu_lowering, cpu_pipeline
from woodpecker.compiler import CompileOptions
from woodpecker.models.builders import tiny_resnet
from woodpecker.runtime.cpu import library_calls, onednn
from woodpecker.runtime.cpu.memref import EntryCall

RTOL, ATOL = 1e-4, 1e-5
needs_onednn = pytest.mark.skipif(onednn.availability() is not None, reason=f"oneDNN: {onednn.availability()}")


def _compile(libraries: str = "none", schedules: dict | None = None, **cpu: object) -> woodpecker.CompiledModel:
    options = CompileOptions(
        libraries=libraries,
        select="heuristic",
        use_tuning_records=False,
        cpu=CpuOptions(schedules=schedules, **cpu),
    )
    return woodpecker.compile(tiny_resnet(), options=options)


def _feeds(model: woodpecker.CompiledModel, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(model.input_shapes[n]).astype(np.float32) for n in model.input_names}


def _check_against_ort(got: list[np.ndarray], feeds: dict[str, np.ndarray]) -> None:
    session = ort.InferenceSession(tiny_resnet().SerializeToString(), providers=["CPUExecutionProvider"])
    for g, e in zip(got, session.run(None, feeds), strict=True):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL * (float(np.max(np.abs(e))) or 1.0))


def test_runs_reuse_one_argument_array_and_arena(monkeypatch: pytest.MonkeyPatch) -> None:
    allocations = []
    original = Arena.allocate
    monkeypatch.setattr(Arena, "allocate", lambda self: allocations.append(self) or original(self))
    model = _compile()
    for seed in range(3):  # different inputs each run: the descriptors follow the arrays
        feeds = _feeds(model, seed)
        _check_against_ort(model.run(None, feeds), feeds)
    assert len(allocations) == 1
    call = model.executable._entry_call
    assert isinstance(call, EntryCall) and call.arena is not None
    first = model.run(None, _feeds(model, 0))
    second = model.run(None, _feeds(model, 0))
    assert first[0] is not second[0]  # each run returns fresh output arrays
    np.testing.assert_array_equal(first[0], second[0])


def test_a_call_while_another_runs_gets_its_own_arena(monkeypatch: pytest.MonkeyPatch) -> None:
    allocations = []
    original = Arena.allocate
    monkeypatch.setattr(Arena, "allocate", lambda self: allocations.append(self) or original(self))
    model = _compile()
    feeds = _feeds(model, 1)
    model.run(None, feeds)  # the shared arguments and arena exist
    assert len(allocations) == 1
    call = model.executable._entry_call
    assert call is not None
    held = call._lock
    assert held.acquire(blocking=False)  # as if another thread were inside the call
    try:
        got = model.run(None, feeds)
    finally:
        held.release()
    assert len(allocations) == 2  # the concurrent call allocated an arena of its own
    _check_against_ort(got, feeds)
    results: list[list[np.ndarray]] = []
    threads = [threading.Thread(target=lambda: results.append(model.run(None, feeds))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got in results:
        _check_against_ort(got, feeds)


@needs_onednn
def test_library_primitives_are_built_once_per_kernel_not_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    builds = []
    original = library_calls.LibraryCallSpec.build

    def build(self: library_calls.LibraryCallSpec, *args: object, **kwargs: object) -> object:
        builds.append(self.kernel_name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(library_calls.LibraryCallSpec, "build", build)
    model = _compile("onednn", {"conv": {"impl": "onednn"}})
    kernels = model.executable.libraries
    assert kernels and sorted(builds) == sorted(k.kernel_name for k in kernels)
    tables = [list(library_calls.handles(k.library, k.keep)) for k in kernels]
    for seed in range(3):
        feeds = _feeds(model, seed)
        _check_against_ort(model.run(None, feeds), feeds)
    assert sorted(builds) == sorted(k.kernel_name for k in kernels)  # no primitive built by a run
    assert [list(library_calls.handles(k.library, k.keep)) for k in kernels] == tables


def test_parallel_regions_are_compiled_for_the_thread_count() -> None:
    assert "convert-scf-to-openmp{num-threads=3}" in cpu_pipeline(True, 3)
    assert "num-threads" not in cpu_pipeline(True) and "openmp" not in cpu_pipeline(False, 3)
    text = """
    func.func @f(%a: memref<64xf32>) {
      %c0 = arith.constant 0 : index
      %c64 = arith.constant 64 : index
      %c1 = arith.constant 1 : index
      %v = arith.constant 1.0 : f32
      scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
        memref.store %v, %a[%i] : memref<64xf32>
      }
      return
    }"""
    with ir.Context() as context:
        module = ir.Module.parse(text)
        PassManager.parse(cpu_lowering(True, 3), context=context).run(module.operation)
        lowered = str(module)
    assert "omp.parallel num_threads(" in lowered


def test_the_profile_times_every_step_of_the_code_and_names_its_kernel() -> None:
    model = _compile(profile=True)
    plain = _compile()
    feeds = _feeds(model, 2)
    got = model.run(None, feeds)
    _check_against_ort(got, feeds)
    for g, e in zip(got, plain.run(None, feeds), strict=True):  # the stamps change no numbers
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)
    profile = model.executable.profile
    assert profile is not None and plain.executable.profile is None
    stamps = profile.stamps_ns()
    assert len(stamps) == len(profile.steps) + 1 and np.all(np.diff(stamps) >= 0) and stamps[0] > 0
    durations = profile.durations()
    assert durations.sum() == pytest.approx((stamps[-1] - stamps[0]) * 1e-9)
    names = set(model.executable.kernel_names())
    timed = {step.kernel for step in profile.steps}
    assert timed <= names and len(timed) >= len(names) - 1  # every kernel has a step (a copy may be folded)
    assert {step.step for step in profile.steps} <= {"loops", "copy", "library", "inline"}
    convs = [info for info in profile.kernels.values() if info.filter_shape]
    # NCHW filters [F, C, kh, kw]; blocked ones packed [F/b, C/b, kh, kw, b, b] (the default layout)
    assert convs and all(len(info.filter_shape) == (6 if "blocked" in info.name else 4) for info in convs)
    model.run(None, _feeds(model, 3))
    assert profile.stamps_ns()[0] > stamps[-1]  # the stamps are the last call's


def _strided_pointwise_conv() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array((rng.standard_normal((32, 16, 1, 1)) * 0.3).astype(np.float32), "w")
    b = numpy_helper.from_array((rng.standard_normal(32) * 0.1).astype(np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], strides=[2, 2], kernel_shape=[1, 1]),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 15, 15])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 8, 8])],
        [w, b],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@needs_onednn
def test_a_strided_pointwise_conv_library_call_reads_its_input_without_a_strided_copy() -> None:
    model = _strided_pointwise_conv()
    options = CompileOptions(
        libraries="onednn",
        select="heuristic",
        use_tuning_records=False,
        layout="blocked",
        cpu=CpuOptions(schedules={"blocked_conv": {"impl": "onednn"}}),
    )
    compiled = woodpecker.compile(model, options=options)
    (kernel,) = compiled.executable.libraries
    assert kernel.spec.op == "blocked_conv" and kernel.spec.params["strides"] == [2, 2]
    assert kernel.spec.params["src_shape"][2:] == [15, 15]  # the unstrided input, not a subsampled copy
    feeds = {"x": np.random.default_rng(1).standard_normal((1, 16, 15, 15)).astype(np.float32)}
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    got = compiled.run(None, feeds)[0]
    np.testing.assert_allclose(got, expected[0], rtol=RTOL, atol=ATOL * np.abs(expected[0]).max())
