"""Export files: a workload's records as JSON lines, to move between databases and hosts.

Like TVM MetaSchedule's tuning-record files, one JSON object a line:

    {"format": "woodpecker-tuning-records", "version": 1, "exported_at": 1718000000.0}
    {"type": "workload", "workload": {...Workload fields}}
    {"type": "trial", "trial": {...Trial fields}}                 finished trials only
    {"type": "confirmation", "key": K, "number": N, "config_key": C, "seconds": S}
    {"type": "selection", "selection": {...Selection fields}}

Trial numbers are those of the exporting database; an import matches trials and confirmations
by `config_key` instead, since the importing database numbers its own trials. A file of a newer
version, a line that is not JSON or a line of an unknown type is refused with its line number.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from woodpecker.database.base import TransferSummary
from woodpecker.database.errors import DatabaseError
from woodpecker.database.schema import SCHEMA_VERSION, Selection, Trial, Workload, finite_or_none

FORMAT = "woodpecker-tuning-records"


@dataclass
class TransferContents:
    """What an export file holds, grouped by workload key."""

    workloads: list[Workload] = field(default_factory=list)
    trials: dict[str, list[Trial]] = field(default_factory=dict)
    confirmations: dict[str, dict[str, float | None]] = field(default_factory=dict)  # key -> config_key -> s
    selections: list[Selection] = field(default_factory=list)


def write_transfer(
    path: str | os.PathLike,
    workloads: Sequence[Workload],
    trials: Mapping[str, Sequence[Trial]],
    confirmations: Mapping[str, Mapping[int, float | None]],
    selections: Mapping[str, Selection],
) -> TransferSummary:
    """Writes an export file (atomically: a temporary file renamed over `path`)."""
    target = Path(path)
    lines = [{"format": FORMAT, "version": SCHEMA_VERSION, "exported_at": time.time()}]
    written = confirmed = 0
    for workload in workloads:
        lines.append({"type": "workload", "workload": workload.to_json()})
        by_number = {}
        for trial in trials.get(workload.key, ()):
            if trial.finished:
                data = trial.to_json()
                data["token"] = None
                lines.append({"type": "trial", "trial": data})
                by_number[trial.number] = trial
                written += 1
        for number, seconds in sorted(confirmations.get(workload.key, {}).items()):
            if number in by_number:
                ckey = by_number[number].config_key
                line = {"type": "confirmation", "key": workload.key, "number": number, "config_key": ckey}
                lines.append({**line, "seconds": seconds})
                confirmed += 1
        if workload.key in selections:
            lines.append({"type": "selection", "selection": selections[workload.key].to_json()})
    temporary = target.with_name(target.name + f".tmp{os.getpid()}")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n")
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise DatabaseError(f"cannot write the export file {target}: {error.strerror or error}") from None
    return TransferSummary(len(workloads), written, 0, confirmed, sum(1 for w in workloads if w.key in selections))


def read_transfer(path: str | os.PathLike) -> TransferContents:
    """Reads an export file; every problem is a one-line DatabaseError naming the line."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise DatabaseError(f"cannot read the export file {source}: {reason}") from None
    contents = TransferContents()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if number == 1:
            _check_header(source, line)
            continue
        try:
            _add_entry(contents, json.loads(line))
        except DatabaseError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
            raise DatabaseError(
                f"{source} line {number}: not a valid tuning-record line ({type(error).__name__}: {error}); "
                f"nothing was imported: fix or remove that line"
            ) from None
    if not text.strip():
        raise DatabaseError(f"{source} is empty, not a Woodpecker tuning-record export")
    return contents


def _check_header(source: Path, line: str) -> None:
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):
        entry = None
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        raise DatabaseError(
            f'{source} is not a Woodpecker tuning-record export (its first line has no "format": "{FORMAT}")'
        )
    version = entry.get("version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise DatabaseError(
            f"{source} was written by a newer Woodpecker (records version {version}, this one reads up to "
            f"{SCHEMA_VERSION}): upgrade woodpecker to import it"
        )


def _add_entry(contents: TransferContents, entry: dict[str, Any]) -> None:
    kind = entry["type"]
    if kind == "workload":
        contents.workloads.append(Workload.from_json(entry["workload"]))
    elif kind == "trial":
        trial = Trial.from_json(entry["trial"])
        if not trial.finished:
            raise ValueError(f"trial {trial.number} of {trial.key} is {trial.state}, not finished")
        contents.trials.setdefault(trial.key, []).append(trial)
    elif kind == "confirmation":
        contents.confirmations.setdefault(entry["key"], {})[str(entry["config_key"])] = finite_or_none(entry["seconds"])
    elif kind == "selection":
        contents.selections.append(Selection.from_json(entry["selection"]))
    else:
        raise ValueError(f"unknown line type '{kind}'")
