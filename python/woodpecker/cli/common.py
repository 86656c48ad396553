"""What the `wpk` sub-commands share: input shapes, timing, the bundled model, common options."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """'data=1x3x224x224' -> ('data', (1, 3, 224, 224))."""
    name, sep, dims = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        shape = tuple(int(d) for d in dims.lower().split("x"))
        if any(d <= 0 for d in shape):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad --input-shape '{text}': expected NAME=DxDx..., e.g. data=1x3x224x224"
        ) from None
    return name, shape


@dataclass
class Timing:
    median_ms: float
    min_ms: float


def time_calls(fn: Callable[[], object], repeat: int, warmup: int = 2) -> Timing:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return Timing(statistics.median(samples), min(samples))


def summarize(array: np.ndarray) -> str:
    flat = array.reshape(-1)
    head = np.array2string(flat[:8], precision=5, separator=", ")
    text = f"shape {tuple(array.shape)}, first values {head}"
    if array.ndim == 2 and array.shape[0] == 1 and array.shape[1] > 1:
        top = np.argsort(flat)[::-1][:3]
        text += ", top-3 classes " + ", ".join(f"{i} ({flat[i]:.4f})" for i in top)
    return text


def add_model_arguments(parser: argparse.ArgumentParser, model_help: str, required: bool = False) -> None:
    """The model, its input shapes, the opt level and the records: shared by `run` and `compile`."""
    parser.add_argument("model", nargs=None if required else "?", help=model_help)
    parser.add_argument("--input-shape", action="append", type=parse_input_shape, metavar="NAME=DxD...",
                        help="static shape for an input with symbolic dimensions (repeatable)")
    parser.add_argument("--opt-level", type=int, default=2, choices=[0, 1, 2])
    parser.add_argument("--db", metavar="URL",
                        help="tuning and selection records (default ~/.cache/woodpecker/tuning.db)")
    parser.add_argument("--no-records", action="store_true", help="ignore tuning records: default schedules")


def add_selection_arguments(parser: argparse.ArgumentParser, select_default: str | None) -> None:
    parser.add_argument("--libraries", default="all", metavar="all|none|onednn|blas|cudnn|cublas",
                        help="vendor libraries whose kernels compete with generated ones (comma-separated; "
                             "default all: onednn,blas on the CPU, cudnn,cublas for CUDA)")
    default = select_default or "measure; for CUDA without a GPU, heuristic"
    parser.add_argument("--select", default=select_default, choices=["records", "measure", "heuristic"],
                        help="how each kernel's implementation is chosen: recorded measurements (else the "
                             "heuristic), measure what is not recorded, or the heuristic only "
                             f"(default {default})")
    parser.add_argument("--report", metavar="FILE", help="write the per-kernel selection report (JSON)")


def bundled_model() -> Path:
    from woodpecker.models import bundled_model_path

    return bundled_model_path()


def model_bytes(path: Path, shapes: dict[str, tuple[int, ...]]) -> bytes:
    """The model as onnxruntime should see it, with the same input shape overrides."""
    import onnx

    model = onnx.load(str(path))
    for value in model.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, shapes[value.name], strict=True):
                dim.Clear()
                dim.dim_value = size
    return model.SerializeToString()


