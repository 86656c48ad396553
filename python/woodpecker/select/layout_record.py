"""The layout decision a compile reads: `wpk tune --search-layout`'s record for this model here.

`layout_context` says what a decision belongs to (the imported graph's digest, the device,
threads, optimization level, the rule's block; `woodpecker.database.layout`). `recorded_layout`
reads the decision for it from the tuning database and checks it against the model's current
regions: one that applies is the compile's `layout_regions`; one that does not (another device
or thread count, a changed graph, a region that no longer exists) is one warning naming why,
and the compile keeps the rule.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from woodpecker.database import database_exists, open_database
from woodpecker.database.layout import LayoutContext, graph_digest, lookup_layout
from woodpecker.frontend import graph_text, layout_regions
from woodpecker.importer import ImportedModel
from woodpecker.runtime.cpu.host import vector_lanes
from woodpecker.schedule.tasks import cpu_device

RULE = "rule"


@dataclass(frozen=True)
class LayoutChoice:
    """The regions a compile applies (None: the rule's) and the line that says where they came from."""

    regions: dict[str, str] | None
    source: str  # "rule", "from records (N regions)"


def layout_context(
    imported: ImportedModel, opt_level: int, threads: int, model_name: str = "", regions: tuple[str, ...] = ()
) -> LayoutContext:
    """The context of a layout decision for `imported` compiled at `opt_level` with `threads` here."""
    shapes = [tuple(imported.input_shapes[name]) for name in imported.input_names]
    return LayoutContext(
        graph=graph_digest(graph_text(imported), shapes),
        model=model_name,
        device=cpu_device(threads),
        threads=threads,
        opt_level=opt_level,
        lanes=vector_lanes(),
        regions=regions,
    )


def model_name(model: object) -> str:
    """The file name of a model given as a path ('' otherwise): what messages call it."""
    return Path(model).name if isinstance(model, str | os.PathLike) else ""


def recorded_layout(
    imported: ImportedModel, opt_level: int, threads: int, storage: str | None, name: str = ""
) -> LayoutChoice:
    """The recorded layout decision for this compile, or the rule (with one warning when a
    record exists for this model but cannot be applied). A database that does not exist holds
    no record (nothing is created)."""
    if not database_exists(storage):
        return LayoutChoice(None, RULE)
    context = layout_context(imported, opt_level, threads, name)
    with open_database(storage) as db:
        found = lookup_layout(
            db, context, lambda: [r.name for r in layout_regions(imported, opt_level=opt_level, block=context.lanes)]
        )
    if found.config is None:
        if found.reason is not None:
            warnings.warn(
                f"layout record of {name or 'the model'} not applied: {found.reason}; using the layout rule",
                stacklevel=3,
            )
        return LayoutChoice(None, RULE)
    return LayoutChoice(found.config, records_source(found.config))


def records_source(config: Mapping[str, str]) -> str:
    return f"from records ({len(config)} region{'s' if len(config) != 1 else ''})"


__all__ = ["RULE", "LayoutChoice", "layout_context", "model_name", "recorded_layout", "records_source"]
