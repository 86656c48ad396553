"""Old tuning records into the tuning database: `wpk tune --import-optuna URL`.

Before `woodpecker.database`, records were Optuna studies (one per kernel signature, named by
its key) in an Optuna storage (an SQLite file, an Optuna journal file ending in .journal or
.log, or an RDB URL), laid out as:

* study user attributes: `task` (the KernelTask fields but the module), `module_text`,
  `default_seconds`, `confirmed_seconds` ({trial number as text: seconds, inf when the
  re-measurement failed}) and `selection` ({generated_config, default_seconds, candidates});
* trials: params (`woodpecker.tune.params.encode`), value = seconds; user attributes `config`
  (JSON), `strategy`, `times`, `relative`, `compile_seconds`, `error`, `is_default`.

`import_optuna` turns every study with a `task` into a workload with its finished trials (a
trial without a `config` attribute gets its decoded params), confirmations and selection,
written as an export file and merged by `TuningDatabase.import_file`: configurations already
in the database are duplicates, so importing twice adds nothing. Running and pruned trials
are left out. The source is only read (its tables are never created or changed).

Also `python -m woodpecker.tune.migrate OPTUNA_STORAGE [DATABASE]`.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from woodpecker.database import (
    COMPLETE,
    FAILED,
    CandidateTiming,
    DatabaseError,
    Selection,
    TransferSummary,
    Trial,
    TuningDatabase,
    Workload,
    config_key,
    open_database,
)
from woodpecker.database.schema import config_from_json, finite_or_none
from woodpecker.database.transfer import write_transfer

SELECTION_ATTR = "selection"  # the old study attribute of the implementation-selection timings
CONFIRMED_ATTR = "confirmed_seconds"
IMPORT_WORKER = "optuna-import"
_JOURNAL_SUFFIXES = (".journal", ".log")
_SCHEME = "://"


@dataclass
class MigrationSummary:
    """What an import from an Optuna storage found and merged."""

    source: str
    studies: int = 0  # studies read
    skipped: list[str] = field(default_factory=list)  # "study: why" for the studies left out
    merged: TransferSummary = field(default_factory=TransferSummary)

    def line(self, target: str) -> str:
        m = self.merged
        text = (
            f"imported {m.workloads} workloads from {self.studies} Optuna studies of {self.source} into {target}: "
            f"{m.trials} new trials ({m.duplicates} already there), {m.confirmations} confirmations, "
            f"{m.selections} selections"
        )
        if self.skipped:
            more = ", ..." if len(self.skipped) > 1 else ""
            text += f"; skipped {len(self.skipped)} studies ({self.skipped[0]}{more})"
        return text


def open_optuna_storage(source: str | os.PathLike) -> Any:
    """The Optuna storage at `source`, read-only in spirit: nothing is created."""
    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    text = os.fspath(source)
    journal = text.startswith("journal:///")
    if _SCHEME not in text or journal or text.startswith("sqlite:///"):
        path = Path(text.split(":///", 1)[1] if _SCHEME in text else text).expanduser()
        if not path.is_file():
            raise DatabaseError(f"no Optuna storage at {path}: give --import-optuna the old tuning file")
        if journal or path.suffix in _JOURNAL_SUFFIXES:
            lock = optuna.storages.journal.JournalFileOpenLock(str(path))
            return _checked(text, lambda: JournalStorage(JournalFileBackend(str(path), lock_obj=lock)))
        text = f"sqlite:///{path.resolve()}"
    return _checked(text, lambda: RDBStorage(text, skip_table_creation=True, skip_compatibility_check=True))


def _checked(source: str, opener: Any) -> Any:
    """Opens and lists the storage; any failure is one DatabaseError line."""
    try:
        storage = opener()
        storage.get_all_studies()
    except Exception as error:  # Optuna and SQLAlchemy raise many kinds
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DatabaseError(f"{source} is no readable Optuna storage ({first[:200]})") from None
    return storage


def import_optuna(source: str | os.PathLike, db: TuningDatabase) -> MigrationSummary:
    """Copies the Optuna storage's studies, trials, confirmations and selections into `db`."""
    storage = open_optuna_storage(source)
    summary = MigrationSummary(os.fspath(source))
    workloads: list[Workload] = []
    trials: dict[str, list[Trial]] = {}
    confirmations: dict[str, dict[int, float | None]] = {}
    selections: dict[str, Selection] = {}
    for study in storage.get_all_studies():
        summary.studies += 1
        attrs = study.user_attrs
        workload = _workload(study.study_name, attrs)
        if isinstance(workload, str):
            summary.skipped.append(f"{study.study_name}: {workload}")
            continue
        workloads.append(workload)
        kept = _trials(workload.key, storage.get_all_trials(study._study_id, deepcopy=False))
        trials[workload.key] = kept
        numbers = {t.number for t in kept}
        confirmed = attrs.get(CONFIRMED_ATTR)
        if isinstance(confirmed, Mapping):
            confirmations[workload.key] = {
                int(n): finite_or_none(s) for n, s in confirmed.items() if str(n).isdigit() and int(n) in numbers
            }
        selection = _selection(workload.key, attrs.get(SELECTION_ATTR))
        if selection is not None:
            selections[workload.key] = selection
    with tempfile.TemporaryDirectory(prefix="wpk-migrate-") as tmp:
        path = Path(tmp) / "optuna.records"
        write_transfer(path, workloads, trials, confirmations, selections)
        summary.merged = db.import_file(path)
    return summary


def _workload(name: str, attrs: Mapping[str, Any]) -> Workload | str:
    """The study's workload, or why it has none."""
    task = attrs.get("task")
    if not isinstance(task, Mapping):
        return "no task attribute (not a kernel study)"
    try:
        return Workload(
            key=name,
            target=str(task["target"]),
            device=str(task.get("device", "")),
            kind=str(task.get("kind", "")),
            template=str(task.get("template", "")),
            description=str(task.get("description", name)),
            flops=int(task.get("flops") or 0),
            arg_shapes=tuple(tuple(s) for s in task.get("arg_shapes") or ()),
            output_shape=tuple(task.get("output_shape") or ()),
            num_weights=int(task.get("num_weights") or 0),
            kernel_name=str(task.get("kernel_name", "")),
            module_text=str(attrs.get("module_text") or ""),
        )
    except (KeyError, TypeError, ValueError) as error:
        return f"its task attribute is incomplete ({type(error).__name__}: {error})"


def _trials(key: str, frozen: Sequence[Any]) -> list[Trial]:
    """The study's finished trials as database trials (numbers kept; duplicates merge on import)."""
    from optuna.trial import TrialState

    from woodpecker.tune.params import trial_config

    kept = []
    for seq, trial in enumerate(sorted(frozen, key=lambda t: t.number), start=1):
        if trial.state not in (TrialState.COMPLETE, TrialState.FAIL):
            continue
        config = trial_config(trial)
        if not config:
            continue
        attrs = trial.user_attrs
        seconds = finite_or_none(trial.value) if trial.state == TrialState.COMPLETE else None
        failed = seconds is None
        error = str(attrs.get("error") or ("no finite time" if trial.state == TrialState.COMPLETE else "failed"))
        is_default = bool(attrs.get("is_default"))
        kept.append(
            Trial(
                key=key,
                number=trial.number,
                config=config,
                config_key=config_key(config),
                state=FAILED if failed else COMPLETE,
                strategy=str(attrs.get("strategy") or ("default" if is_default else "import")),
                is_default=is_default,
                seconds=seconds,
                times=tuple(float(t) for t in attrs.get("times") or () if _is_number(t)),
                relative=finite_or_none(attrs.get("relative")) if _is_number(attrs.get("relative")) else None,
                error=error[:2000] if failed else None,
                compile_seconds=float(attrs.get("compile_seconds") or 0.0),
                worker=IMPORT_WORKER,
                claimed_at=trial.datetime_start.timestamp() if trial.datetime_start else 0.0,
                finished_at=trial.datetime_complete.timestamp() if trial.datetime_complete else None,
                seq=seq,
            )
        )
    return kept


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


def _selection(key: str, data: Any) -> Selection | None:
    if not isinstance(data, Mapping) or not isinstance(data.get("candidates"), Mapping):
        return None
    candidates = {
        str(impl): CandidateTiming(finite_or_none(entry.get("seconds")), entry.get("error"))
        for impl, entry in data["candidates"].items()
        if isinstance(entry, Mapping)
    }
    return Selection(
        key=key,
        generated_config=config_from_json(data.get("generated_config") or {}),
        default_seconds=finite_or_none(data.get("default_seconds")),
        candidates=candidates,
        updated_at=0.0,  # older than anything measured since: an import never replaces a newer one
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m woodpecker.tune.migrate OPTUNA_STORAGE [DATABASE]`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (1, 2) or args[0].startswith("-"):
        print("usage: python -m woodpecker.tune.migrate OPTUNA_STORAGE [DATABASE]", file=sys.stderr)
        return 2
    try:
        with open_database(args[1] if len(args) == 2 else None) as db:
            print(import_optuna(args[0], db).line(db.location))
    except DatabaseError as error:
        print(f"woodpecker.tune.migrate: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
