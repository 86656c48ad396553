"""What the selection chose and why: a JSON report, a text table, a PNG bar chart.

`wpk compile --report report.json` writes `selection_report` of the compiled model: per
kernel signature its op kind, shapes, the model kernels it stands for, every candidate with
its measured time (or its error, or why it was not applicable) and the choice with how it
was made. `wpk tune-report` reads the same records from the tuning database
(`stored_choices`: its `selections`) and adds `selection.csv` and `selection.png`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from woodpecker.kernels.naming import join_names
from woodpecker.select.selection import KernelChoice
from woodpecker.table import Column
from woodpecker.table import format_table as text_table

IMPL_ORDER = ("generated", "default", "onednn", "blas", "cudnn", "cublas")


def selection_report(choices: Sequence[KernelChoice], **header: Any) -> dict[str, Any]:
    """The report as a JSON-able dict: `header` entries (target, model, libraries, mode, device,
    the heuristic's statement: `Target.report_header`), the kernels, and totals."""
    kernels = [choice.to_json() for choice in choices]
    measured = [c for c in choices if c.how in ("measured", "recorded")]
    return {
        **header,
        "kernels": kernels,
        "totals": {
            "signatures": len(choices),
            "model_kernels": sum(len(c.kernel_names) for c in choices),
            "by_choice": _count(choices, lambda c: c.choice),
            "by_how": _count(choices, lambda c: c.how),
            "measured_signatures": len(measured),
        },
    }


def _count(choices: Sequence[KernelChoice], key) -> dict[str, int]:
    counts: dict[str, int] = {}
    for choice in choices:
        counts[key(choice)] = counts.get(key(choice), 0) + len(choice.kernel_names or (1,))
    return counts


def write_report(path: str | Path, report: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def _cell(choice: KernelChoice, impl: str) -> str:
    result = next((r for r in choice.candidates if r.impl == impl), None)
    if result is None:
        return ""
    if result.reason is not None:
        return "n/a"
    if result.error is not None:
        return "failed"
    if result.seconds is None or not math.isfinite(result.seconds):
        return "-"
    return f"{result.seconds * 1e3:.4g}"


def _row(choice: KernelChoice, impls: Sequence[str]) -> list[str]:
    cells = [_cell(choice, impl) for impl in impls]
    return [join_names(choice.kernel_names), choice.description[:60], *cells, choice.choice, choice.how]


def format_table(choices: Sequence[KernelChoice]) -> str:
    """One line per kernel signature: candidates' ms, the choice and how it was made."""
    impls = [i for i in IMPL_ORDER if any(r.impl == i for c in choices for r in c.candidates)]
    columns = [Column("kernels"), Column("op"), *[Column(f"{i} ms", right=True) for i in impls], Column("choice"),
               Column("how")]  # fmt: skip
    rows = [_row(choice, impls) for choice in choices]
    return text_table(columns, rows)


def stored_choices(storage_url: str | None) -> list[KernelChoice]:
    """The recorded selections of every workload in the database (what `wpk tune-report` shows),
    by key; [] when the database does not exist."""
    from woodpecker.database import database_exists, open_database
    from woodpecker.select.selection import CandidateResult

    if not database_exists(storage_url):
        return []
    with open_database(storage_url) as db:
        keys = db.keys()
        selections = db.selections(keys)
        workloads = db.workloads(selections)
    choices = []
    for key in (k for k in keys if k in selections):
        selection, workload = selections[key], workloads.get(key)
        results = [
            CandidateResult(impl, {}, timing.seconds, timing.error) for impl, timing in selection.candidates.items()
        ]
        measured = [r for r in results if r.seconds is not None and math.isfinite(r.seconds)]
        best = min(measured, key=lambda r: r.seconds).impl if measured else "generated"
        choices.append(
            KernelChoice(
                key=key,
                description=workload.description if workload is not None else key,
                kind=workload.kind if workload is not None else "",
                kernel_names=(workload.kernel_name,) if workload is not None and workload.kernel_name else (),
                arg_shapes=workload.arg_shapes if workload is not None else (),
                output_shape=workload.output_shape if workload is not None else (),
                candidates=results,
                choice=best,
                config={},
                how="recorded",
                default_seconds=selection.default_seconds,
            )
        )
    return choices


def write_selection_csv(path: Path, choices: Sequence[KernelChoice]) -> None:
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "description", "impl", "seconds", "error", "chosen"])
        for choice in choices:
            for result in choice.candidates:
                writer.writerow(
                    [
                        choice.key,
                        choice.description,
                        result.impl,
                        "" if result.seconds is None else result.seconds,
                        result.error or result.reason or "",
                        int(result.impl == choice.choice),
                    ]
                )


def plot_selection(path: Path, choices: Sequence[KernelChoice]) -> None:
    """Grouped bars: each kernel signature's candidates, in ms (log scale), chosen one outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    impls = [i for i in IMPL_ORDER if any(r.impl == i and r.seconds for c in choices for r in c.candidates)]
    if not choices or not impls:
        return
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(choices) + 2), 4.5))
    width = 0.8 / len(impls)
    for offset, impl in enumerate(impls):
        xs, heights, edges = [], [], []
        for x, choice in enumerate(choices):
            result = next((r for r in choice.candidates if r.impl == impl), None)
            if result is None or result.seconds is None or not math.isfinite(result.seconds):
                continue
            xs.append(x + offset * width)
            heights.append(result.seconds * 1e3)
            edges.append("black" if choice.choice == impl else "none")
        ax.bar(xs, heights, width, label=impl, edgecolor=edges, linewidth=1.5)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(choices))])
    ax.set_xticklabels(
        [c.description.split(" ")[0] + f"\n{'x'.join(map(str, c.output_shape))}" for c in choices],
        rotation=60,
        ha="right",
        fontsize=7,
    )
    ax.set_yscale("log")
    ax.set_ylabel("ms per call (log)")
    ax.set_title("candidates per kernel signature (outlined: chosen)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
