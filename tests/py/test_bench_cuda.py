"""The CUDA benchmarks (bench/bench_cuda_convs.py, bench/bench_cuda_e2e.py) without a GPU.

* `--compile-only` compiles the plans and prints them (the built-in layer table: CI has no
  .cache/models);
* without a GPU both scripts say why and exit with code 2 (skipped where there is a GPU);
* the timing and reporting path runs in-process on stand-ins: a "GPU" whose plans compute with
  `CudaModel.emulate` (the kernels' schedules on the CPU) and whose executor returns fixed times,
  no PyTorch (so outputs are checked against ONNX Runtime).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from woodpecker.gpu.model import CudaModel
from woodpecker.runtime.cuda.launch import DeviceInfo, cuda_status

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import bench_cuda_convs  # noqa: E402
import bench_cuda_e2e  # noqa: E402
import cuda_common  # noqa: E402

GPU_REASON = cuda_status()


def _run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_ROOT)


def test_convs_compile_only_prints_the_plans_of_the_first_layers(tmp_path: Path) -> None:
    out_json = tmp_path / "convs.json"
    # An empty --models-dir: the built-in table, as in CI (where .cache/models is absent).
    done = _run("bench_cuda_convs.py", "--compile-only", "--models", "resnet18", "--max-layers", "2",
                "--batch", "1", "--arch", "sm_90", "--models-dir", str(tmp_path), "--json", str(out_json))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "compile only: plans for sm_90" in out
    assert "resnet18: 2 distinct conv layers (built-in table)" in out
    assert "### resnet18, batch 1: plans (compile only)" in out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| layer | shape | n | generated plan | cuDNN plan | choice plan | choice |")
    rows = {line.split(" | ")[0].strip("| "): line for line in table[1:]}
    assert set(rows) == {"conv1", "layer1.0.conv1"}
    assert "3x224x224 7x7/s2/p3 -> 64 +relu" in rows["conv1"]
    assert "64x56x56 3x3/s1/p1 -> 64 +relu" in rows["layer1.0.conv1"]
    for row in rows.values():
        # One kernel: the padding gather and the conv are its generated launches, or cuDNN pads itself.
        assert "1 step (generated 1)" in row and "1 step (cudnn 1)" in row
        assert "cudnn (heuristic)" in row
    assert "arena 3.67 MiB" in rows["conv1"]  # the padded input (3x230x230) + the output (64x112x112)
    results = json.loads(out_json.read_text())
    assert [r["layer"] for r in results] == ["conv1", "layer1.0.conv1"]
    assert results[0]["plans"]["cudnn"]["implementations"] == {"cudnn": 1}
    assert results[0]["ms"] == {} and results[0]["errors"] == {}


@pytest.mark.skipif(GPU_REASON is None, reason="checks the behaviour without a CUDA device")
@pytest.mark.parametrize("script", ["bench_cuda_convs.py", "bench_cuda_e2e.py"])
def test_without_a_gpu_the_benchmarks_say_so_and_exit_2(script: str) -> None:
    done = _run(script, "--models", "resnet18", "--batch", "1")
    assert done.returncode == cuda_common.NO_GPU_EXIT, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{script}: needs an NVIDIA GPU")
    assert GPU_REASON in lines[0] and "--compile-only" in lines[0]


# -- the layers --------------------------------------------------------------------------------------


def _tiny_resnet_like(path: Path) -> None:
    """conv -> BN -> relu, conv -> BN -> add (no relu of its own), conv -> relu: 2 distinct + 1."""
    rng = np.random.default_rng(0)
    inits = []

    def weight(name: str, shape: tuple[int, ...]) -> str:
        inits.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name))
        return name

    def bn(x: str, out: str, c: int) -> onnx.NodeProto:
        names = [weight(f"{out}_{p}", (c,)) for p in ("s", "b", "m")]
        inits.append(numpy_helper.from_array(np.ones(c, np.float32), f"{out}_v"))
        return helper.make_node("BatchNormalization", [x, *names, f"{out}_v"], [out])

    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [1, 1]}
    nodes = [
        helper.make_node("Conv", ["input", weight("w1", (4, 4, 3, 3))], ["c1"], name="/layer1/layer1.0/conv1/Conv",
                         **conv),
        bn("c1", "n1", 4), helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", weight("w2", (4, 4, 3, 3))], ["c2"], name="/layer1/layer1.0/conv2/Conv",
                         **conv),
        bn("c2", "n2", 4), helper.make_node("Add", ["n2", "input"], ["a2"]),
        helper.make_node("Conv", ["a2", weight("w3", (4, 4, 3, 3))], ["c3"], name="/layer1/layer1.1/conv1/Conv",
                         **conv),
        helper.make_node("Relu", ["c3"], ["output"]),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_layers_from_onnx_are_distinct_with_their_relu_and_count(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    _tiny_resnet_like(path)
    layers = bench_cuda_convs.layers_from_onnx(path)
    assert [(layer.name, layer.relu, layer.count) for layer in layers] == [
        ("layer1.0.conv1", True, 2), ("layer1.0.conv2", False, 1)]
    assert layers[0].describe() == "4x8x8 3x3/s1/p1 -> 4 +relu"
    assert bench_cuda_convs._node_name("/layer2/layer2.0/downsample/downsample.0/Conv") == "layer2.0.downsample.0"


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_the_built_in_tables_are_the_exported_models_layers(name: str) -> None:
    path = cuda_common.MODELS_DIR
    if not (path / f"{name}.onnx").exists():
        pytest.skip(f"{path / name}.onnx is not there (tools/export_torchvision_models.py)")
    from_model, source = bench_cuda_convs.model_layers(name, path)
    table, table_source = bench_cuda_convs.model_layers(name, path / "absent")
    assert source.endswith(f"{name}.onnx") and table_source == "built-in table"
    assert from_model == table


def test_vgg16_has_13_convolutions_in_9_distinct_layers() -> None:
    layers, _ = bench_cuda_convs.model_layers("vgg16", Path("/nonexistent"))
    assert len(layers) == 9 and sum(layer.count for layer in layers) == 13
    assert all(layer.kh == 3 and layer.pads == (1, 1, 1, 1) and layer.relu for layer in layers)
    assert [layer.h for layer in layers] == [224, 224, 112, 112, 56, 56, 28, 28, 14]


def test_alternate_rotates_the_order_and_drops_a_failing_candidate() -> None:
    order: list[str] = []

    def timer(name: str):
        def run() -> list[float]:
            order.append(name)
            if name == "c" and order.count("c") == 2:
                raise RuntimeError("boom")
            return [0.001]
        return run

    errors = {}
    samples = cuda_common.alternate({n: timer(n) for n in "abc"}, 3, lambda n, e: errors.setdefault(n, str(e)))
    assert order == ["a", "b", "c", "b", "c", "a", "a", "b"]
    assert samples == {"a": [0.001] * 3, "b": [0.001] * 3, "c": []}
    assert errors == {"c": "boom"}
    assert cuda_common.geomean([2.0, 8.0, None]) == pytest.approx(4.0)
    assert cuda_common.rel_l2(np.ones(4), np.ones(4)) == 0.0
    assert cuda_common.rel_l2(np.full(4, np.nan), np.ones(4)) == float("inf")


# -- the timing path on stand-ins -------------------------------------------------------------------


class _FakeExecutor:
    def __init__(self, model: CudaModel):
        self.fallbacks: dict[str, str] = {}
        self.seconds = 1e-3 * len(model.plan.steps) if model.plan.library_steps() else 3e-3

    def time(self, repeat: int, warmup: int, flush_l2: bool) -> list[float]:
        assert flush_l2
        return [self.seconds] * repeat


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import woodpecker.runtime.cuda.launch as launch

    monkeypatch.setattr(cuda_common, "gpu_reason", lambda: None)
    monkeypatch.setattr(launch, "device_info", lambda device=0: DeviceInfo(0, "Fake GPU", (9, 0), 1 << 20, 1 << 17))
    monkeypatch.setattr(cuda_common, "import_torch", lambda: (None, "PyTorch is not installed (test)"))
    monkeypatch.setattr(CudaModel, "run", lambda self, names, feeds: self.emulate(feeds, names))
    monkeypatch.setattr(CudaModel, "executor", property(lambda self: _FakeExecutor(self)))


def test_convs_timing_path_on_a_stand_in_gpu(fake_gpu, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out_json = tmp_path / "convs.json"
    code = bench_cuda_convs.main(["--models", "resnet18", "--max-layers", "1", "--batch", "1", "--rounds", "2",
                                  "--repeat", "3", "--select", "heuristic", "--models-dir", str(tmp_path),
                                  "--json", str(out_json)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "device: Fake GPU (sm_90); plans for sm_90; choice: select=heuristic" in out
    assert "no PyTorch column" in out
    row = next(line for line in out.splitlines() if line.startswith("| conv1 "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # layer, shape, n, generated, cuDNN, choice, choice ms, PyTorch, choice/PyTorch, generated/cuDNN
    # (the stand-in times 1 ms a step of a plan with a library step, 3 ms a generated plan)
    assert cells[3:] == ["3.000", "1.000", "cudnn (heuristic)", "1.000", "-", "-", "3.00"]
    assert "generated / cuDNN 3.00" in out
    (result,) = json.loads(out_json.read_text())
    assert result["mismatch"] == [] and all(v < 1e-4 for v in result["rel_l2"].values())
    assert set(result["rel_l2"]) == {"generated", "cudnn", "choice"}


def test_convs_mark_a_plan_whose_output_differs(fake_gpu, monkeypatch, tmp_path: Path, capsys) -> None:
    def run(self, names, feeds):
        (out,) = self.emulate(feeds, names)
        return [out * 1.01] if self.plan.library_steps() else [out]

    monkeypatch.setattr(CudaModel, "run", run)
    code = bench_cuda_convs.main(["--models", "vgg16", "--max-layers", "1", "--batch", "1", "--rounds", "1",
                                  "--repeat", "2", "--select", "heuristic"])
    out = capsys.readouterr().out
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("| conv1_1 "))
    assert "1.000 MISMATCH" in row and "3.000 |" in row
    assert "note: conv1_1: cudnn rel L2" in out


def _tiny_classifier(path: Path) -> None:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("w", (8, 3, 3, 3)), ("b", (8,)), ("fw", (10, 8)), ("fb", (10,)))]
    nodes = [
        helper.make_node("Conv", ["input", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_e2e_timing_path_on_a_stand_in_gpu(fake_gpu, tmp_path: Path, capsys) -> None:
    _tiny_classifier(tmp_path / "resnet18.onnx")
    code = bench_cuda_e2e.main(["--models", "resnet18", "mobilenet_v2", "--batch", "1", "2", "--rounds", "2",
                                "--repeat", "2", "--select", "heuristic", "--models-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "the PyTorch columns need PyTorch with CUDA and torchvision, skipped" in out
    assert "mobilenet_v2: skipped:" in out and "is missing" in out
    rows = [line for line in out.splitlines() if line.startswith("| resnet18 ")]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        # model, batch, all, none, eager, compile, all/eager, all/compile, none/all, none/compile
        assert cells[2] != "-" and cells[3] == "3.000" and cells[4:8] == ["-", "-", "-", "-"]
    assert "resnet18 b2: rel L2 wpk all" in out


def test_convs_mark_a_cudnn_step_the_executor_could_not_run(fake_gpu, monkeypatch, capsys) -> None:
    class NoCudnn(_FakeExecutor):
        def __init__(self, model: CudaModel):
            super().__init__(model)
            self.fallbacks = {s.name: "cuDNN is not installed (test)" for s in model.plan.library_steps()}

    monkeypatch.setattr(CudaModel, "executor", property(lambda self: NoCudnn(self)))
    code = bench_cuda_convs.main(["--models", "vgg16", "--max-layers", "1", "--batch", "1", "--rounds", "1",
                                  "--repeat", "2", "--select", "heuristic"])
    out = capsys.readouterr().out
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("| conv1_1 "))
    assert "1.000 (not cuDNN)" in row
    assert "note: conv1_1: cudnn: step k0_conv ran its generated kernel instead: cuDNN is not installed (test)" in out
