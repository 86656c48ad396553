"""Library kernels inside compiled models (woodpecker.libs) and the per-kernel selection
(woodpecker.select): oneDNN and BLAS calls replace kernels, their epilogues become post-ops,
and the choice is measured, recorded, or made by the stated heuristic.

Numerical checks compare with ONNX Runtime at rtol 1e-4 and atol 1e-5 x the reference's
largest magnitude (float32 on both sides; oneDNN and our kernels sum in different orders).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker.backend.cpu import CpuOptions
from woodpecker.compiler import CompileOptions
from woodpecker.frontend import lower_model
from woodpecker.kernels.decision import Library
from woodpecker.measure.recorded import RecordedRunner
from woodpecker.models.builders import small_mlp, tiny_resnet
from woodpecker.runtime.cpu import blas, onednn
from woodpecker.schedule.target import CpuMachine
from woodpecker.schedule.tasks import cpu_tasks
from woodpecker.select.candidates import parse_libraries
from woodpecker.select.selection import SelectOptions, select_implementations
from woodpecker.targets import cpu as cpu_target_module
from woodpecker.targets.cpu import CpuTarget

pytestmark = [
    pytest.mark.skipif(onednn.availability() is not None, reason=f"oneDNN unavailable: {onednn.availability()}"),
    pytest.mark.skipif(blas.availability() is not None, reason=f"BLAS unavailable: {blas.availability()}"),
]

RTOL, ATOL = 1e-4, 1e-5


def _model(nodes, inputs, outputs, initializers, check: bool = True) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if check:
        onnx.checker.check_model(model)
    return model


def _vi(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, None if shape is None else list(shape))


def conv_model(epilogue: str, *, cin=8, cout=8, hw=10, k=3, stride=1, pads=(1, 1, 1, 1), dilation=1, groups=1,
               seed=0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array((rng.standard_normal((cout, cin // groups, k, k)) * 0.3).astype(np.float32), "w")
    b = numpy_helper.from_array((rng.standard_normal(cout) * 0.1).astype(np.float32), "b")
    scale = numpy_helper.from_array((rng.standard_normal((1, cout, 1, 1))).astype(np.float32), "scale")
    inits = [w, b, scale]
    conv = helper.make_node("Conv", ["x", "w", "b"], ["c"], strides=[stride] * 2, pads=list(pads),
                            dilations=[dilation] * 2, group=groups, kernel_shape=[k, k])
    nodes = [conv]
    out = "c"

    def add(op, inputs, **attrs):
        nonlocal out
        name = f"t{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [name], **attrs))
        out = name

    if epilogue == "relu":
        add("Relu", [out])
    elif epilogue == "clip6":
        inits += [numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
                  numpy_helper.from_array(np.array(6.0, np.float32), "hi")]
        add("Clip", [out, "lo", "hi"])
    elif epilogue == "sigmoid":
        add("Sigmoid", [out])
    elif epilogue == "tanh":
        add("Tanh", [out])
    elif epilogue == "leaky":
        add("LeakyRelu", [out], alpha=0.1)
    elif epilogue == "silu":
        sig = f"t{len(nodes)}"
        nodes.append(helper.make_node("Sigmoid", [out], [sig]))
        add("Mul", [out, sig])
    elif epilogue == "residual_relu":
        add("Add", [out, "x"])
        add("Relu", [out])
    elif epilogue == "mul_channel":
        add("Mul", [out, "scale"])
    elif epilogue == "rsub":
        add("Sub", ["scale", out])
    elif epilogue != "none":
        raise ValueError(epilogue)
    nodes[-1].output[0] = "y"
    h_out = (hw + pads[0] + pads[2] - dilation * (k - 1) - 1) // stride + 1
    w_out = (hw + pads[1] + pads[3] - dilation * (k - 1) - 1) // stride + 1
    return _model(nodes, [_vi("x", (1, cin, hw, hw))], [_vi("y", (1, cout, h_out, w_out))], inits)


def _check(model: onnx.ModelProto, libraries: str, expect_library_kernels: int | None, seed: int = 0,
           schedules: dict | None = None, layout: str = "nchw"):
    # NCHW unless asked: most of these tests are about the NCHW kernels and their selection.
    options = CompileOptions(libraries=libraries, select="heuristic", use_tuning_records=False,
                             cpu=CpuOptions(schedules=schedules), layout=layout)
    compiled = woodpecker.compile(model, options=options)
    rng = np.random.default_rng(seed)
    feeds = {name: rng.standard_normal(compiled.input_shapes[name]).astype(np.float32)
             for name in compiled.input_names}
    got = compiled.run(None, feeds)
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    for g, e in zip(got, expected, strict=True):
        scale = float(np.max(np.abs(e))) or 1.0
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL * scale)
    if expect_library_kernels is not None:
        assert compiled.stats.library_kernels == expect_library_kernels
    return compiled


@pytest.mark.parametrize(
    "epilogue", ["none", "relu", "clip6", "sigmoid", "tanh", "leaky", "silu", "residual_relu", "mul_channel"]
)
def test_onednn_conv_with_each_epilogue_matches_onnxruntime(epilogue: str) -> None:
    compiled = _check(conv_model(epilogue, cin=16, cout=16, hw=24), "onednn", 1)  # 2.7 MFLOP: the heuristic's
    (choice,) = [c for c in compiled.selection if c.kind == "conv"]
    assert choice.choice == "onednn" and choice.how == "heuristic"


@pytest.mark.parametrize(
    "epilogue", ["none", "relu", "clip6", "sigmoid", "tanh", "leaky", "silu", "residual_relu", "mul_channel"]
)
def test_onednn_blocked_conv_with_each_epilogue_matches_onnxruntime(epilogue: str) -> None:
    """The default layout at O2: the convolution is a blocked one, oneDNN computes it in NCHW[x]c
    with the epilogue as its post-ops (a tensor operand reordered into the layout)."""
    compiled = _check(conv_model(epilogue, cin=16, cout=16, hw=24), "onednn", 1, layout="auto")
    (choice,) = [c for c in compiled.selection if c.kind == "blocked_conv"]
    assert choice.choice == "onednn" and choice.how == "heuristic"


@pytest.mark.parametrize(
    "shape",
    [
        dict(k=1, pads=(0, 0, 0, 0)),
        dict(stride=2),
        dict(pads=(0, 0, 1, 1)),
        dict(dilation=2, pads=(2, 2, 2, 2)),
        dict(groups=8, stride=2),  # depthwise (stride 1: test_depthwise_..._explicitly)
        dict(cin=3, cout=16, k=7, stride=2, pads=(3, 3, 3, 3), hw=20),
    ],
    ids=["1x1", "stride2", "asymmetric-pads", "dilation2", "depthwise", "stem7x7"],
)
def test_onednn_conv_shapes_match_onnxruntime(shape: dict) -> None:
    _check(conv_model("relu", **shape), "onednn", 1, schedules={"conv": {"impl": "onednn"},
                                                                "depthwise_conv": {"impl": "onednn"}})


def test_onednn_depthwise_conv_asked_for_explicitly_matches_onnxruntime() -> None:
    # The heuristic keeps stride-1 depthwise convolutions generated; a kind-level configuration
    # {"impl": "onednn"} asks for the library anyway (and is not subject to selection).
    _check(conv_model("clip6", groups=8), "onednn", 1, schedules={"depthwise_conv": {"impl": "onednn"}})
    _check(conv_model("clip6", groups=8), "onednn", 0)


def test_unsupported_epilogue_keeps_the_generated_kernel_and_says_why() -> None:
    compiled = _check(conv_model("rsub"), "onednn", 0)
    (choice,) = [c for c in compiled.selection if c.kind == "conv"]
    onednn_result = next(r for r in choice.candidates if r.impl == "onednn")
    assert choice.choice == "generated" and choice.how == "only candidate"
    assert "'arith.subf' with the kernel's result on the right has no library post-op" in onednn_result.reason


def pool_model(kind: str, *, pads=(0, 0, 0, 0), ceil=0, include_pad=0) -> onnx.ModelProto:
    attrs = dict(kernel_shape=[3, 3], strides=[2, 2], pads=list(pads), ceil_mode=ceil)
    if kind == "AveragePool":
        attrs["count_include_pad"] = include_pad
    node = helper.make_node(kind, ["x"], ["y"], **attrs)
    probe = _model([node], [_vi("x", (1, 4, 11, 11))], [_vi("y", None)], [], check=False)
    inferred = onnx.shape_inference.infer_shapes(probe)
    shape = [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]
    return _model([node], [_vi("x", (1, 4, 11, 11))], [_vi("y", shape)], [])


@pytest.mark.parametrize(
    "kind, attrs, selectable",
    [
        ("MaxPool", dict(), True),
        ("MaxPool", dict(pads=(1, 1, 1, 1)), True),
        ("MaxPool", dict(pads=(0, 0, 1, 1), ceil=1), True),
        ("AveragePool", dict(), True),
        ("AveragePool", dict(pads=(1, 1, 1, 1), include_pad=1), True),
        # Excluding the padding from the divisor: the kernel cut out for measuring includes its
        # padding copies (a model kernel is the whole pool op), so oneDNN sees the pads and is a
        # candidate. (When the cut-out kernel read an already padded input, it was not.)
        ("AveragePool", dict(pads=(1, 1, 1, 1), include_pad=0), True),
        ("AveragePool", dict(pads=(1, 0, 0, 1), ceil=1, include_pad=0), True),
    ],
)
def test_onednn_pooling_matches_onnxruntime(kind: str, attrs: dict, selectable: bool) -> None:
    # The heuristic keeps pooling generated: ask for oneDNN explicitly.
    _check(pool_model(kind, **attrs), "onednn", 1, schedules={"pool": {"impl": "onednn"}})
    compiled = _check(pool_model(kind, **attrs), "onednn", 0)
    (choice,) = [c for c in compiled.selection if c.kind == "pool"]
    reason = next(r.reason for r in choice.candidates if r.impl == "onednn")
    assert (reason is None) == selectable
    assert selectable or "divisor" in reason


def matmul_model(gemm: bool, m: int = 3) -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((24, 16) if gemm else (16, 24)) * 0.2).astype(np.float32)
    b = (rng.standard_normal(24) * 0.1).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    if gemm:
        nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1)]
    else:
        nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["g"])]
    nodes.append(helper.make_node("Relu", ["g"], ["y"]))
    return _model(nodes, [_vi("x", (m, 16))], [_vi("y", (m, 24))], inits)


@pytest.mark.parametrize("library", ["onednn", "blas"])
@pytest.mark.parametrize("gemm", [True, False], ids=["gemm-transB", "matmul"])
@pytest.mark.parametrize("m", [1, 5])
def test_library_matmul_matches_onnxruntime(library: str, gemm: bool, m: int) -> None:
    compiled = _check(matmul_model(gemm, m), library, 1)
    (choice,) = [c for c in compiled.selection if c.kind == "matmul"]
    assert choice.choice == library


def test_gemm_trans_b_is_transposed_at_compile_time() -> None:
    lowered = lower_model(matmul_model(gemm=True))
    text = str(lowered.module)
    assert "linalg.transpose" not in text and "linalg.matmul" in text


@pytest.mark.parametrize(
    "model", [tiny_resnet(image=64, channels=(32, 64)), small_mlp()], ids=["tiny_resnet", "small_mlp"]
)
def test_libraries_all_and_none_give_the_same_numbers(model: onnx.ModelProto) -> None:
    rng = np.random.default_rng(3)
    results = {}
    for libraries in ("none", "all"):
        options = CompileOptions(libraries=libraries, select="heuristic", use_tuning_records=False)
        compiled = woodpecker.compile(model, options=options)
        feeds = {n: rng.standard_normal(compiled.input_shapes[n]).astype(np.float32) for n in compiled.input_names}
        rng = np.random.default_rng(3)
        results[libraries] = (compiled.run(None, feeds), compiled.stats.library_kernels)
    assert results["none"][1] == 0 and results["all"][1] > 0
    for a, b in zip(results["none"][0], results["all"][0], strict=True):
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL * float(np.max(np.abs(a))))


# -- selection logic, with recorded measurements ----------------------------------------------


def _tasks():
    lowered = lower_model(tiny_resnet(image=64, channels=(32, 64)), layout="nchw")
    with lowered.imported.context:
        extracted = cpu_tasks(lowered.module, len(lowered.weights), CpuMachine.host(threads=2), device="test-cpu")
    return [e.task for e in extracted]


def _times(generated: float, onednn_seconds: float | str, blas_seconds: float | str = 1.0):
    def seconds(task, config):
        impl = config.get("impl", "generated")
        return {"generated": generated, "onednn": onednn_seconds, "blas": blas_seconds}[impl]

    return seconds


def test_selection_measures_every_candidate_records_them_and_reads_them_back(tmp_path) -> None:
    tasks = _tasks()
    db = str(tmp_path / "records.db")
    options = SelectOptions(libraries=("onednn", "blas"), mode="measure", storage=db)
    runner = RecordedRunner(_times(2e-3, 1e-3))
    choices = select_implementations(tasks, CpuTarget(), options, runner_factory=lambda: runner)
    conv = next(c for c in choices if c.kind == "conv")
    assert conv.choice == "onednn" and conv.how == "measured" and conv.decision == Library("onednn")
    times = {r.impl: r.seconds for r in conv.candidates}
    assert times["generated"] == pytest.approx(2e-3) and times["onednn"] == pytest.approx(1e-3)
    assert times["blas"] is None and "BLAS has no call for conv kernels" in next(
        r.reason for r in conv.candidates if r.impl == "blas")
    # the default is measured first for each measured task, and each candidate at most `rounds` times
    measured_keys = {c.key for c in choices if c.how == "measured"}
    first_calls = {}
    for key, config in runner.calls:
        first_calls.setdefault(key, config)
    assert all(first_calls[key] == {} for key in measured_keys)
    # a second selection reads the records: nothing is measured
    def refuse():
        raise AssertionError("a recorded selection must not measure")

    again = select_implementations(tasks, CpuTarget(), options, runner_factory=refuse)
    assert [c.choice for c in again] == [c.choice for c in choices]
    assert {c.how for c in again} <= {"recorded", "only candidate"}
    from woodpecker.database import open_database

    with open_database(db) as database:
        stored = database.selections([conv.key])[conv.key]
    assert stored.candidates["onednn"].seconds == pytest.approx(1e-3)


def test_selection_keeps_the_generated_kernel_when_it_is_faster_or_the_library_fails(tmp_path) -> None:
    tasks = _tasks()
    faster = select_implementations(
        tasks, CpuTarget(), SelectOptions(("onednn",), "measure", str(tmp_path / "a.db")),
        runner_factory=lambda: RecordedRunner(_times(1e-3, 3e-3)),
    )
    assert all(c.choice == "generated" for c in faster)
    failing = select_implementations(
        tasks, CpuTarget(), SelectOptions(("onednn",), "measure", str(tmp_path / "b.db")),
        runner_factory=lambda: RecordedRunner(_times(1e-3, "wrong output: max |difference| 3")),
    )
    conv = next(c for c in failing if c.kind == "conv")
    assert conv.choice == "generated"
    assert "wrong output" in next(r.error for r in conv.candidates if r.impl == "onednn")


def test_a_new_tuning_record_invalidates_the_recorded_selection(tmp_path) -> None:
    tasks = _tasks()
    options = SelectOptions(("onednn",), "measure", str(tmp_path / "c.db"))
    select_implementations(tasks, CpuTarget(), options, runner_factory=lambda: RecordedRunner(_times(2e-3, 1e-3)))
    conv = next(t for t in tasks if t.kind == "conv")
    runner = RecordedRunner(lambda task, config: 0.5e-3 if config.get("tile") == 4 else 1e-3)
    again = select_implementations([conv], CpuTarget(), options, {conv.key: {"tile": 4}}, runner_factory=lambda: runner)
    assert again[0].how == "measured" and again[0].choice == "generated" and again[0].config == {"tile": 4}


def test_records_mode_without_records_uses_the_stated_heuristic(tmp_path) -> None:
    tasks = _tasks()
    options = SelectOptions(("onednn", "blas"), "records", str(tmp_path / "none.db"))
    choices = select_implementations(tasks, CpuTarget(), options)
    conv = next(c for c in choices if c.kind == "conv" and c.output_shape[2] == 32)  # 19 MFLOP, 32x32 outputs
    matmul = next(c for c in choices if c.kind == "matmul")
    assert (conv.choice, conv.how) == ("onednn", "heuristic")
    assert matmul.choice == "onednn" and not (tmp_path / "none.db").exists()
    only_blas = select_implementations(tasks, CpuTarget(), SelectOptions(("blas",), "heuristic"))
    assert next(c for c in only_blas if c.kind == "matmul").choice == "blas"


def test_the_heuristic_keeps_wide_unit_stride_and_small_convolutions_generated() -> None:
    wide = _check(conv_model("relu", cin=8, cout=8, hw=56), "onednn", 0)
    strided = _check(conv_model("relu", cin=8, cout=8, hw=112, stride=2), "onednn", 1)
    small = _check(conv_model("relu", cin=4, cout=4, hw=16), "onednn", 0)  # 0.07 MFLOP
    assert [(c.choice, c.how) for c in small.selection if c.kind == "conv"] == [("generated", "heuristic")]
    assert [(c.choice, c.how) for c in wide.selection if c.kind == "conv"] == [("generated", "heuristic")]
    assert [(c.choice, c.how) for c in strided.selection if c.kind == "conv"] == [("onednn", "heuristic")]


def test_library_options_are_validated() -> None:
    assert parse_libraries("all") == ("onednn", "blas") and parse_libraries("none") == ()
    assert parse_libraries("blas,onednn") == ("onednn", "blas")
    with pytest.raises(ValueError, match="unknown cpu library 'mkl'"):
        parse_libraries("mkl")
    with pytest.raises(woodpecker.WoodpeckerError, match="unknown cpu library 'mkl'"):
        woodpecker.compile(tiny_resnet(), options=CompileOptions(libraries="mkl"))
    with pytest.raises(woodpecker.WoodpeckerError, match="select must be one of"):
        woodpecker.compile(tiny_resnet(), options=CompileOptions(select="fastest"))


def test_a_missing_library_is_reported_once_and_compiling_goes_on(monkeypatch) -> None:
    def unavailable(library: str) -> str | None:
        return "the 'onednn-cpu-gomp' package is not installed" if library == "onednn" else None

    monkeypatch.setattr(cpu_target_module, "library_availability", unavailable)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = _check(tiny_resnet(), "all", 1)  # BLAS still takes the Gemm
    messages = [str(w.message) for w in caught if "onednn" in str(w.message)]
    assert len(messages) == 1 and "not installed" in messages[0]
    assert all(c.choice != "onednn" for c in compiled.selection)


def test_wpk_compile_writes_the_selection_report(tmp_path, capsys) -> None:
    from woodpecker.cli.main import main

    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_resnet(image=64, channels=(32, 64)), path)
    report = tmp_path / "report.json"
    code = main(["compile", str(path), "--select", "heuristic", "--no-records", "--layout", "nchw",
                 "--report", str(report)])
    assert code == 0
    out = capsys.readouterr().out
    assert "chosen by the heuristic" in out and "onednn" in out
    data = json.loads(report.read_text())
    assert data["select"] == "heuristic" and data["libraries"] == "all"
    kernels = {tuple(k["kernel_names"]): k for k in data["kernels"]}
    conv = next(k for k in data["kernels"] if k["kind"] == "conv" and k["choice"] == "onednn")
    impls = {c["impl"]: c for c in conv["candidates"]}
    assert set(impls) == {"generated", "onednn", "blas"} and impls["blas"]["reason"]
    assert conv["how"] == "heuristic" and conv["arg_shapes"] and conv["output_shape"]
    assert sum(len(names) for names in kernels) == data["totals"]["model_kernels"]


# -- real measurements: the runners time library candidates like any configuration ------------


def test_isolated_runner_measures_and_verifies_a_library_candidate() -> None:
    from woodpecker.measure.cpu_runner import CpuMeasureOptions, IsolatedCpuRunner

    conv = next(t for t in _tasks() if t.kind == "conv")
    runner = IsolatedCpuRunner(CpuMeasureOptions(repeat=2, min_seconds=0.0, max_repeat=2, pairs=1))
    try:
        default, library = runner.measure(conv, [{}, {"impl": "onednn"}])
    finally:
        runner.close()
    assert default.ok and library.ok, (default.error, library.error)
    assert library.relative is not None and library.relative > 0  # timed against the default, output verified


def test_compile_with_select_measure_records_the_choice_and_a_second_compile_reads_it(tmp_path) -> None:
    db = str(tmp_path / "records.db")
    model = conv_model("residual_relu")
    first = woodpecker.compile(model, options=CompileOptions(select="measure", tuning_db=db))
    (conv,) = [c for c in first.selection if c.kind == "conv"]
    assert conv.how == "measured"
    times = {r.impl: r.seconds for r in conv.candidates}
    assert times["generated"] > 0 and times["onednn"] > 0
    assert conv.choice == min(("generated", "onednn"), key=lambda impl: times[impl])
    second = woodpecker.compile(model, options=CompileOptions(select="records", tuning_db=db))
    (again,) = [c for c in second.selection if c.kind == "conv"]
    assert again.how == "recorded" and again.choice == conv.choice
    assert {r.impl: r.seconds for r in again.candidates} == times


def test_tune_report_shows_the_recorded_selection(tmp_path, capsys) -> None:
    from woodpecker.cli.main import main

    db = str(tmp_path / "records.db")
    select_implementations(_tasks(), CpuTarget(), SelectOptions(("onednn", "blas"), "measure", db),
                           runner_factory=lambda: RecordedRunner(_times(2e-3, 1e-3, 0.5e-3)))
    assert main(["tune-report", "--db", db, "-o", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "implementation selection" in out and "onednn" in out
    assert (tmp_path / "report" / "selection.png").stat().st_size > 0
    rows = (tmp_path / "report" / "selection.csv").read_text().splitlines()
    assert rows[0].startswith("key,description,impl,seconds")
    assert any(",blas," in row and row.endswith(",1") for row in rows)  # the matmul chose BLAS

