#!/usr/bin/env python3
"""Export torchvision models to ONNX for the real-model tests and benchmarks.

Needs PyTorch and torchvision (an optional extra, not a CI dependency):

    pip install torch torchvision            # plus onnxscript for --exporter dynamo
    python tools/export_torchvision_models.py [--out DIR] [--models resnet18,resnet50,mobilenet_v2]

Each model gets random weights (fixed seed, nothing is downloaded), including
random BatchNorm statistics (torchvision initializes running_mean=0,
running_var=1, weight=1, bias=0, which would make BatchNorm folding trivially
exact), is put in eval mode and exported for batch 1, 3x224x224, with one input
`input` and one output `logits`, as `<DIR>/<name>.onnx` (default DIR:
`<repo>/.cache/models/`, where tests/py/test_real_models.py and
bench/bench_graph_opt.py look). The weights are stored inside the .onnx file.

The default exporter is PyTorch's TorchScript-based one with
`training=TrainingMode.PRESERVE`, which keeps every BatchNormalization node (as
ONNX model-zoo graphs have them), so Woodpecker's own BatchNorm folding is what
the tests exercise. `--exporter dynamo` uses the torch.export-based exporter,
whose graph optimizer already folds BatchNorm into the convolutions.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO / ".cache" / "models"
MODELS = ("resnet18", "resnet50", "mobilenet_v2")
EXPORTERS = ("torchscript", "dynamo")
INPUT_SHAPE = (1, 3, 224, 224)
SEED = 0


def build(name: str):  # -> torch.nn.Module
    """torchvision `name` with random weights and random BatchNorm statistics, in eval mode."""
    import torch
    import torchvision

    torch.manual_seed(SEED)
    model = getattr(torchvision.models, name)(weights=None)
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


def export(name: str, out_dir: Path, exporter: str, opset: int) -> Path:
    """Writes `<out_dir>/<name>.onnx` (checked with onnx.checker) and returns its path."""
    import onnx
    import torch

    model = build(name)
    example = (torch.randn(*INPUT_SHAPE, generator=torch.Generator().manual_seed(SEED)),)
    path = out_dir / f"{name}.onnx"
    tmp = out_dir / f"{name}.tmp.onnx"
    io_names = {"input_names": ["input"], "output_names": ["logits"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            torch.onnx.export(
                model,
                example,
                str(tmp),
                dynamo=False,
                opset_version=opset,
                training=torch.onnx.TrainingMode.PRESERVE,
                do_constant_folding=True,
                **io_names,
            )
        else:
            program = torch.onnx.export(
                model, example, dynamo=True, opset_version=opset, external_data=False, **io_names
            )
            program.save(str(tmp), external_data=False)
    proto = onnx.load(str(tmp))
    onnx.checker.check_model(proto, full_check=True)
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help=f"output directory (default: {DEFAULT_DIR})")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {', '.join(MODELS)}")
    parser.add_argument("--exporter", choices=EXPORTERS, default="torchscript", help="PyTorch ONNX exporter")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    needed = ["torch", "torchvision", "onnx"] + (["onnxscript"] if args.exporter == "dynamo" else [])
    for module in needed:
        try:
            __import__(module)
        except ImportError:
            print(f"error: {module} is not installed (pip install {' '.join(needed)})", file=sys.stderr)
            return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = export(name, args.out, args.exporter, args.opset)
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
