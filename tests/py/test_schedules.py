"""CPU schedules: SearchSpace validation, and every template compiled with its default and
sampled configurations, compared with float64 numpy references.

Each model is compiled once with the defaults (which also gives each kernel's search space,
`CpuExecutable.schedules`), then with configurations sampled from those spaces (fixed seeds)
for every kernel at once; the configuration applied must be the one requested, and the
outputs must match the reference within RTOL/ATOL (float32 accumulation over at most a few
hundred terms).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy_reference as ref
import onnx
import pytest
from mlir import ir
from onnx import TensorProto, helper, numpy_helper

from woodpecker import compile as wpk_compile
from woodpecker.backend.cpu import CpuOptions
from woodpecker.backend.model import CompiledModel
from woodpecker.compiler import CompileOptions
from woodpecker.schedule import Constraint, InvalidConfigError, Knob, SearchSpace

RTOL, ATOL = 1e-4, 1e-5
SAMPLES = 2  # non-default configurations per model


# ----------------------------------------------------------------------------
# SearchSpace.


def _space() -> SearchSpace:
    return SearchSpace(
        kernel="k0_test",
        template="cpu.test",
        knobs=(
            Knob("tile", (1, 2, 4, 8), "outer tile"),
            Knob("reg", (1, 2, 4), "register tile"),
            Knob("shape", ((1, 1), (2, 2)), "a tuple knob"),
            Knob("parallel", (False, True)),
        ),
        default={"tile": 8, "reg": 2, "shape": [1, 1], "parallel": False},
        constraints=(
            Constraint(
                "reg divides tile",
                ("reg", "tile"),
                lambda c: None if c["tile"] % c["reg"] == 0 else f"reg={c['reg']} does not divide tile={c['tile']}",
            ),
        ),
    )


def test_validate_fills_defaults_and_normalizes_lists() -> None:
    space = _space()
    assert space.default["shape"] == (1, 1)
    assert space.validate(None) == space.default
    config = space.validate({"tile": 4, "shape": [2, 2]})
    assert config == {"tile": 4, "reg": 2, "shape": (2, 2), "parallel": False}


@pytest.mark.parametrize(
    ("partial", "knob", "reason"),
    [
        ({"tile_q": 4}, "tile_q", "is not a knob of cpu.test"),
        ({"tile": 3}, "tile", "value 3 is not in its domain [1, 2, 4, 8]"),
        ({"shape": [3, 3]}, "shape", "value (3, 3) is not in its domain"),
        ({"tile": 2, "reg": 4}, "reg", "reg=4 does not divide tile=2"),
    ],
)
def test_validate_rejects_with_kernel_knob_and_reason(partial: dict, knob: str, reason: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        _space().validate(partial)
    err = info.value
    assert (err.kernel, err.knob) == ("k0_test", knob)
    assert reason in err.reason
    assert str(err).startswith(f"kernel k0_test: knob '{knob}': ")
    assert isinstance(err, ValueError)


def test_invalid_default_is_a_template_bug() -> None:
    with pytest.raises(ValueError, match="default configuration of k0_bad is invalid"):
        SearchSpace("k0_bad", "cpu.test", (Knob("tile", (1, 2)),), {"tile": 3})


def test_repair_moves_knobs_to_the_nearest_valid_values() -> None:
    space = _space()
    assert space.repair({"tile": 2, "reg": 4}) == {"tile": 2, "reg": 2, "shape": (1, 1), "parallel": False}
    repaired = space.repair({"tile": 5, "unknown": 1})
    assert space.is_valid(repaired) and repaired["tile"] in (4, 8)


def test_sample_and_configs_give_valid_configurations() -> None:
    space = _space()
    rng = random.Random(0)
    samples = [space.sample(rng) for _ in range(50)]
    assert all(space.is_valid(c) for c in samples)
    assert len({tuple(sorted(c.items())) for c in samples}) > 5
    every = list(space.configs())
    assert len(every) < space.size and all(space.is_valid(c) for c in every)
    assert random.Random(3).choice(every) in every


# ----------------------------------------------------------------------------
# Models.


@dataclass
class Case:
    """A one-kernel-kind ONNX model, its random feeds and its float64 reference."""

    nodes: list[onnx.NodeProto]
    inputs: dict[str, tuple[int, ...]]
    output: tuple[str, tuple[int, ...]]
    reference: Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], np.ndarray]
    inits: dict[str, np.ndarray] = field(default_factory=dict)
    kinds: tuple[str, ...] = ()  # the kernel kinds it must produce
    layout: str = "nchw"  # CompileOptions.layout: these cases pin the kernels they are about

    def model(self) -> onnx.ModelProto:
        name, shape = self.output
        graph = helper.make_graph(
            self.nodes,
            "g",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in self.inputs.items()],
            [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)],
            [numpy_helper.from_array(a.astype(np.float32), n) for n, a in self.inits.items()],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    def feeds(self, seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        return {n: rng.standard_normal(s).astype(np.float32) for n, s in self.inputs.items()}


def _init(*shape: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 0.5


def _conv_reference(strides: tuple[int, int], pads: tuple[int, ...], groups: int, relu: bool) -> Callable:
    def reference(feeds: dict[str, np.ndarray], w: dict[str, np.ndarray]) -> np.ndarray:
        out = ref.conv2d(feeds["x"], w["w"], w.get("b"), strides, pads, (1, 1), groups)
        return np.maximum(out, 0) if relu else out

    return reference


def _conv_case(
    x: tuple[int, ...],
    w_shape: tuple[int, ...],
    out: tuple[int, ...],
    strides: tuple[int, int] = (1, 1),
    pads: tuple[int, ...] = (0, 0, 0, 0),
    groups: int = 1,
    bias: bool = True,
    relu: bool = False,
    kind: str = "conv",
) -> Case:
    inits = {"w": _init(*w_shape)}
    if bias:
        inits["b"] = _init(w_shape[0], seed=2)
    nodes = [
        helper.make_node(
            "Conv",
            ["x", "w", *(["b"] if bias else [])],
            ["c" if relu else "y"],
            strides=list(strides),
            pads=list(pads),
            group=groups,
        )
    ]
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    reference = _conv_reference(strides, pads, groups, relu)
    return Case(nodes, {"x": x}, ("y", out), reference, inits, (kind,))


def _pool_case(kind: str) -> Case:
    op = "MaxPool" if kind == "max" else "AveragePool"
    node = helper.make_node(op, ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])

    def reference(feeds: dict[str, np.ndarray], _: dict[str, np.ndarray]) -> np.ndarray:
        return ref.pool2d(feeds["x"], kind, (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False)

    return Case([node], {"x": (1, 16, 16, 32)}, ("y", (1, 16, 8, 16)), reference, kinds=("pool",))


def _matmul_case() -> Case:
    inits = {"b": _init(64, 48)}
    return Case(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        {"a": (32, 64)},
        ("y", (32, 48)),
        lambda f, w: f["a"].astype(np.float64) @ w["b"],
        inits,
        ("matmul",),
    )


def _batch_matmul_case() -> Case:
    return Case(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        {"a": (4, 16, 32), "b": (4, 32, 24)},
        ("y", (4, 16, 24)),
        lambda f, _: f["a"].astype(np.float64) @ f["b"],
        kinds=("matmul",),
    )


def _gemm_epilogue_case() -> Case:
    inits = {"b": _init(48, 64), "c": _init(48, seed=2)}
    nodes = [
        helper.make_node("Gemm", ["a", "b", "c"], ["g"], transB=1, alpha=0.5),
        helper.make_node("Relu", ["g"], ["y"]),
    ]

    def reference(f: dict[str, np.ndarray], w: dict[str, np.ndarray]) -> np.ndarray:
        return np.maximum(ref.gemm(f["a"], w["b"], w["c"], 0.5, 1.0, False, True), 0)

    return Case(nodes, {"a": (32, 64)}, ("y", (32, 48)), reference, inits, ("matmul",))


def _elementwise_case() -> Case:
    nodes = [
        helper.make_node("Add", ["x", "z"], ["s"]),
        helper.make_node("Relu", ["s"], ["r"]),
        helper.make_node("Mul", ["r", "x"], ["y"]),
    ]
    return Case(
        nodes,
        {"x": (8, 64), "z": (64,)},
        ("y", (8, 64)),
        lambda f, _: np.maximum(f["x"].astype(np.float64) + f["z"], 0) * f["x"],
        kinds=("elementwise",),
    )


def _reduce_mean_case() -> Case:
    return Case(
        [helper.make_node("ReduceMean", ["x"], ["y"], axes=[2], keepdims=0)],
        {"x": (4, 16, 32)},
        ("y", (4, 16)),
        lambda f, _: ref.reduce_mean(f["x"], [2], False),
        kinds=("reduction",),
    )


def _softmax_case() -> Case:
    return Case(
        [helper.make_node("Softmax", ["x"], ["y"], axis=-1)],
        {"x": (16, 64)},
        ("y", (16, 64)),
        lambda f, _: ref.softmax(f["x"], -1),
        kinds=("reduction", "elementwise"),
    )


def _blocked(case: Case, kind: str = "conv") -> Case:
    """The same convolution in the blocked layout (NCHW[x]c, every conv converted): its kernel is a
    blocked one, between the reorders in and out."""
    return dataclasses.replace(case, kinds=(f"blocked_{kind}_conv" if kind != "conv" else "blocked_conv",),
                               layout="blocked")


CASES: dict[str, Callable[[], Case]] = {
    "matmul": _matmul_case,
    "batch_matmul": _batch_matmul_case,
    "gemm_relu": _gemm_epilogue_case,
    "conv3x3_bias_relu": lambda: _conv_case(
        (1, 16, 12, 12), (16, 16, 3, 3), (1, 16, 12, 12), pads=(1, 1, 1, 1), relu=True
    ),
    "conv1x1": lambda: _conv_case((1, 16, 12, 12), (32, 16, 1, 1), (1, 32, 12, 12), bias=False),
    "conv_strided": lambda: _conv_case((1, 8, 17, 17), (16, 8, 3, 3), (1, 16, 8, 8), strides=(2, 2)),
    "depthwise": lambda: _conv_case(
        (1, 16, 12, 12), (16, 1, 3, 3), (1, 16, 12, 12), pads=(1, 1, 1, 1), groups=16, kind="depthwise_conv"
    ),
    "blocked_conv3x3_bias_relu": lambda: _blocked(
        _conv_case((1, 16, 12, 12), (16, 16, 3, 3), (1, 16, 12, 12), pads=(1, 1, 1, 1), relu=True)
    ),
    "blocked_conv1x1": lambda: _blocked(_conv_case((1, 16, 12, 12), (32, 16, 1, 1), (1, 32, 12, 12), bias=False)),
    "blocked_conv_strided": lambda: _blocked(_conv_case((1, 8, 17, 17), (16, 8, 3, 3), (1, 16, 8, 8), strides=(2, 2))),
    "blocked_depthwise": lambda: _blocked(
        _conv_case((1, 16, 12, 12), (16, 1, 3, 3), (1, 16, 12, 12), pads=(1, 1, 1, 1), groups=16), "depthwise"
    ),
    "maxpool": lambda: _pool_case("max"),
    "avgpool": lambda: _pool_case("avg"),
    "elementwise": _elementwise_case,
    "reduce_mean": _reduce_mean_case,
    "softmax": _softmax_case,
}
# Compiled serially too (the others only with parallel=True, as `wpk run` does).
SERIAL_TOO = {"matmul", "conv3x3_bias_relu", "depthwise", "softmax", "blocked_conv3x3_bias_relu", "blocked_depthwise"}


def _compile(case: Case, parallel: bool, schedules: dict | None = None) -> CompiledModel:
    # Generated kernels only: these tests are about our schedules (libraries: test_cpu_libraries.py).
    options = CompileOptions(
        cpu=CpuOptions(parallel=parallel, schedules=schedules), libraries="none", layout=case.layout
    )
    model = wpk_compile(case.model(), options=options)
    assert isinstance(model, CompiledModel)
    return model


def _check(case: Case, model: CompiledModel, what: str) -> None:
    feeds = case.feeds()
    (out,) = model.run(None, feeds)
    expected = case.reference(feeds, case.inits)
    np.testing.assert_allclose(out, expected, rtol=RTOL, atol=ATOL, err_msg=what)


def _configurations(model: CompiledModel, seed: int) -> list[dict[str, dict]]:
    """SAMPLES configurations for all kernels at once, different from the defaults if possible."""
    rng = random.Random(seed)
    found: list[dict[str, dict]] = []
    for _ in range(SAMPLES):
        config = {}
        for item in model.executable.schedules:
            sample = item.space.sample(rng)
            for _ in range(20):
                if sample != item.space.default:
                    break
                sample = item.space.sample(rng)
            config[item.kernel.name] = sample
        found.append(config)
    return found


def _params() -> list:
    params = []
    for name in CASES:
        params.append(pytest.param(name, True, id=f"{name}-parallel"))
        if name in SERIAL_TOO:
            params.append(pytest.param(name, False, id=f"{name}-serial"))
    return params


@pytest.mark.parametrize(("name", "parallel"), _params())
def test_default_and_sampled_configurations_match_numpy(name: str, parallel: bool) -> None:
    case = CASES[name]()
    default = _compile(case, parallel)
    kinds = {item.kernel.kind for item in default.executable.schedules}
    assert set(case.kinds) <= kinds, kinds
    assert all(item.is_default for item in default.executable.schedules)
    _check(case, default, f"{name}: default {[i.config for i in default.executable.schedules]}")
    for seed, config in enumerate(_configurations(default, seed=sum(map(ord, name)))):
        model = _compile(case, parallel, config)
        applied = {item.kernel.name: item.config for item in model.executable.schedules}
        assert applied == config, f"{name}: requested {config}, applied {applied}"
        _check(case, model, f"{name}: sample {seed} {config}")


def test_a_kind_entry_applies_to_every_kernel_of_that_kind() -> None:
    case = _softmax_case()
    model = _compile(case, True, {"reduction": {"chunks": 1, "vector": 0}})
    reductions = [i for i in model.executable.schedules if i.kernel.kind == "reduction"]
    assert len(reductions) == 2 and all(i.config == {"chunks": 1, "vector": 0} for i in reductions)
    _check(case, model, "softmax with scalar reductions")


def test_invalid_configuration_is_rejected_before_compiling() -> None:
    case = _matmul_case()
    with pytest.raises(InvalidConfigError, match=r"kernel k0_matmul: knob 'tile_m': value 5 is not in its domain"):
        _compile(case, True, {"k0_matmul": {"tile_m": 5}})
    with pytest.raises(InvalidConfigError, match=r"kernel k3_conv: configuration: names no kernel"):
        _compile(case, True, {"k3_conv": {}})


# ----------------------------------------------------------------------------
# Parallel code: what the old backend/parallelize.py tests checked, now through the schedules.


def _scheduled_ir(case: Case, parallel: bool, schedules: dict | None = None) -> str:
    """The module right after the schedules (the CPU backend stops there)."""
    seen: dict[str, str] = {}

    class Stop(Exception):
        pass

    def on_stage(stage: str, module: ir.Module) -> None:
        if stage == "linalg":
            from woodpecker.schedule import CpuMachine, apply_schedules

            apply_schedules(module, schedules, CpuMachine(threads=2 if parallel else 1))
            seen["ir"] = str(module)
            raise Stop

    with pytest.raises(Stop):
        wpk_compile(case.model(), options=CompileOptions(on_stage=on_stage, layout=case.layout))
    return seen["ir"]


def test_parallel_conv_splits_the_output_across_both_cores() -> None:
    """The conv, its fill and its epilogue are computed tile by tile in one scf.forall (an
    OpenMP loop after lowering), so both cores work on every stage of the kernel."""
    case = CASES["conv3x3_bias_relu"]()
    text = _scheduled_ir(case, True, {"conv": {"parallel": True}})
    body = text[text.index("scf.forall") :]
    assert body.count("scf.forall (") == 1
    inside = body[: body.index("scf.forall.in_parallel")]
    assert "vector.fma" in inside and "arith.maximumf" in inside  # conv and epilogue
    assert "vector.transfer_write %cst" in inside  # the fill
    serial = _scheduled_ir(case, False, {"conv": {"parallel": False}})
    assert "scf.forall" not in serial


def test_parallel_and_serial_code_agree() -> None:
    case = CASES["conv3x3_bias_relu"]()
    outputs = []
    for parallel in (False, True):
        model = _compile(case, parallel)
        assert model.stats.parallel == parallel
        outputs.append(model.run(None, case.feeds())[0])
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=RTOL, atol=ATOL)
