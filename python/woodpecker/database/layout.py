"""Layout records: the layout search's decision for one model on one machine, as a workload.

`wpk tune --search-layout` measures, per region of wpk-convert-layout, which channel layout
makes the whole model fastest (`woodpecker.tune.layout_search`) and records the decision here;
`woodpecker.compile` with `layout="auto"` reads it back (`woodpecker.select.layout_record`).

A decision is a `Workload` of kind "layout" (target "cpu") with one complete trial per search
whose result was new: config {region name: "nchw" or a block size}, seconds the model's
end-to-end median with it. The record rule of `choice.py` picks among them as it does for
kernels. No table changes (schema version 1 holds it); what identifies the decision is the
`LayoutContext`, kept as JSON in the workload's `module_text`:

* `graph`: a digest of the imported model's graph (ops, attributes, shapes: the input shapes
  the compile fixed; not the weights' values), `model`: its file name (for messages);
* `device` (CPU model, vector ISA, thread count), `threads`, `opt_level`, `lanes` (the rule's
  block): whatever changes the graph the layout pass sees or the times;
* `regions`: the region names the search saw.

The key is `cpu.layout.<graph digest>.<digest of the rest>`: a compile finds its own decision
by key, and the other decisions of the same model (`LAYOUT_PREFIX` + graph digest) or of the
same file name say why none applies (another device, thread count, a changed graph).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from woodpecker.database.base import TuningDatabase
from woodpecker.database.schema import Record, Workload, config_key

LAYOUT_KIND = "layout"
LAYOUT_PREFIX = "cpu.layout."
LAYOUT_STRATEGY = "layout-search"
LAYOUT_BUDGET = 1 << 30  # a layout workload's trials are never budgeted (one per search result)


def is_layout_key(key: str) -> bool:
    return key.startswith(LAYOUT_PREFIX)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class LayoutContext:
    """What a layout decision belongs to: the model's graph and the machine it was measured on."""

    graph: str  # hex digest of the imported graph (graph_digest)
    model: str  # the model's file name (messages only)
    device: str  # e.g. "AMD EPYC 7B13 avx2 2t"
    threads: int
    opt_level: int
    lanes: int  # the rule's block size
    regions: tuple[str, ...] = field(default=(), compare=False)  # the regions the search saw

    @property
    def key(self) -> str:
        rest = json.dumps([self.device, self.threads, self.opt_level, self.lanes])
        return f"{LAYOUT_PREFIX}{self.graph[:16]}.{_digest(rest)[:12]}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["regions"] = list(self.regions)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayoutContext:
        return cls(
            graph=str(data["graph"]),
            model=str(data.get("model", "")),
            device=str(data["device"]),
            threads=int(data["threads"]),
            opt_level=int(data["opt_level"]),
            lanes=int(data["lanes"]),
            regions=tuple(str(r) for r in data.get("regions") or ()),
        )

    def workload(self, input_shapes: Sequence[Sequence[int]] = ()) -> Workload:
        """The workload this decision is recorded under."""
        return Workload(
            key=self.key,
            target="cpu",
            device=self.device,
            kind=LAYOUT_KIND,
            template=LAYOUT_KIND,
            description=f"layout of {self.model or 'a model'}: {len(self.regions)} regions, "
            f"{self.threads} threads, -O{self.opt_level}",
            flops=0,
            arg_shapes=tuple(tuple(s) for s in input_shapes),
            output_shape=(),
            num_weights=0,
            kernel_name="",
            module_text=json.dumps(self.to_json(), sort_keys=True),
        )


def graph_digest(graph_text: str, input_shapes: Iterable[Sequence[int]] = ()) -> str:
    """The digest of a model's graph: its printed ops (no weight values) and input shapes."""
    shapes = json.dumps([list(s) for s in input_shapes])
    return _digest(graph_text + "\n" + shapes)


def context_of(workload: Workload) -> LayoutContext | None:
    """The context of a layout workload (None: not one, or unreadable)."""
    if workload.kind != LAYOUT_KIND:
        return None
    try:
        return LayoutContext.from_json(json.loads(workload.module_text))
    except (ValueError, KeyError, TypeError):
        return None


def record_layout(
    db: TuningDatabase,
    context: LayoutContext,
    config: Mapping[str, str],
    seconds: float,
    times: Sequence[float] = (),
    input_shapes: Sequence[Sequence[int]] = (),
) -> Record:
    """Records a search's decision `config` (its end-to-end median `seconds`) and returns the
    record a compile now reads (the fastest decision recorded, `choice.py`). A decision already
    recorded gets `seconds` as a confirmation (the lower of the two is kept)."""
    db.add_workloads([context.workload(input_shapes)])
    config = {str(k): str(v) for k, v in config.items()}
    claim = db.claim(context.key, config, strategy=LAYOUT_STRATEGY, budget=LAYOUT_BUDGET, lease_s=None)
    if claim is not None:
        db.finish(claim, seconds=seconds, times=times)
    else:
        wanted = config_key(config)
        trial = next(t for t in db.trials([context.key])[context.key] if t.config_key == wanted)
        db.confirm(context.key, {trial.number: seconds})
    return db.records([context.key])[context.key]


@dataclass(frozen=True)
class LayoutLookup:
    """What the records say for a compile's context: the config to apply, or why none applies."""

    config: dict[str, str] | None = None
    record: Record | None = None
    reason: str | None = None  # set when a record exists for this model but cannot be applied


def lookup_layout(
    db: TuningDatabase, context: LayoutContext, current_regions: Callable[[], Sequence[str]]
) -> LayoutLookup:
    """The recorded decision for `context`, checked against the model's current regions
    (`current_regions()`, called only when there is a decision to check).

    None applies (with the reason) when the decision names a region the model does not have
    or misses one it has, or when the only decisions for this model (same graph) or this
    file name were measured on another device, thread count, optimization level or graph."""
    keys = db.keys(prefix=LAYOUT_PREFIX)
    if not keys:
        return LayoutLookup()
    if context.key in keys:
        record = db.records([context.key]).get(context.key)
        if record is not None:
            config = {str(k): str(v) for k, v in record.config.items()}
            regions = list(current_regions())
            missing = [name for name in config if name not in regions]
            if missing:
                return LayoutLookup(record=record, reason=f"it names region '{missing[0]}', which the model no "
                                    f"longer has (regions: {', '.join(regions) or 'none'})")  # fmt: skip
            unknown = [name for name in regions if name not in config]
            if unknown:
                return LayoutLookup(record=record, reason=f"it has no choice for region '{unknown[0]}' "
                                    "(the regions changed since the search)")  # fmt: skip
            return LayoutLookup(config=config, record=record)
    others = [c for w in db.workloads(keys).values() if (c := context_of(w)) is not None and c.key != context.key]
    same_graph = [c for c in others if c.graph == context.graph]
    if same_graph:
        return LayoutLookup(reason=_difference(same_graph[0], context))
    same_name = [c for c in others if context.model and c.model == context.model]
    if same_name:
        return LayoutLookup(reason=f"it was measured on another graph of {context.model} (the model or its input "
                            "shapes changed since the search)")  # fmt: skip
    return LayoutLookup()


def _difference(recorded: LayoutContext, here: LayoutContext) -> str:
    if recorded.threads != here.threads:
        return f"it was measured with {recorded.threads} threads, this compile uses {here.threads}"
    if recorded.opt_level != here.opt_level:
        return f"it was measured at -O{recorded.opt_level}, this compile is -O{here.opt_level}"
    if recorded.lanes != here.lanes:
        return f"it was measured with blocks of {recorded.lanes}, this CPU's rule uses {here.lanes}"
    return f"it was measured on '{recorded.device}', this is '{here.device}'"


__all__ = [
    "LAYOUT_KIND",
    "LAYOUT_PREFIX",
    "LayoutContext",
    "LayoutLookup",
    "context_of",
    "graph_digest",
    "is_layout_key",
    "lookup_layout",
    "record_layout",
]
