"""`woodpecker.compile(model, target="cuda")`: PTX for every kernel kind, for the default
schedule and for configurations drawn from each kernel's search space (sm_80 and sm_90), the
drawn schedules' numbers on the CPU against numpy, config rejection, the scheduled/NVVM IR
dumps, and the bundled tiny ResNet with its saved directory."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import woodpecker.gpu.codegen as codegen
from woodpecker.compiler import CompileOptions, compile
from woodpecker.errors import CompilationError
from woodpecker.gpu.codegen import lower_gpu_kernels, schedule_gpu_kernels
from woodpecker.gpu.model import CudaModel
from woodpecker.gpu.program import GpuKernel
from woodpecker.gpu.space import config_from_knobs
from woodpecker.models import bundled_model_path
from woodpecker.schedule import Config, InvalidConfigError

ARCHS = ("sm_80", "sm_90")


def compile_cuda(model, arch: str, configs=None) -> CudaModel:
    """The model compiled for CUDA `arch` with per-kernel `configs` (name or kind -> knobs)."""
    result = compile(model, options=CompileOptions(target="cuda", arch=arch, gpu_configs=configs))
    assert isinstance(result, CudaModel)
    return result
SEEDS = (1, 2)  # two drawn configurations per case (None: the default schedule)
# f32 kernels against a float64 numpy reference: reductions of up to 72 terms of O(1) values.
RTOL, ATOL = 1e-4, 1e-4

_rng = np.random.default_rng(0)


def _r(*shape: int) -> np.ndarray:
    return _rng.standard_normal(shape).astype(np.float32)


def _onnx(nodes: list, inputs: dict[str, tuple], outputs: dict[str, tuple], inits: dict[str, np.ndarray]):
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "case",
        [helper.make_tensor_value_info(n, f32, list(s)) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, f32, list(s)) for n, s in outputs.items()],
        [numpy_helper.from_array(v, n) for n, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def _conv(x: np.ndarray, w: np.ndarray, stride: int = 1, pad: int = 0, groups: int = 1) -> np.ndarray:
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, _, h, wd = x.shape
    f, cg, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, f, oh, ow))
    fg = f // groups
    for g in range(groups):
        xs, ws = x[:, g * cg : (g + 1) * cg], w[g * fg : (g + 1) * fg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
                out[:, g * fg : (g + 1) * fg] += np.einsum("nchw,fc->nfhw", patch, ws[:, :, i, j])
    return out


def _windows(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    *_, h, w = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    return np.stack(
        [x[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] for i in range(k) for j in range(k)]
    )


@dataclass
class Case:
    model: onnx.ModelProto
    feeds: dict[str, np.ndarray]
    reference: Callable[[dict[str, np.ndarray]], np.ndarray]
    kinds: list[str]


def _cases() -> dict[str, Case]:
    n = helper.make_node
    cases: dict[str, Case] = {}
    w, b = _r(64, 48), _r(48)
    cases["matmul_bias_relu"] = Case(
        _onnx(
            [n("MatMul", ["x", "w"], ["m"]), n("Add", ["m", "b"], ["a"]), n("Relu", ["a"], ["y"])],
            {"x": (32, 64)},
            {"y": (32, 48)},
            {"w": w, "b": b},
        ),
        {"x": _r(32, 64)},
        lambda f, w=w, b=b: np.maximum(f["x"].astype(np.float64) @ w + b, 0),
        ["matmul"],
    )
    cases["batch_matmul"] = Case(
        _onnx([n("MatMul", ["x", "z"], ["y"])], {"x": (4, 16, 8), "z": (4, 8, 12)}, {"y": (4, 16, 12)}, {}),
        {"x": _r(4, 16, 8), "z": _r(4, 8, 12)},
        lambda f: f["x"].astype(np.float64) @ f["z"],
        ["batch_matmul"],
    )
    w, b = _r(24, 32), _r(24)
    cases["gemm"] = Case(
        _onnx(
            [n("Gemm", ["x", "w", "b"], ["y"], transB=1, alpha=0.5, beta=2.0)],
            {"x": (8, 32)},
            {"y": (8, 24)},
            {"w": w, "b": b},
        ),
        {"x": _r(8, 32)},
        lambda f, w=w, b=b: 0.5 * (f["x"].astype(np.float64) @ w.T) + 2.0 * b,
        ["matmul"],  # the weight is transposed at compile time (wpk-fold-constants), then one matmul
    )
    w, b = _r(16, 8, 3, 3), _r(16)
    cases["conv3x3"] = Case(
        _onnx(
            [n("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]), n("Relu", ["c"], ["y"])],
            {"x": (1, 8, 16, 16)},
            {"y": (1, 16, 16, 16)},
            {"w": w, "b": b},
        ),
        {"x": _r(1, 8, 16, 16)},
        lambda f, w=w, b=b: np.maximum(_conv(f["x"], w, pad=1) + b[None, :, None, None], 0),
        ["gather", "conv"],
    )
    w = _r(32, 16, 1, 1)
    cases["conv1x1"] = Case(
        _onnx(
            [n("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1])], {"x": (1, 16, 8, 8)}, {"y": (1, 32, 8, 8)}, {"w": w}
        ),
        {"x": _r(1, 16, 8, 8)},
        lambda f, w=w: _conv(f["x"], w),
        ["conv"],
    )
    w = _r(16, 8, 3, 3)
    cases["conv_stride2"] = Case(
        _onnx(
            [n("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
            {"x": (2, 8, 16, 16)},
            {"y": (2, 16, 8, 8)},
            {"w": w},
        ),
        {"x": _r(2, 8, 16, 16)},
        lambda f, w=w: _conv(f["x"], w, stride=2, pad=1),
        ["gather", "conv"],
    )
    w = _r(8, 1, 3, 3)
    cases["depthwise"] = Case(
        _onnx(
            [n("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], group=8)],
            {"x": (1, 8, 10, 10)},
            {"y": (1, 8, 8, 8)},
            {"w": w},
        ),
        {"x": _r(1, 8, 10, 10)},
        lambda f, w=w: _conv(f["x"], w, groups=8),
        ["depthwise_conv"],
    )
    cases["max_pool"] = Case(
        _onnx(
            [n("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
            {"x": (1, 8, 16, 16)},
            {"y": (1, 8, 8, 8)},
            {},
        ),
        {"x": _r(1, 8, 16, 16)},
        lambda f: _windows(f["x"], 2, 2).max(axis=0),
        ["pool"],
    )
    cases["average_pool"] = Case(
        _onnx(
            [n("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[1, 1])],
            {"x": (1, 8, 10, 10)},
            {"y": (1, 8, 8, 8)},
            {},
        ),
        {"x": _r(1, 8, 10, 10)},
        lambda f: _windows(f["x"].astype(np.float64), 3, 1).mean(axis=0),
        ["pool"],
    )
    s = _r(32)
    cases["elementwise_chain"] = Case(
        _onnx(
            [n("Mul", ["x", "s"], ["m"]), n("Sigmoid", ["m"], ["g"]), n("Sub", ["g", "x"], ["y"])],
            {"x": (4, 16, 32)},
            {"y": (4, 16, 32)},
            {"s": s},
        ),
        {"x": _r(4, 16, 32)},
        lambda f, s=s: 1 / (1 + np.exp(-f["x"].astype(np.float64) * s)) - f["x"],
        ["elementwise"],
    )
    cases["reduce_mean"] = Case(
        _onnx([n("ReduceMean", ["x"], ["y"], axes=[-1], keepdims=0)], {"x": (64, 100)}, {"y": (64,)}, {}),
        {"x": _r(64, 100)},
        lambda f: f["x"].astype(np.float64).mean(axis=-1),
        ["reduction"],
    )

    def softmax(f: dict[str, np.ndarray]) -> np.ndarray:
        e = np.exp(f["x"].astype(np.float64) - f["x"].max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    cases["softmax"] = Case(
        _onnx([n("Softmax", ["x"], ["y"], axis=-1)], {"x": (16, 40)}, {"y": (16, 40)}, {}),
        {"x": _r(16, 40)},
        softmax,
        ["reduction", "elementwise", "reduction", "elementwise"],  # max, exp, sum, divide
    )
    return cases


CASES = _cases()


class Compiled:
    """CudaModels by (case, arch, seed), compiled once per test module; seed None: defaults."""

    def __init__(self) -> None:
        self.models: dict[tuple[str, str, int | None], CudaModel] = {}
        self.drawn: dict[tuple[str, int], dict[str, Config]] = {}

    def configs(self, case: str, seed: int) -> dict[str, Config]:
        """Knobs for every kernel drawn from its sm_80 space (valid on sm_90 too); the draw
        moves on until some kernel's configuration differs from its default."""
        if (case, seed) not in self.drawn:
            spaces = self.get(case, "sm_80", None).search_spaces()
            rng = random.Random(seed)
            for _ in range(20):
                configs = {name: space.sample(rng) for name, space in spaces.items()}
                if any(configs[name] != space.default for name, space in spaces.items()):
                    break
            self.drawn[(case, seed)] = configs
        return self.drawn[(case, seed)]

    def get(self, case: str, arch: str, seed: int | None) -> CudaModel:
        key = (case, arch, seed)
        if key not in self.models:
            configs = None if seed is None else self.configs(case, seed)
            self.models[key] = compile_cuda(CASES[case].model, arch, configs)
        return self.models[key]


@pytest.fixture(scope="module")
def compiled() -> Compiled:
    return Compiled()


def check_ptx(kernel: GpuKernel, arch: str) -> None:
    """The PTX targets `arch`, has the entry with one `.u64 .ptr` per argument, and `.maxntid`
    equal to the launch block; dynamic shared memory exactly when the launch asks for it."""
    ptx = kernel.ptx
    assert re.search(rf"^\.target {arch}$", ptx, re.MULTILINE), ptx[:300]
    assert re.search(rf"\.visible \.entry {kernel.name}\(", ptx)
    params = re.findall(rf"\.param \.u64 \.ptr \.align 1 {kernel.name}_param_(\d+)", ptx)
    assert params == [str(i) for i in range(len(kernel.args))]
    maxntid = re.search(r"\.maxntid (\d+), (\d+), (\d+)", ptx)
    assert maxntid is not None and tuple(map(int, maxntid.groups())) == kernel.block
    assert ("__dynamic_shmem__" in ptx) == (kernel.shared_bytes > 0)
    assert [a.access for a in kernel.args].count("write") == 1
    assert all(n >= 1 for n in (*kernel.grid, *kernel.block))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_ptx_for_default_and_drawn_configs(compiled: Compiled, case: str, arch: str) -> None:
    default = compiled.get(case, arch, None)
    assert default.target == "cuda" and default.arch == arch
    assert [k.kind for k in default.kernels] == CASES[case].kinds
    for kernel in default.kernels:
        check_ptx(kernel, arch)
        assert kernel.config.notes == "default"
    spaces = {arch: compiled.get(case, arch, None).search_spaces() for arch in ARCHS}
    for seed in SEEDS:
        knobs = compiled.configs(case, seed)
        model = compiled.get(case, arch, seed)
        assert [k.kind for k in model.kernels] == CASES[case].kinds
        for kernel in model.kernels:
            spaces[arch][kernel.function].validate(knobs[kernel.function])
            config = config_from_knobs(knobs[kernel.function])
            shape = config.launch_shape(kernel.problem, arch)
            assert kernel.config == config and kernel.config.notes == "search space"
            assert (kernel.grid, kernel.block, kernel.shared_bytes) == (shape.grid, shape.block, shape.shared_bytes)
            check_ptx(kernel, arch)
            if kernel.resources is not None:  # ptxas installed
                assert kernel.resources.registers > 0 and kernel.cubin is not None


@pytest.mark.parametrize("case", sorted(CASES))
def test_drawn_configs_compute_the_numpy_result_on_cpu(compiled: Compiled, case: str) -> None:
    spec = CASES[case]
    expected = spec.reference(spec.feeds)
    for seed in SEEDS:
        model = compiled.get(case, "sm_90", seed)
        (got,) = model.emulate(spec.feeds)
        assert got.shape == expected.shape
        np.testing.assert_allclose(
            got, expected, rtol=RTOL, atol=ATOL, err_msg=f"{case} {compiled.configs(case, seed)}"
        )


def test_drawn_configs_differ_from_the_defaults(compiled: Compiled) -> None:
    promoted = 0
    for case in CASES:
        defaults = compiled.get(case, "sm_80", None).search_spaces()
        drawn = [compiled.configs(case, seed) for seed in SEEDS]
        assert drawn[0] != drawn[1]
        for configs in drawn:
            assert any(configs[name] != space.default for name, space in defaults.items()), case
            promoted += sum(1 for c in configs.values() if c["promote_shared"])
    assert promoted >= 2  # shared-memory schedules are among those drawn


# -- rejected configurations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "configs", "kernel", "knob", "reason"),
    [
        (
            "matmul_bias_relu",
            {"k0_matmul": {"block_tile": [32, 48], "thread_tile": [1, 1], "promote_shared": False}},
            "k0_matmul",
            "thread_tile",
            "1536 threads per block",
        ),
        ("matmul_bias_relu", {"matmul": {"vector_width": 8}}, "k0_matmul", "vector_width", "not in its domain"),
        ("matmul_bias_relu", {"matmul": {"block_tile": [24, 48]}}, "k0_matmul", "block_tile", "not in its domain"),
        (
            "conv3x3",
            {"gather": {"block_tile": [1, 1, 9, 18], "thread_tile": [1, 1, 2, 1]}},
            "k0_conv_0",  # the padding launch of kernel k0_conv
            "thread_tile",
            "thread_tile[2]=2 does not divide block_tile[2]=9",
        ),
        ("reduce_mean", {"reduction": {"promote_shared": True}}, "k0_reduction", "promote_shared", "not in its domain"),
    ],
)
def test_invalid_knobs_are_rejected_before_compiling(
    monkeypatch: pytest.MonkeyPatch, case: str, configs: dict, kernel: str, knob: str, reason: str
) -> None:
    def no_scheduling(*args: object, **kwargs: object) -> None:
        raise AssertionError("a kernel was scheduled before its configuration was checked")

    monkeypatch.setattr(codegen, "schedule", no_scheduling)
    with pytest.raises(InvalidConfigError, match=re.escape(f"kernel {kernel}: knob '{knob}': ")) as err:
        compile_cuda(CASES[case].model, "sm_90", configs)
    assert reason in str(err.value)


def test_unknown_arch_lists_the_known_ones() -> None:
    with pytest.raises(
        CompilationError, match=r"unknown CUDA architecture 'sm_70'; known architectures: sm_80, .*sm_90"
    ):
        compile(CASES["softmax"].model, target="cuda", arch="sm_70")
    with pytest.raises(CompilationError, match="target 'rocm' is not supported yet; available targets: cpu, cuda"):
        compile(CASES["softmax"].model, target="rocm")


def test_compile_options_select_arch_and_configs() -> None:
    options = CompileOptions(target="cuda", arch="sm_80", gpu_configs={"reduction": {"thread_tile": [2]}})
    model = compile(CASES["reduce_mean"].model, options=options)
    assert isinstance(model, CudaModel) and model.arch == "sm_80"
    (kernel,) = model.kernels
    assert kernel.config.thread_tile == (2,) and kernel.config.notes == "search space"
    from woodpecker.runtime.cuda.launch import cuda_available

    if not cuda_available():  # running needs a GPU; without one the error says so
        from woodpecker.runtime.cuda.executor import CudaUnavailable

        with pytest.raises(CudaUnavailable, match="running a CUDA plan needs an NVIDIA GPU"):
            model.run(None, CASES["reduce_mean"].feeds)


# -- IR after the schedule and after NVVM --------------------------------------------------------


def test_schedule_and_nvvm_dumps(compiled: Compiled) -> None:
    model = compiled.get("matmul_bias_relu", "sm_80", None)
    module = model.linalg
    before = str(module)
    knobs = {"block_tile": [16, 16], "thread_tile": [2, 4], "reduction_tile": [8], "promote_shared": True}
    with module.context:
        scheduled = str(schedule_gpu_kernels(module, "sm_80", {"k0_matmul": knobs}))
        nvvm = str(lower_gpu_kernels(module, "sm_80", {"k0_matmul": knobs}))
        plain = str(schedule_gpu_kernels(module, "sm_90", {"k0_matmul": {**knobs, "promote_shared": False}}))
    assert str(module) == before
    # Blocks of 16x16 outputs over a 32x48 output: a 2x3 forall; 8x4 threads each.
    assert "func.func @k0_matmul(" in scheduled and "gpu.launch" not in scheduled
    assert re.search(r"scf.forall \(%\w+, %\w+\) in \(2, 3\)", scheduled)
    assert "{mapping = [#gpu.block<y>, #gpu.block<x>]}" in scheduled
    assert re.search(r"scf.forall \(%\w+, %\w+\) in \(8, 4\)", scheduled)
    assert "#gpu.thread<y>, #gpu.thread<x>" in scheduled
    assert scheduled.count("memory_space = #gpu.address_space<workgroup>") == 2  # A and B tiles
    assert "linalg.copy" in scheduled and "tile_using" not in scheduled
    assert "#gpu.address_space<workgroup>" not in plain
    # NVVM: one gpu.module per kernel with the target, the launch and the kernel function.
    assert 'gpu.module @k0_matmul_kernel [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">]' in nvvm
    assert "wpk.gpu.block = array<i32: 4, 8, 1>" in nvvm and "wpk.gpu.grid = array<i32: 3, 2, 1>" in nvvm
    assert "wpk.gpu.shared_bytes = 1024 : i64" in nvvm  # (16x8 + 8x16) f32
    assert "nvvm.kernel" in nvvm and "nvvm.read.ptx.sreg.tid.x" in nvvm and "nvvm.barrier0" in nvvm
    assert "gpu.binary" not in nvvm and "func.func" not in nvvm


# -- the bundled tiny ResNet ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet() -> CudaModel:
    model = compile(bundled_model_path(), target="cuda")
    assert isinstance(model, CudaModel)
    return model


def test_tiny_resnet_compiles_to_a_ptx_kernel_per_fused_kernel(resnet: CudaModel) -> None:
    graph = onnx.load(bundled_model_path()).graph
    ops = [node.op_type for node in graph.node]
    kinds = [k.kind for k in resnet.kernels]
    assert resnet.arch == "sm_90"
    assert kinds.count("conv") == ops.count("Conv")
    assert kinds.count("pool") == ops.count("MaxPool") + ops.count("AveragePool")
    assert kinds.count("matmul") == ops.count("Gemm")
    assert resnet.input_names == [i.name for i in graph.input]
    assert resnet.output_names == [o.name for o in graph.output]
    assert resnet.program.inputs == [resnet.input_shapes[n] for n in resnet.input_names]
    assert resnet.program.outputs == [resnet.output_shapes[n] for n in resnet.output_names]
    assert resnet.program.weights == [w.shape for w in resnet.weights]
    assert len({k.name for k in resnet.kernels}) == len(resnet.kernels)
    for kernel in resnet.kernels:
        check_ptx(kernel, "sm_90")
        assert kernel.name == f"{kernel.function}_kernel"
        assert kernel.config.launch_shape(kernel.problem, "sm_90").grid == kernel.grid
    assert set(resnet.configs()) == set(resnet.search_spaces())
    assert resnet.stats.stage_seconds["codegen"] > 0


def test_tiny_resnet_emulation_matches_the_cpu_backend(resnet: CudaModel) -> None:
    feeds = {"input": np.random.default_rng(7).standard_normal(resnet.input_shapes["input"]).astype(np.float32)}
    cpu = compile(bundled_model_path(), target="cpu")
    for got, expected in zip(resnet.emulate(feeds), cpu.run(None, feeds), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    (probs,) = resnet.emulate(feeds, ["probs"])
    assert probs.shape == resnet.output_shapes["probs"]


def test_tiny_resnet_saved_directory_round_trips(resnet: CudaModel, tmp_path) -> None:
    out = resnet.save_kernels(tmp_path / "tiny_resnet.cuda")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "woodpecker.cuda" and manifest["arch"] == "sm_90"
    assert manifest["calling_convention"] == "bare_ptr"
    assert [i["name"] for i in manifest["inputs"]] == resnet.input_names
    assert len(manifest["kernels"]) == len(resnet.kernels)
    first = manifest["kernels"][0]
    kernel = resnet.kernels[0]
    assert first["entry"] == kernel.name and first["grid"] == list(kernel.grid) and first["block"] == list(kernel.block)
    assert first["shared_bytes"] == kernel.shared_bytes
    assert first["args"][0] == {
        "buffer": kernel.args[0].buffer.kind,
        "index": kernel.args[0].buffer.index,
        "shape": list(kernel.args[0].shape),
        "access": kernel.args[0].access,
        "element_type": "f32",
        "ptx_type": ".u64 .ptr",
    }
    assert (out / first["ptx"]).read_text() == kernel.ptx
    loaded = CudaModel.load_kernels(out)
    assert loaded.program.kernels == resnet.program.kernels
    for field in ("arch", "inputs", "weights", "outputs", "intermediates", "calling_convention"):
        assert getattr(loaded.program, field) == getattr(resnet.program, field), field
    assert (loaded.input_names, loaded.output_names) == (resnet.input_names, resnet.output_names)
    assert (loaded.input_shapes, loaded.output_shapes) == (resnet.input_shapes, resnet.output_shapes)
    assert len(loaded.weights) == len(resnet.weights)
    for a, b in zip(loaded.weights, resnet.weights, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    assert loaded.search_spaces().keys() == resnet.configs().keys()
    with pytest.raises(CompilationError, match="needs the linalg module"):
        loaded.emulate({"input": np.zeros(resnet.input_shapes["input"], np.float32)})
    (out / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(CompilationError, match="version 99"):
        CudaModel.load_kernels(out)
