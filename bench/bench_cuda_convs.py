"""The convolutions of ResNet-18/50 and VGG-16, one layer at a time: Woodpecker's generated kernel,
cuDNN through Woodpecker's plan, the plan's own choice, and PyTorch, on one NVIDIA GPU.

    python bench/bench_cuda_convs.py [--models resnet50 resnet18 vgg16] [--batch 1 8] [--rounds 5]
                                     [--repeat 20] [--db RECORDS.db] [--max-layers N] [--json OUT]
    python bench/bench_cuda_convs.py --compile-only ...      # no GPU needed: the plans only

Layers: the distinct convolutions (input shape, filter, stride, pads, groups, and whether a ReLU
follows: cuDNN and our kernels fuse it) of ResNet-18 and ResNet-50, read from
.cache/models/<model>.onnx with ONNX shape inference when the file is there (exported by
tools/export_torchvision_models.py), else from the built-in tables below (the same layers), plus
VGG-16's 13 convolutions (3x3, pad 1, ReLU; built in). Batch norm is folded, so every layer is
Conv + bias (+ ReLU); f32 everywhere.

Per layer and batch, a one-node ONNX model (Conv with bias, Relu when the layer has one) is
compiled for CUDA three ways:

  generated  libraries="none": our kernel, default schedule (the best tuning record with --db);
  cuDNN      libraries="cudnn", select="heuristic": the plan calls cuDNN (TF32 off);
  choice     libraries="all", select="measure" on a GPU (recorded choices in --db are reused, new
             ones stored there; without --db in a scratch database), "records"/"heuristic" with
             --compile-only (or --select).

Woodpecker's generated kernel pads in a launch of its own (a `gather`) before a padded
convolution, inside the layer's one step: its time is part of the generated plan's time (cuDNN
pads itself). Each plan is timed by its executor (`executor.time`: CUDA
graph replay, CUDA events, L2 flushed before each repeat); PyTorch runs
`torch.nn.functional.conv2d` (+ bias, + relu) with cudnn.benchmark=True and TF32 off, captured
in a CUDA graph too (--torch-eager: launched eagerly), timed the same way. The candidates
alternate round by round (--rounds, each round --repeat timed runs after --warmup); the table
shows medians. Each plan's output is checked against PyTorch's (ONNX Runtime's on the CPU when
PyTorch is missing): relative L2 error <= 1e-4, else the row is marked MISMATCH.

Without a usable GPU the script says so and exits with code 2 (unless --compile-only).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cuda_common as cc

MODELS = ("resnet50", "resnet18", "vgg16")
CANDIDATES = ("generated", "cudnn", "choice")


@dataclass(frozen=True)
class ConvLayer:
    """One distinct convolution: NCHW input (batch aside), KCRS filter, and its epilogue."""

    name: str
    cin: int
    h: int
    w: int
    cout: int
    kh: int
    kw: int
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]  # ONNX order: top, left, bottom, right
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    relu: bool = True
    count: int = 1  # how many layers of the model have this shape

    @property
    def key(self) -> tuple:
        return (self.cin, self.h, self.w, self.cout, self.kh, self.kw, self.stride, self.pads, self.dilation,
                self.groups, self.relu)

    @property
    def out_hw(self) -> tuple[int, int]:
        t, left, b, r = self.pads
        oh = (self.h + t + b - self.dilation[0] * (self.kh - 1) - 1) // self.stride[0] + 1
        ow = (self.w + left + r - self.dilation[1] * (self.kw - 1) - 1) // self.stride[1] + 1
        return oh, ow

    def describe(self) -> str:
        pads = self.pads[0] if len(set(self.pads)) == 1 else "/".join(map(str, self.pads))
        stride = self.stride[0] if self.stride[0] == self.stride[1] else f"{self.stride[0]}x{self.stride[1]}"
        text = f"{self.cin}x{self.h}x{self.w} {self.kh}x{self.kw}/s{stride}/p{pads} -> {self.cout}"
        if self.groups != 1:
            text += f" g{self.groups}"
        if self.dilation != (1, 1):
            text += f" d{self.dilation[0]}"
        return text + (" +relu" if self.relu else "")

    def flops(self, batch: int) -> int:
        oh, ow = self.out_hw
        return 2 * batch * self.cout * oh * ow * (self.cin // self.groups) * self.kh * self.kw


def _square(name: str, cin: int, hw: int, cout: int, k: int, stride: int, pad: int, relu: bool,
            count: int) -> ConvLayer:
    return ConvLayer(name, cin, hw, hw, cout, k, k, (stride, stride), (pad,) * 4, relu=relu, count=count)


# The distinct convolutions of torchvision's ResNets at 224x224 (what the ONNX export has):
# (first layer's name, C in, H = W, K out, kernel, stride, pad, relu follows, how many).
RESNET18 = [
    ("conv1", 3, 224, 64, 7, 2, 3, True, 1),
    ("layer1.0.conv1", 64, 56, 64, 3, 1, 1, True, 2),
    ("layer1.0.conv2", 64, 56, 64, 3, 1, 1, False, 2),
    ("layer2.0.conv1", 64, 56, 128, 3, 2, 1, True, 1),
    ("layer2.0.conv2", 128, 28, 128, 3, 1, 1, False, 2),
    ("layer2.0.downsample.0", 64, 56, 128, 1, 2, 0, False, 1),
    ("layer2.1.conv1", 128, 28, 128, 3, 1, 1, True, 1),
    ("layer3.0.conv1", 128, 28, 256, 3, 2, 1, True, 1),
    ("layer3.0.conv2", 256, 14, 256, 3, 1, 1, False, 2),
    ("layer3.0.downsample.0", 128, 28, 256, 1, 2, 0, False, 1),
    ("layer3.1.conv1", 256, 14, 256, 3, 1, 1, True, 1),
    ("layer4.0.conv1", 256, 14, 512, 3, 2, 1, True, 1),
    ("layer4.0.conv2", 512, 7, 512, 3, 1, 1, False, 2),
    ("layer4.0.downsample.0", 256, 14, 512, 1, 2, 0, False, 1),
    ("layer4.1.conv1", 512, 7, 512, 3, 1, 1, True, 1),
]
RESNET50 = [
    ("conv1", 3, 224, 64, 7, 2, 3, True, 1),
    ("layer1.0.conv1", 64, 56, 64, 1, 1, 0, True, 1),
    ("layer1.0.conv2", 64, 56, 64, 3, 1, 1, True, 3),
    ("layer1.0.conv3", 64, 56, 256, 1, 1, 0, False, 4),
    ("layer1.1.conv1", 256, 56, 64, 1, 1, 0, True, 2),
    ("layer2.0.conv1", 256, 56, 128, 1, 1, 0, True, 1),
    ("layer2.0.conv2", 128, 56, 128, 3, 2, 1, True, 1),
    ("layer2.0.conv3", 128, 28, 512, 1, 1, 0, False, 4),
    ("layer2.0.downsample.0", 256, 56, 512, 1, 2, 0, False, 1),
    ("layer2.1.conv1", 512, 28, 128, 1, 1, 0, True, 3),
    ("layer2.1.conv2", 128, 28, 128, 3, 1, 1, True, 3),
    ("layer3.0.conv1", 512, 28, 256, 1, 1, 0, True, 1),
    ("layer3.0.conv2", 256, 28, 256, 3, 2, 1, True, 1),
    ("layer3.0.conv3", 256, 14, 1024, 1, 1, 0, False, 6),
    ("layer3.0.downsample.0", 512, 28, 1024, 1, 2, 0, False, 1),
    ("layer3.1.conv1", 1024, 14, 256, 1, 1, 0, True, 5),
    ("layer3.1.conv2", 256, 14, 256, 3, 1, 1, True, 5),
    ("layer4.0.conv1", 1024, 14, 512, 1, 1, 0, True, 1),
    ("layer4.0.conv2", 512, 14, 512, 3, 2, 1, True, 1),
    ("layer4.0.conv3", 512, 7, 2048, 1, 1, 0, False, 3),
    ("layer4.0.downsample.0", 1024, 14, 2048, 1, 2, 0, False, 1),
    ("layer4.1.conv1", 2048, 7, 512, 1, 1, 0, True, 2),
    ("layer4.1.conv2", 512, 7, 512, 3, 1, 1, True, 2),
]
# VGG-16 (configuration D): 13 convolutions, 3x3, stride 1, pad 1, each followed by ReLU.
VGG16_CONVS = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56), (256, 256, 56),
               (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 28), (512, 512, 14), (512, 512, 14),
               (512, 512, 14)]
_VGG_BLOCKS = (2, 2, 3, 3, 3)


def _vgg16() -> list[ConvLayer]:
    names = [f"conv{block + 1}_{i + 1}" for block, n in enumerate(_VGG_BLOCKS) for i in range(n)]
    layers = [_square(name, cin, hw, cout, 3, 1, 1, True, 1) for name, (cin, cout, hw) in zip(names, VGG16_CONVS,
                                                                                               strict=True)]
    return _distinct(layers)


def _distinct(layers: Sequence[ConvLayer]) -> list[ConvLayer]:
    """One layer per key (the first one's name), with the count of layers of that key."""
    found: dict[tuple, ConvLayer] = {}
    for layer in layers:
        if layer.key in found:
            first = found[layer.key]
            found[layer.key] = ConvLayer(**{**asdict(first), "count": first.count + layer.count})
        else:
            found[layer.key] = layer
    return list(found.values())


def _node_name(name: str) -> str:
    """`/layer2/layer2.0/downsample/downsample.0/Conv` -> `layer2.0.downsample.0`."""
    parts = [p for p in name.strip("/").split("/") if p][:-1] or [name or "conv"]
    kept = [p for i, p in enumerate(parts) if i + 1 == len(parts) or not parts[i + 1].startswith(p + ".")]
    return ".".join(kept)


def layers_from_onnx(path: Path) -> list[ConvLayer]:
    """The distinct Conv nodes of an ONNX model (shapes by ONNX shape inference); a ReLU counts
    as the layer's when it reads the conv's output directly or through one BatchNormalization."""
    import onnx
    from onnx import shape_inference

    model = shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    shapes = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value for d in dims]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def feeds_relu(value: str, depth: int = 0) -> bool:
        users = consumers.get(value, [])
        if len(users) != 1:
            return False
        (user,) = users
        if user.op_type == "Relu":
            return True
        return depth == 0 and user.op_type == "BatchNormalization" and feeds_relu(user.output[0], 1)

    layers = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        x, w = shapes.get(node.input[0]), shapes.get(node.input[1])
        if not x or not w or len(x) != 4 or len(w) != 4 or not all(x[1:]):
            raise ValueError(f"{path}: conv {node.name} has no static 2-D shapes ({x}, {w})")
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise ValueError(f"{path}: conv {node.name} uses auto_pad, which this benchmark does not read")
        pads = tuple(attrs.get("pads", [0, 0, 0, 0]))
        layers.append(ConvLayer(
            name=_node_name(node.name),
            cin=x[1], h=x[2], w=x[3], cout=w[0], kh=w[2], kw=w[3],
            stride=tuple(attrs.get("strides", [1, 1])),
            pads=(pads[0], pads[1], pads[2], pads[3]),
            dilation=tuple(attrs.get("dilations", [1, 1])),
            groups=int(attrs.get("group", 1)),
            relu=feeds_relu(node.output[0]),
        ))
    return _distinct(layers)


def model_layers(name: str, models_dir: Path) -> tuple[list[ConvLayer], str]:
    """(the distinct layers of model `name`, where they came from)."""
    if name == "vgg16":
        return _vgg16(), "built-in table"
    table = {"resnet18": RESNET18, "resnet50": RESNET50}[name]
    path = models_dir / f"{name}.onnx"
    if path.exists():
        try:
            return layers_from_onnx(path), str(path)
        except Exception as err:  # a model file this reader cannot take: the table has the same layers
            print(f"note: {path}: {err}; using the built-in table", file=sys.stderr)
    return _distinct([_square(*row) for row in table]), "built-in table"


# -- one layer ----------------------------------------------------------------------------------------


def conv_onnx(layer: ConvLayer, batch: int, seed: int = 0) -> tuple[Any, np.ndarray, np.ndarray]:
    """(a one-node ONNX model: input -> Conv(w, b) [-> Relu] -> output, its weight, its bias)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    fan_in = (layer.cin // layer.groups) * layer.kh * layer.kw
    weight = (rng.standard_normal((layer.cout, layer.cin // layer.groups, layer.kh, layer.kw))
              * np.sqrt(2.0 / fan_in)).astype(np.float32)
    bias = (rng.standard_normal(layer.cout) * 0.1).astype(np.float32)
    conv_out = "conv" if layer.relu else "output"
    nodes = [helper.make_node("Conv", ["input", "w", "b"], [conv_out], kernel_shape=[layer.kh, layer.kw],
                              strides=list(layer.stride), pads=list(layer.pads), dilations=list(layer.dilation),
                              group=layer.groups)]
    if layer.relu:
        nodes.append(helper.make_node("Relu", [conv_out], ["output"]))
    oh, ow = layer.out_hw
    graph = helper.make_graph(
        nodes, f"conv_{layer.name}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, layer.cin, layer.h, layer.w])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, layer.cout, oh, ow])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, weight, bias


def torch_conv(torch: Any, layer: ConvLayer, x: Any, weight: Any, bias: Any):
    """PyTorch's version of the layer as a callable (asymmetric pads: an explicit F.pad first)."""
    functional = torch.nn.functional
    t, left, b, r = layer.pads
    symmetric = t == b and left == r
    padding = (t, left) if symmetric else 0

    def run():
        inp = x if symmetric else functional.pad(x, (left, r, t, b))
        y = functional.conv2d(inp, weight, bias, stride=layer.stride, padding=padding, dilation=layer.dilation,
                              groups=layer.groups)
        return functional.relu(y) if layer.relu else y

    return run


def onnxruntime_reference(model: Any, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


@dataclass
class LayerResult:
    model: str
    batch: int
    layer: str
    shape: str
    count: int
    gflop: float
    plans: dict[str, dict[str, Any]]  # candidate -> summary (+ conv choice, errors, fallbacks)
    ms: dict[str, float | None]  # generated, cudnn, choice, pytorch
    rel_l2: dict[str, float | None]
    mismatch: list[str]
    errors: dict[str, str]

    @property
    def choice(self) -> str:
        return self.plans.get("choice", {}).get("conv", "-")


def compile_layer(layer: ConvLayer, batch: int, args: argparse.Namespace, arch: str, mode: str,
                  measure_db: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, str], Any]:
    """The three plans of one layer: (models, summaries, compile errors, the ONNX model)."""
    import woodpecker

    proto, weight, bias = conv_onnx(layer, batch)
    models, summaries, errors = {}, {}, {}
    for which in CANDIDATES:
        options = cc.plan_options(which, arch, args.db, mode, measure_db)
        start = time.perf_counter()
        try:
            model = woodpecker.compile(proto, options=options)
        except Exception as err:
            errors[which] = f"compile: {type(err).__name__}: {err}"
            continue
        models[which] = model
        summary = cc.plan_summary(model)
        summary["conv"] = cc.conv_choice(model)
        summary["compile_s"] = time.perf_counter() - start
        summaries[which] = summary
    return models, summaries, errors, (proto, weight, bias)


def bench_layer(model_name: str, layer: ConvLayer, batch: int, args: argparse.Namespace, arch: str, mode: str,
                measure_db: str, torch: Any, timer: Any) -> LayerResult:
    models, summaries, errors, (proto, weight, bias) = compile_layer(layer, batch, args, arch, mode, measure_db)
    result = LayerResult(model_name, batch, layer.name, layer.describe(), layer.count, layer.flops(batch) / 1e9,
                         summaries, {}, {}, [], errors)
    if args.compile_only:
        return result
    try:
        rng = np.random.default_rng(1)
        x = rng.standard_normal((batch, layer.cin, layer.h, layer.w)).astype(np.float32)
        timers = {}
        if torch is not None:
            dev = torch.device("cuda")
            tx = torch.from_numpy(x).to(dev)
            tw = torch.from_numpy(weight).to(dev)
            tb = torch.from_numpy(bias).to(dev)
            fn = torch_conv(torch, layer, tx, tw, tb)
            with torch.no_grad():
                expected = fn().float().cpu().numpy()
            if args.torch_eager:
                timers["pytorch"] = timer.timer(fn, args.repeat, args.warmup)
            else:
                try:
                    replay, _ = cc.cuda_graphed(torch, fn)
                    timers["pytorch"] = timer.timer(replay, args.repeat, args.warmup)
                except Exception as err:
                    errors["pytorch-graph"] = f"CUDA graph capture failed, timed eagerly: {err}"
                    timers["pytorch"] = timer.timer(fn, args.repeat, args.warmup)
        else:
            expected = onnxruntime_reference(proto, x)
        for which, model in models.items():
            try:
                (got,) = model.run(["output"], {"input": x})
            except Exception as err:
                errors[which] = f"run: {type(err).__name__}: {err}"
                continue
            error = cc.rel_l2(got, expected)
            result.rel_l2[which] = error
            if not error <= cc.TOLERANCE:
                result.mismatch.append(which)
            fallbacks = cc.executor_fallbacks(model)
            if fallbacks:
                summaries[which]["fallbacks"] = fallbacks
            split = cc.executor_split(model)
            if split:
                summaries[which]["split"] = split
            timers[which] = cc.plan_timer(model, args.repeat, args.warmup)
        order = [name for name in (*CANDIDATES, "pytorch") if name in timers]

        def failed(name: str, err: BaseException) -> None:
            errors[name] = f"timing: {type(err).__name__}: {err}"

        samples = cc.alternate({name: timers[name] for name in order}, args.rounds, failed)
        result.ms = {name: cc.median_ms(samples.get(name)) for name in (*CANDIDATES, "pytorch")}
    finally:
        for model in models.values():
            model.close()
    return result


# -- reporting -----------------------------------------------------------------------------------------


def print_compile_only(model_name: str, batch: int, results: Sequence[LayerResult]) -> None:
    print(f"\n### {model_name}, batch {batch}: plans (compile only)\n")
    rows = []
    for r in results:
        cells = [r.layer, r.shape, str(r.count)]
        for which in CANDIDATES:
            summary = r.plans.get(which)
            cells.append(cc.summary_text(summary) if summary else f"error: {r.errors.get(which, '?')}")
        cells.append(r.choice)
        rows.append(cells)
    print(cc.markdown_table(["layer", "shape", "n", "generated plan", "cuDNN plan", "choice plan", "choice"], rows,
                            [False, False, True, False, False, False, False]))


def _ms_cell(result: LayerResult, which: str) -> str:
    text = cc.fmt_ms(result.ms.get(which))
    plan = result.plans.get(which, {})
    if which == "cudnn" and plan and (not plan.get("conv", "").startswith("cudnn") or plan.get("fallbacks")):
        text += " (not cuDNN)"  # no cuDNN call for this conv, or the executor could not run it: see the notes
    if which in result.mismatch:
        text += " MISMATCH"
    return text


def print_timings(model_name: str, batch: int, results: Sequence[LayerResult], torch_label: str) -> None:
    print(f"\n### {model_name}, batch {batch}: median ms per layer ({torch_label})\n")
    rows = []
    for r in results:
        ms = r.ms
        rows.append([
            r.layer, r.shape, str(r.count), _ms_cell(r, "generated"), _ms_cell(r, "cudnn"), r.choice,
            _ms_cell(r, "choice"), cc.fmt_ms(ms.get("pytorch")),
            cc.fmt_ratio(cc.ratio(ms.get("choice"), ms.get("pytorch"))),
            cc.fmt_ratio(cc.ratio(ms.get("generated"), ms.get("cudnn"))),
        ])
    headers = ["layer", "shape", "n", "generated ms", "cuDNN (ours) ms", "choice", "choice ms", "PyTorch ms",
               "choice / PyTorch", "generated / cuDNN"]
    print(cc.markdown_table(headers, rows, [False, False, True, True, True, False, True, True, True, True]))
    choice_torch = cc.geomean([cc.ratio(r.ms.get("choice"), r.ms.get("pytorch")) for r in results])
    gen_cudnn = cc.geomean([cc.ratio(r.ms.get("generated"), r.ms.get("cudnn")) for r in results])
    gen_torch = cc.geomean([cc.ratio(r.ms.get("generated"), r.ms.get("pytorch")) for r in results])
    print(f"\ngeometric means over {len(results)} distinct layers: choice / PyTorch {cc.fmt_ratio(choice_torch)}, "
          f"generated / cuDNN {cc.fmt_ratio(gen_cudnn)}, generated / PyTorch {cc.fmt_ratio(gen_torch)}")
    totals = {}
    for which in (*CANDIDATES, "pytorch"):
        values = [(r.ms.get(which), r.count) for r in results]
        if values and all(v is not None for v, _ in values):
            totals[which] = sum(v * n for v, n in values)
    if totals:
        text = ", ".join(f"{name} {value:.3f} ms" for name, value in totals.items())
        print(f"sum over the model's conv layers (ms x n): {text}")
    for r in results:
        notes = [f"{which}: {error}" for which, error in r.errors.items()]
        notes += [f"{which} rel L2 {r.rel_l2.get(which, float('nan')):.2e} > {cc.TOLERANCE:g}" for which in r.mismatch]
        for which, summary in r.plans.items():
            if which == "cudnn" and not summary.get("conv", "").startswith("cudnn"):
                notes.append(f"cudnn: the plan has no cuDNN call for this conv ({summary.get('conv')})")
            for step, why in summary.get("fallbacks", {}).items():
                notes.append(f"{which}: step {step} ran its generated kernel instead: {why}")
            for step, why in summary.get("split", {}).items():
                notes.append(f"{which}: step {step} ran the plain cuDNN call + its epilogue kernel: {why}")
        for note in notes:
            print(f"  note: {r.layer}: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cc.add_common_arguments(parser, MODELS, "how the plan's choice is made")
    parser.add_argument("--max-layers", type=int, help="only the first N distinct layers of each model")
    parser.add_argument("--models-dir", type=Path, default=cc.MODELS_DIR,
                        help=f"where resnet18.onnx / resnet50.onnx are looked for (default {cc.MODELS_DIR})")
    parser.add_argument("--torch-eager", action="store_true",
                        help="launch PyTorch's conv eagerly (default: captured in a CUDA graph, like the plans)")
    args = parser.parse_args(argv)
    cc.check_common_arguments(parser, args)

    target = cc.resolve_target(args, "bench_cuda_convs.py")
    if target is None:
        return cc.NO_GPU_EXIT
    reason, arch, mode = target
    has_gpu = reason is None
    torch, timer, torch_label = None, None, "PyTorch: -"
    if not args.compile_only:
        from woodpecker.runtime.cuda.launch import device_info

        torch, why = cc.import_torch()
        if torch is None:
            print(f"note: no PyTorch column: {why}; outputs are checked against ONNX Runtime (CPU) instead")
        else:
            timer = cc.TorchTimer(torch)
            graph = "eager" if args.torch_eager else "CUDA graph"
            torch_label = f"PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {graph}"
        info = device_info()
        print(f"device: {info.name} ({info.arch}); plans for {arch}; choice: select={mode}"
              f"{' with ' + args.db if args.db else ''}; {args.rounds} rounds x {args.repeat} runs, medians")
    else:
        print(f"compile only: plans for {arch}; choice: select={mode}{' with ' + args.db if args.db else ''}"
              f"{'' if has_gpu else f' (no GPU: {reason})'}")

    everything: list[LayerResult] = []
    with tempfile.TemporaryDirectory(prefix="wpk-bench-convs-") as scratch:
        measure_db = str(Path(scratch) / "selection.db")
        for model_name in args.models:
            layers, source = model_layers(model_name, args.models_dir)
            if args.max_layers is not None:
                layers = layers[: args.max_layers]
            print(f"\n{model_name}: {len(layers)} distinct conv layers ({source})", flush=True)
            for batch in args.batch:
                results = []
                for layer in layers:
                    result = bench_layer(model_name, layer, batch, args, arch, mode, measure_db, torch, timer)
                    results.append(result)
                    _progress(result, args.compile_only)
                everything += results
                if args.compile_only:
                    print_compile_only(model_name, batch, results)
                else:
                    print_timings(model_name, batch, results, torch_label)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in everything], indent=1, default=str) + "\n")
        print(f"\nwrote {args.json}")
    failed = any(r.mismatch for r in everything)
    return 1 if failed else 0


def _progress(result: LayerResult, compile_only: bool) -> None:
    if compile_only:
        plans = "; ".join(f"{which}: {cc.summary_text(s)}" for which, s in result.plans.items())
        errors = "; ".join(f"{which}: {e}" for which, e in result.errors.items())
        print(f"  {result.layer} [{result.shape}] b{result.batch}: {plans}{'; ' + errors if errors else ''}",
              flush=True)
    else:
        times = ", ".join(f"{k} {cc.fmt_ms(v)}" for k, v in result.ms.items())
        print(f"  {result.layer} [{result.shape}] b{result.batch}: {times}"
              f"{' MISMATCH ' + ','.join(result.mismatch) if result.mismatch else ''}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
