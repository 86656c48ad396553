"""`wpk tune --search-layout`: the layout search on the model, compiled for real, then recorded.

Runs before the kernel tuning, so the kernels tuned are the ones the chosen layout compiles
to (a blocked and an NCHW conv are different kernel signatures; searching after would compare
the rule's tuned kernels with untuned ones and favour the rule). Every candidate is the whole
model compiled as `wpk run --db DB` compiles it (libraries, selection records and kernel records
of DB as they are), with the region choice fixed (`CompileOptions.layout_regions`); the search
(`woodpecker.tune.layout_search`) measures them interleaved, and the decision goes into the
tuning database as a layout workload (`woodpecker.database.layout`) that `woodpecker.compile`
with `layout="auto"` then applies.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from woodpecker.errors import WoodpeckerError


@dataclass(frozen=True)
class LayoutOutcome:
    """The decision (region -> choice; None: nothing to search) and what to print about it."""

    regions: dict[str, str] | None
    lines: list[str]


def check_layout_arguments(args: argparse.Namespace) -> str | None:
    """Why --search-layout cannot run with these arguments (None: it can)."""
    from woodpecker.passes import LAYOUT_AUTO_LEVELS

    if args.layout != "auto":
        return f"--search-layout chooses the layouts of --layout auto's regions, not of --layout {args.layout}"
    if args.opt_level not in LAYOUT_AUTO_LEVELS:
        return f"--search-layout needs an optimization level that converts layouts (-O{LAYOUT_AUTO_LEVELS[0]})"
    if args.target != "cpu":
        return "--search-layout is for the CPU (the cuda target computes convolutions in NCHW only)"
    return None


def search_and_record(model: str, args: argparse.Namespace, compare: Callable | None = None) -> LayoutOutcome:
    """Searches the layout of `model`'s regions within `args.layout_budget` seconds and records
    the decision in `args.db`; `compare` replaces the interleaved measurement (tests)."""
    import woodpecker
    from woodpecker.backend.cpu import CpuOptions
    from woodpecker.compiler import random_feeds
    from woodpecker.database import open_database
    from woodpecker.database.layout import record_layout
    from woodpecker.frontend import layout_regions
    from woodpecker.importer import import_onnx_with_weights
    from woodpecker.select.layout_record import layout_context, model_name
    from woodpecker.targets.cpu import CpuTarget
    from woodpecker.tune.layout_search import search_layout

    shapes = dict(args.input_shape or []) or None
    imported = import_onnx_with_weights(model, shapes)
    threads = CpuTarget(CpuOptions(threads=args.threads)).threads
    regions = layout_regions(imported, opt_level=args.opt_level)
    if not regions:
        return LayoutOutcome(None, ["layout search: the model has no convolution region to choose a layout for"])
    names = tuple(r.name for r in regions)
    context = layout_context(imported, args.opt_level, threads, model_name(model), names)

    def run_with(config: Mapping[str, str]) -> Callable[[], object]:
        options = woodpecker.CompileOptions(
            opt_level=args.opt_level,
            cpu=CpuOptions(threads=args.threads),
            tuning_db=args.db,
            layout_regions=dict(config),
        )
        try:
            compiled = woodpecker.compile(model, input_shapes=shapes, options=options)
        except WoodpeckerError as err:
            raise WoodpeckerError(f"layout search: compiling with regions {dict(config)} failed: {err}") from None
        feeds = random_feeds(compiled)
        return lambda: compiled.run(None, feeds)

    lines = [
        f"layout search over {len(regions)} region{'s' if len(regions) != 1 else ''} of {model} "
        f"(rule: blocks of {context.lanes}; {threads} threads"
        + (f"; budget {args.layout_budget:g} s" if args.layout_budget is not None else "")
        + ")"
    ]
    extra = {} if compare is None else {"compare": compare}
    found = search_layout(regions, context.lanes, run_with, time_budget_s=args.layout_budget, **extra)
    lines.append(found.table())
    if found.skipped:
        lines.append(f"not measured (the budget ran out): {', '.join(found.skipped)}")
    shape_list = [tuple(imported.input_shapes[name]) for name in imported.input_names]
    with open_database(args.db) as db:
        record = record_layout(db, context, found.config, found.seconds, input_shapes=shape_list)
        location = db.location
    lines.append(
        f"layout decision {_format(found.config)} ({found.seconds * 1e3:.3f} ms median) recorded as "
        f"{context.key} in {location}"
    )
    recorded = {str(k): str(v) for k, v in record.config.items()}
    if recorded != found.config:
        lines.append(
            f"an earlier search's decision {_format(recorded)} measured faster ({record.seconds * 1e3:.3f} ms) "
            "and stays the record"
        )
    return LayoutOutcome(recorded, lines)


def _format(config: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{name}: {choice}" for name, choice in config.items()) + "}"


def recorded_regions(model: str, args: argparse.Namespace) -> dict[str, str] | None:
    """The layout decision a compile with these arguments applies (None: the rule), so the
    kernels tuned are the ones compile uses."""
    from woodpecker.backend.cpu import CpuOptions
    from woodpecker.importer import import_onnx_with_weights
    from woodpecker.select.layout_record import model_name, recorded_layout
    from woodpecker.targets.cpu import CpuTarget

    if check_layout_arguments(args) is not None:
        return None
    imported = import_onnx_with_weights(model, dict(args.input_shape or []) or None)
    threads = CpuTarget(CpuOptions(threads=args.threads)).threads
    return recorded_layout(imported, args.opt_level, threads, args.db, model_name(model)).regions
