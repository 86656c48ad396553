#!/usr/bin/env python3
"""Export the issue-#16 model list to ONNX (random weights, batch 1, static shapes).

Needs PyTorch, torchvision, onnx, and for some models `transformers` and `ultralytics`
(optional extras, not CI dependencies); ONNX Runtime checks each export when installed:

    python tools/export_models.py [--out DIR] [--models bert_base,yolov8n,...] [--opset 17]

Nothing is downloaded: transformer models are built from their config objects, torchvision
models with `weights=None`, YOLOv8n from its model yaml, and the DBNet-style text detector is
defined here. Every BatchNorm gets random statistics (as in export_torchvision_models.py) so
that BatchNorm folding is not trivially exact. Each export is checked with onnx.checker and,
where onnxruntime imports, run once with ONNX Runtime.

The CNNs are exported with TorchScript (opset 17, every BatchNormalization kept); the
transformers, ViT, Swin and YOLOv8n with torch.export (opset 18), whose static graphs are free
of the shape arithmetic TorchScript leaves (needs onnxscript). Inputs: transformers take
`input_ids` and `attention_mask` (int64, 1 x 128); image models a float32 `input`
(1 x 3 x 224 x 224; YOLOv8n and DBNet 1 x 3 x 640 x 640).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from export_torchvision_models import SEED  # noqa: E402

DEFAULT_DIR = REPO / ".cache" / "models"
SEQUENCE = 128
VOCAB = 1000  # token ids drawn below this (every config's vocabulary is larger)


@dataclass(frozen=True)
class Spec:
    """How one model is built and what it takes."""

    build: Callable[[], object]  # -> torch.nn.Module in eval mode
    inputs: str  # "tokens" or "image"
    size: int = 224  # image side
    needs: tuple[str, ...] = ()
    # "torchscript" keeps every BatchNormalization (what Woodpecker's folding is tested on);
    # "dynamo" (torch.export, opset >= 18) for the models whose TorchScript graph is mostly
    # shape arithmetic (Swin-T: 473 Shape, 322 Slice nodes) that a static export does not need.
    exporter: str = "torchscript"


def _randomize_batchnorm(model):  # (torch.nn.Module) -> torch.nn.Module
    import torch

    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(0.5 + torch.rand(c, generator=generator))
                module.bias.copy_(0.1 * torch.randn(c, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(c, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(c, generator=generator))
    return model.eval()


def _torchvision(name: str) -> Callable[[], object]:
    def build():
        import torch
        import torchvision

        torch.manual_seed(SEED)
        return _randomize_batchnorm(getattr(torchvision.models, name)(weights=None))

    return build


class _HiddenStates:
    """Wraps a transformers model so the export has one output, `last_hidden_state`."""

    @staticmethod
    def wrap(model):
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask):
                return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        return Wrapped().eval()


def _transformer(kind: str) -> Callable[[], object]:
    def build():
        import torch
        import transformers

        torch.manual_seed(SEED)
        if kind == "bert_base":
            config = transformers.BertConfig()
            model = transformers.BertModel(config, add_pooling_layer=False)
        elif kind == "distilbert":
            model = transformers.DistilBertModel(transformers.DistilBertConfig())
        else:
            model = transformers.GPT2Model(transformers.GPT2Config(use_cache=False))
        model.config._attn_implementation = "eager"
        return _HiddenStates.wrap(model.eval())

    return build


def _yolov8n():
    import torch
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(SEED)
    model = DetectionModel("yolov8n.yaml", ch=3, nc=80, verbose=False)
    model = _randomize_batchnorm(model)
    for module in model.modules():
        if type(module).__name__ == "Detect":
            module.export = True  # one (1, 84, 8400) output, no training-mode tuple
            module.format = "onnx"
    return model


def _dbnet():
    """A DBNet-style text detector: ResNet-18-like backbone, FPN neck (upsample, add, concat),
    a probability-map head with transposed convolutions and a sigmoid."""
    import torch
    from torch import nn

    def block(cin: int, cout: int, stride: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )

    class DBNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 32, 7, 2, 3, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(3, 2, 1))
            widths = (32, 64, 128, 256)
            self.stages = nn.ModuleList(block(w_in, w, 1 if i == 0 else 2)
                                        for i, (w_in, w) in enumerate(zip((32, *widths[:-1]), widths, strict=True)))
            inner = 64
            self.lateral = nn.ModuleList(nn.Conv2d(w, inner, 1, bias=False) for w in widths)
            self.smooth = nn.ModuleList(nn.Conv2d(inner, inner // 4, 3, 1, 1, bias=False) for _ in widths)
            self.head = nn.Sequential(
                nn.Conv2d(inner, inner // 4, 3, 1, 1, bias=False), nn.BatchNorm2d(inner // 4), nn.ReLU(inplace=True),
                nn.ConvTranspose2d(inner // 4, inner // 4, 2, 2), nn.BatchNorm2d(inner // 4), nn.ReLU(inplace=True),
                nn.ConvTranspose2d(inner // 4, 1, 2, 2),
            )

        def forward(self, x):
            x = self.stem(x)
            features = []
            for stage in self.stages:
                x = stage(x)
                features.append(x)
            laterals = [conv(f) for conv, f in zip(self.lateral, features, strict=True)]
            for i in range(len(laterals) - 1, 0, -1):
                laterals[i - 1] = laterals[i - 1] + nn.functional.interpolate(laterals[i], scale_factor=2.0,
                                                                              mode="nearest")
            maps = [conv(f) for conv, f in zip(self.smooth, laterals, strict=True)]
            maps = [maps[0]] + [nn.functional.interpolate(m, scale_factor=2.0 ** i, mode="nearest")
                                for i, m in enumerate(maps[1:], start=1)]
            return torch.sigmoid(self.head(torch.cat(maps, dim=1)))

    torch.manual_seed(SEED)
    return _randomize_batchnorm(DBNet())


MODELS: dict[str, Spec] = {
    "bert_base": Spec(_transformer("bert_base"), "tokens", needs=("transformers",), exporter="dynamo"),
    "distilbert": Spec(_transformer("distilbert"), "tokens", needs=("transformers",), exporter="dynamo"),
    "gpt2": Spec(_transformer("gpt2"), "tokens", needs=("transformers",), exporter="dynamo"),
    "vit_b_16": Spec(_torchvision("vit_b_16"), "image", exporter="dynamo"),
    "swin_t": Spec(_torchvision("swin_t"), "image", exporter="dynamo"),
    "convnext_tiny": Spec(_torchvision("convnext_tiny"), "image"),
    "mobilenet_v3_large": Spec(_torchvision("mobilenet_v3_large"), "image"),
    "regnet_y_400mf": Spec(_torchvision("regnet_y_400mf"), "image"),
    "efficientnet_b0": Spec(_torchvision("efficientnet_b0"), "image"),
    "yolov8n": Spec(_yolov8n, "image", size=640, needs=("ultralytics",), exporter="dynamo"),
    "dbnet": Spec(_dbnet, "image", size=640),
}


def example_inputs(spec: Spec) -> tuple[tuple, list[str]]:
    import torch

    generator = torch.Generator().manual_seed(SEED)
    if spec.inputs == "tokens":
        ids = torch.randint(0, VOCAB, (1, SEQUENCE), generator=generator, dtype=torch.int64)
        return (ids, torch.ones(1, SEQUENCE, dtype=torch.int64)), ["input_ids", "attention_mask"]
    return (torch.randn(1, 3, spec.size, spec.size, generator=generator),), ["input"]


def export(name: str, out_dir: Path, opset: int) -> Path:
    """Writes `<out_dir>/<name>.onnx` (checked with onnx.checker, run with ORT) and returns it."""
    import numpy as np
    import onnx
    import torch

    spec = MODELS[name]
    model = spec.build()
    example, input_names = example_inputs(spec)
    path, tmp = out_dir / f"{name}.onnx", out_dir / f"{name}.tmp.onnx"
    torch.backends.mha.set_fastpath_enabled(False)  # ViT: plain ops, not aten::_native_multi_head_attention
    names = {"input_names": input_names, "output_names": ["output"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = model(*example)  # before exporting: tracing may leave fake tensors in caches (YOLOv8 anchors)
        if spec.exporter == "dynamo":
            program = torch.onnx.export(model, example, dynamo=True, opset_version=max(opset, 18),
                                        external_data=False, **names)
            program.save(str(tmp), external_data=False)
        else:
            torch.onnx.export(model, example, str(tmp), dynamo=False, opset_version=opset,
                              training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True, **names)
    proto = onnx.load(str(tmp))
    onnx.checker.check_model(proto, full_check=True)
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if ort is not None:
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {n: t.numpy() for n, t in zip(input_names, example, strict=True)})
        want = expected.numpy()
        rel = float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))
        if rel > 1e-3:
            raise RuntimeError(f"{name}: ONNX Runtime differs from PyTorch (relative L2 {rel:.2e})")
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help=f"output directory (default: {DEFAULT_DIR})")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {', '.join(MODELS)}")
    parser.add_argument("--opset", type=int, default=17,
                        help="ONNX opset (default: 17; at least 18 for the models exported with dynamo)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name in names:
        spec = MODELS[name]
        extra = ("onnxscript",) if spec.exporter == "dynamo" else ()
        missing = [m for m in ("torch", "torchvision", "onnx", *spec.needs, *extra) if not _imports(m)]
        if missing:
            print(f"{name}: skipped ({', '.join(missing)} not installed)", file=sys.stderr)
            failed += 1
            continue
        try:
            path = export(name, args.out, args.opset)
        except Exception as err:  # one model's failure is one line; the others still export
            print(f"{name}: export failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                  file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)", flush=True)
    return 1 if failed else 0


def _imports(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
