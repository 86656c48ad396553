"""Every CPU schedule template has a valid default for every kernel it claims, whatever the host's
vector width: a property test over random convolution, matmul and pooling shapes, for AVX2
(8 f32 lanes, 16 vector registers) and AVX-512 (16 lanes, 32 registers) machines, and for
SSE-only hosts (4 lanes, 16 registers) in the full convolution sweep.

A missing default used to be a bare `ValueError: max() arg is an empty sequence` in the middle
of a compile (the squeeze-excitation convolutions of RegNet with 22/26/110 input channels; a
3x3 stride-2 convolution 128 -> 160 on an AVX-512 host).
"""

from __future__ import annotations

import numpy as np
import onnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlir import ir
from onnx import TensorProto, helper, numpy_helper

from woodpecker.backend.cpu import CpuOptions
from woodpecker.frontend import lower_model
from woodpecker.schedule.kernels import find_kernels
from woodpecker.schedule.target import CpuMachine
from woodpecker.schedule.templates import schedule_space

MACHINES = {"avx2": CpuMachine(vector_lanes=8, registers=16, threads=2),
            "avx512": CpuMachine(vector_lanes=16, registers=32, threads=2)}
ALL_WIDTHS = {"sse": CpuMachine(vector_lanes=4, registers=16, threads=2), **MACHINES}


def _model(node: onnx.NodeProto, x_shape, y_shape, inits) -> onnx.ModelProto:
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _conv(c: int, f: int, hw: int, k: int, stride: int, depthwise: bool, groups: int = 1) -> onnx.ModelProto:
    groups = c if depthwise else groups
    f = c if depthwise else f
    w = numpy_helper.from_array(np.ones((f, c // groups, k, k), np.float32), "w")
    pad = k // 2
    out = (hw + 2 * pad - k) // stride + 1
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[k, k], strides=[stride, stride],
                            pads=[pad] * 4, group=groups)
    return _model(node, (1, c, hw, hw), (1, f, out, out), [w])


def _check_defaults(model: onnx.ModelProto, machines: dict[str, CpuMachine] = MACHINES) -> None:
    """Every kernel's default on every machine, in NCHW and in the machine's blocked layout
    (blocks of its vector width, every convolution converted)."""
    lowered = lower_model(model, opt_level=2, layout="nchw")
    with lowered.imported.context, ir.Location.unknown():
        for kernel in find_kernels(lowered.module):
            for name, machine in machines.items():
                template, space = schedule_space(kernel, machine)  # raised ValueError before the fix
                problems = space.violations(space.default)
                assert problems == [], f"{kernel.name} ({template.name}, {name}): {problems}"
    for name, machine in machines.items():
        blocked = lower_model(model, opt_level=2, layout=f"blocked{machine.vector_lanes}")
        with blocked.imported.context, ir.Location.unknown():
            for kernel in find_kernels(blocked.module):
                template, space = schedule_space(kernel, machine)
                problems = space.violations(space.default)
                assert problems == [], f"{kernel.name} ({template.name}, {name}, blocked): {problems}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    c=st.sampled_from([1, 3, 4, 6, 8, 12, 16, 22, 26, 32, 48, 64, 110, 128]),
    f=st.sampled_from([1, 2, 8, 10, 16, 24, 40, 64, 96, 110, 160, 192]),
    hw=st.sampled_from([1, 3, 5, 7, 14, 17, 28]),
    k=st.sampled_from([1, 3, 5]),
    stride=st.sampled_from([1, 2]),
    depthwise=st.booleans(),
)
def test_every_convolution_has_a_valid_default(c: int, f: int, hw: int, k: int, stride: int, depthwise: bool) -> None:
    _check_defaults(_conv(c, f, hw, k, stride, depthwise))


@st.composite
def _conv_shapes(draw: st.DrawFn) -> tuple[int, int, int, int, int, int]:
    """(c, f, hw, k, stride, groups): channels 1..300, kernels 1/3/5/7, strides 1/2, and groups
    1, depthwise (groups = c = f) or a common divisor of both channel counts."""
    c = draw(st.integers(1, 300))
    kind = draw(st.sampled_from(["dense", "depthwise", "grouped"]))
    if kind == "depthwise":
        f, groups = c, c
    else:
        f = draw(st.integers(1, 300))
        common = [g for g in range(2, min(c, f) + 1) if c % g == 0 and f % g == 0]
        groups = draw(st.sampled_from(common)) if kind == "grouped" and common else 1
    k = draw(st.sampled_from([1, 3, 5, 7]))
    hw = draw(st.integers(max(1, k // 2), 16))
    return c, f, hw, k, draw(st.sampled_from([1, 2])), groups


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=_conv_shapes())
def test_every_convolution_has_a_valid_default_at_every_vector_width(
    shape: tuple[int, int, int, int, int, int],
) -> None:
    """4, 8 and 16 f32 lanes: a default exists (no ValueError from an empty domain) and it
    satisfies every constraint of its space."""
    c, f, hw, k, stride, groups = shape
    _check_defaults(_conv(c, f, hw, k, stride, False, groups), ALL_WIDTHS)


def test_the_shapes_that_crashed_have_defaults() -> None:
    _check_defaults(_conv(22, 8, 1, 1, 1, False))  # squeeze-excitation: 22 input channels
    _check_defaults(_conv(110, 26, 1, 1, 1, False))
    _check_defaults(_conv(128, 160, 28, 3, 2, False))  # strided, 160 output channels (AVX-512)
    _check_defaults(_conv(128, 192, 28, 3, 2, False))
    for c in (22, 26, 110):  # RegNet-Y 400MF's squeeze-excitation reductions, at every width
        _check_defaults(_conv(c, 8, 1, 1, 1, False), ALL_WIDTHS)
    for f in (160, 192):
        _check_defaults(_conv(128, f, 14, 3, 2, False), ALL_WIDTHS)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.sampled_from([1, 2, 3, 7, 16, 50, 128]), k=st.sampled_from([1, 5, 16, 22, 100, 768]),
       n=st.sampled_from([1, 3, 10, 16, 24, 1000]))
def test_every_matmul_has_a_valid_default(m: int, k: int, n: int) -> None:
    w = numpy_helper.from_array(np.ones((k, n), np.float32), "w")
    _check_defaults(_model(helper.make_node("MatMul", ["x", "w"], ["y"]), (m, k), (m, n), [w]), ALL_WIDTHS)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=st.sampled_from([1, 3, 16, 22, 64]), hw=st.sampled_from([2, 7, 9, 32]), kind=st.sampled_from(
    ["MaxPool", "AveragePool", "GlobalAveragePool"]))
def test_every_pooling_has_a_valid_default(c: int, hw: int, kind: str) -> None:
    if kind == "GlobalAveragePool":
        node, out = helper.make_node(kind, ["x"], ["y"]), (1, c, 1, 1)
    else:
        node = helper.make_node(kind, ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
        out = (1, c, hw // 2, hw // 2)
    _check_defaults(_model(node, (1, c, hw, hw), out, []), ALL_WIDTHS)


def test_the_shapes_that_crashed_compile_and_match_onnxruntime() -> None:
    """The squeeze-excitation and strided 128 -> 160 convolutions, compiled for this host."""
    import onnxruntime as ort

    import woodpecker

    rng = np.random.default_rng(0)
    for c, f, hw, k, stride in ((22, 8, 1, 1, 1), (110, 26, 1, 1, 1), (128, 160, 28, 3, 2)):
        model = _conv(c, f, hw, k, stride, False)
        w = rng.standard_normal((f, c, k, k)).astype(np.float32) * 0.1
        model.graph.initializer[0].CopyFrom(numpy_helper.from_array(w, "w"))
        x = rng.standard_normal((1, c, hw, hw)).astype(np.float32)
        compiled = woodpecker.compile(model, options=woodpecker.CompileOptions(libraries="none"))
        (got,) = compiled.run(None, {"x": x})
        (expected,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"x": x}
        )
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))


def _row_mean(shape: tuple[int, ...]) -> onnx.ModelProto:
    axes = numpy_helper.from_array(np.array([-1], np.int64), "axes")
    node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=1)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (*shape[:-1], 1))], [axes],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_every_reduction_config_schedules_with_uneven_chunks() -> None:
    """ConvNeXt-Tiny's LayerNorm mean over 768 channels at 7x7 (issue #16): `chunks=2` splits the
    7 rows into pieces of 4 and 3, and the fill fused into them had a dynamic shape that
    `vector=16` tried to vectorize ("Attempted to vectorize, but failed"). Every configuration
    of every kernel must schedule, on AVX2 and AVX-512 machines."""
    from woodpecker.schedule.apply import apply_schedules

    model = _row_mean((1, 7, 7, 768))
    for name, machine in MACHINES.items():
        lowered = lower_model(model, opt_level=2)
        with lowered.imported.context, ir.Location.unknown():
            spaces = [(k.name, schedule_space(k, machine)[1]) for k in find_kernels(lowered.module)]
        for kernel, space in spaces:
            assert any(c["chunks"] == 2 and c["vector"] for c in space.configs()), f"{kernel}: {space.default}"
            for config in space.configs():
                fresh = lower_model(model, opt_level=2)
                with fresh.imported.context:
                    apply_schedules(fresh.module, {kernel: config}, machine)  # raised CompilationError
                    assert fresh.module.operation.verify(), f"{kernel} {config} ({name})"


def test_uneven_chunked_reduction_matches_numpy() -> None:
    """The same kernel compiled for this host with two chunks, against numpy float64
    (rel L2 <= 1e-5)."""
    import woodpecker

    shape = (1, 7, 7, 768)
    x = np.random.default_rng(16).standard_normal(shape).astype(np.float32)
    options = woodpecker.CompileOptions(cpu=CpuOptions(schedules={"reduction": {"chunks": 2}}))
    (got,) = woodpecker.compile(_row_mean(shape), options=options).run(None, {"x": x})
    expected = x.astype(np.float64).mean(axis=-1, keepdims=True)
    assert np.linalg.norm(got - expected) <= 1e-5 * np.linalg.norm(expected)


def test_the_default_matmul_register_tile_rows_are_a_power_of_two_vectors() -> None:
    """BERT's projection 128x768 @ 768x768: the 4 x 96 tile (6 vectors a row) that used to be the
    AVX-512 default ran about 100x slower than 8 x 32 (bench/bench_matmuls.py)."""
    w = numpy_helper.from_array(np.ones((768, 768), np.float32), "w")
    lowered = lower_model(_model(helper.make_node("MatMul", ["x", "w"], ["y"]), (128, 768), (128, 768), [w]))
    with lowered.imported.context, ir.Location.unknown():
        (kernel,) = [k for k in find_kernels(lowered.module) if k.kind == "matmul"]
        for name, machine in MACHINES.items():
            _, space = schedule_space(kernel, machine)
            rows = space.default["reg_n"] // machine.vector_lanes
            assert rows in (1, 2, 4, 8), f"{name}: {space.default}"
