"""What the `wpk` sub-commands share: the model and its input shapes, timing, common options."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from woodpecker.cli.parsing import UsageError
from woodpecker.runtime.feeds import InputSpec

SELECT_MODES = ("records", "measure", "heuristic")
DEFAULT_SELECT = "records"  # the default of CompileOptions.select, `wpk run` and `wpk compile`


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


def format_shape_option(name: str, shape: Sequence[int]) -> str:
    return f"{name}={'x'.join(str(d) for d in shape)}"


def apply_shape_options(
    specs: Sequence[InputSpec], options: Sequence[tuple[str, tuple[int, ...]]] | None
) -> list[InputSpec]:
    """The model's inputs with the `--input-shape` options applied: each names an input and
    sets only the dimensions the model leaves open (a static one may be repeated, not
    changed); anything else is a usage error naming the option and the input."""
    by_name = {spec.name: spec for spec in specs}
    for name, shape in options or []:
        option = f"argument --input-shape {format_shape_option(name, shape)}"
        spec = by_name.get(name)
        if spec is None:
            raise UsageError(f"{option}: the model has no input '{name}'; its inputs are {list(by_name)}")
        if len(shape) != len(spec.shape):
            raise UsageError(
                f"{option}: input '{name}' has rank {len(spec.shape)} in the model "
                f"{spec.shape_text()}, not {len(shape)}"
            )
        for axis, (got, declared) in enumerate(zip(shape, spec.shape, strict=True)):
            if isinstance(declared, int) and got != declared:
                raise UsageError(
                    f"{option}: dimension {axis} of input '{name}' is fixed to {declared} by the model "
                    f"{spec.shape_text()}, not {got}; only open dimensions can be set"
                )
        by_name[name] = replace(spec, shape=tuple(shape))
    return [by_name[spec.name] for spec in specs]


def check_shape_options(model: str | Path, options: Sequence[tuple[str, tuple[int, ...]]] | None) -> None:
    """`apply_shape_options` on the model file `model`, for a command that compiles from the
    path (`wpk tune`): a bad `--input-shape` is a usage error before any work."""
    if not options:
        return
    from woodpecker.importer.loader import declared_inputs, read_model

    apply_shape_options(declared_inputs(read_model(model)), options)


def static_shapes(specs: Sequence[InputSpec]) -> dict[str, tuple[int, ...]]:
    """The shapes to compile with: those of the inputs whose every dimension is known."""
    return {s.name: tuple(int(d) for d in s.shape) for s in specs if all(isinstance(d, int) for d in s.shape)}


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


def mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:.2f} MiB"


def add_model_arguments(parser: argparse.ArgumentParser, model_help: str, required: bool = False) -> None:
    """The model, its input shapes, the opt level and the records: shared by `run` and `compile`."""
    parser.add_argument("model", nargs=None if required else "?", help=model_help)
    add_shape_arguments(
        parser,
        shape_help="the size of an input's open (symbolic) dimensions, e.g. data=1x3x224x224 (repeatable; "
        "a dimension the model fixes may be repeated, not changed)",
        opt_help="graph optimization: 0 none, 1 folding, 2 folding and fusion (default 2)",
    )
    parser.add_argument(
        "--db",
        metavar="DB",
        help="tuning and selection records: a path (SQLite, .journal) or a postgresql:// URL "
        "(default $WOODPECKER_TUNING_DB, else ~/.cache/woodpecker/tuning.db)",
    )
    parser.add_argument("--no-records", action="store_true", help="ignore tuning records: default schedules")


def add_shape_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, shape_help: str, opt_help: str
) -> None:
    """--input-shape and --opt-level, which say which graph a model becomes: `run`, `compile`,
    `tune` and `tune-report` (the same graph, the same kernels) declare them here."""
    parser.add_argument(
        "--input-shape", action="append", type=parse_input_shape, metavar="NAME=DxD...", help=shape_help
    )
    parser.add_argument("--opt-level", type=int, default=2, choices=[0, 1, 2], help=opt_help)
    parser.add_argument(
        "--layout",
        default="auto",
        metavar="auto|nchw|blocked|blockedN",
        help="the channel layout of the convolutions: auto (NCHW[x]c at -O2 on the CPU, x the host's "
        "vector width; NCHW on cuda), nchw, blocked (every conv, every level), blockedN (blocks of N)",
    )


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--libraries",
        default="all",
        metavar="all|none|onednn|blas|cudnn|cublas",
        help="vendor libraries whose kernels compete with generated ones (comma-separated; "
        "default all: onednn,blas on the CPU, cudnn,cublas for CUDA)",
    )
    parser.add_argument(
        "--select",
        default=DEFAULT_SELECT,
        choices=SELECT_MODES,
        help="how each kernel's implementation is chosen: 'records' reads the recorded measurements (else "
        "the stated heuristic), 'measure' measures what is not recorded and records it, 'heuristic' "
        f"neither reads nor measures (default {DEFAULT_SELECT}: nothing is measured unless asked)",
    )
    parser.add_argument("--report", metavar="FILE", help="write the per-kernel selection report (JSON)")


def records_use(args: argparse.Namespace) -> str | None:
    """How `run` or `compile` with these arguments uses the tuning database (None: not at all)."""
    if args.select == "measure":
        return "read and written: --select measure records its measurements"
    if args.select == "records" or not args.no_records:
        return "read only"
    return None


def bundled_model() -> Path:
    from woodpecker.models import bundled_model_path

    return bundled_model_path()


def set_input_shapes(model, shapes: Mapping[str, Sequence[int]]) -> None:
    """Gives the graph inputs of the ModelProto `model` these shapes (for onnxruntime, which
    must see the shapes Woodpecker compiled)."""
    for value in model.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, shapes[value.name], strict=True):
                dim.Clear()
                dim.dim_value = size
