"""What reading the tuning records costs a compile: the bundled tiny ResNet compiled with a
database holding a record for every one of its kernels.

    python bench/bench_record_lookup.py [--compiles 5] [--libraries all] [--db DIR/tuning.db]

Fills a fresh database with records of every kernel (`tune_tasks` with replayed times, no
MLIR measuring; in a child process), then compiles the model `--compiles` times in this
process and reports per compile the record look-up (the time spent in `Target.has_records`,
`record_configs` and the selection read, measured by wrapping them), the select stage and the
codegen stage. The first compile also pays the imports of the storage layer (SQLAlchemy, or
Optuna for the old layout), as a `wpk run` does. It only uses what every version of the
tuner has (tune_tasks, CompileOptions(tuning_db=...)), so the same script measures an older
checkout: `PYTHONPATH=OLD/python python bench/bench_record_lookup.py`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOOKUPS: dict[str, float] = {}


CODEGEN_STAGES = ("codegen", "libraries", "schedule", "lower-to-llvm", "machine-code", "bind-weights")

def timed(owner: Any, name: str, label: str) -> None:
    """Wraps owner.name so that its calls' time adds up in LOOKUPS[label]."""
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            LOOKUPS[label] = LOOKUPS.get(label, 0.0) + time.perf_counter() - start

    setattr(owner, name, wrapper)


def instrument() -> None:
    import woodpecker.select.plan as plan
    import woodpecker.select.selection as selection

    try:
        from woodpecker.targets.cpu import CpuTarget

        timed(CpuTarget, "has_records", "has_records")
    except ImportError:  # before the Target interface: plan.py asked tune.records
        import woodpecker.tune.records as records

        timed(records, "has_cpu_records", "has_records")
        timed(records, "record_configs", "records")
    if hasattr(plan, "record_configs"):
        timed(plan, "record_configs", "records")
    for name in ("stored_selections", "_study"):  # the database's batched read, or the old per-study load
        if hasattr(selection, name):
            timed(selection, name, "selections")


def fill(db: str) -> int:
    """Records for every kernel of the bundled model; returns how many workloads."""
    import optuna

    try:
        from woodpecker.measure.recorded import RecordedRunner
    except ImportError:  # an older checkout
        from woodpecker.tune.recorded import RecordedRunner
    from woodpecker.models import bundled_model_path
    from woodpecker.tune.tune_model import model_cpu_tasks
    from woodpecker.tune.tuner import TuneOptions, tune_tasks

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tasks = model_cpu_tasks(str(bundled_model_path()))
    runner = RecordedRunner(lambda task, config: 1e-3 * (1 + len(str(sorted(config.items()))) % 7 / 10))
    tune_tasks(tasks, runner, TuneOptions(trials=4, strategy="random", seed=0, storage=db, confirm_top=0))
    return len(tasks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compiles", type=int, default=5)
    parser.add_argument("--libraries", default="all", help="CompileOptions.libraries (default all)")
    parser.add_argument("--db", help="where to build the database (default: a temporary directory)")
    parser.add_argument("--fill", metavar="DB", help=argparse.SUPPRESS)  # the child: fill DB, print the count
    args = parser.parse_args(argv)
    if args.fill:
        print(fill(args.fill))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "tuning.db")
        child = subprocess.run([sys.executable, __file__, "--fill", db], capture_output=True, text=True, check=True)
        workloads = int(child.stdout.split()[-1])
        import woodpecker
        from woodpecker.compiler import CompileOptions
        from woodpecker.models import bundled_model_path

        instrument()
        print(f"{woodpecker.__file__}: {workloads} workloads with records in {db}")
        rows = []
        for index in range(args.compiles):
            LOOKUPS.clear()
            start = time.perf_counter()
            model = woodpecker.compile(str(bundled_model_path()),
                                       options=CompileOptions(tuning_db=db, libraries=args.libraries))  # fmt: skip
            total = time.perf_counter() - start
            stages = model.stats.stage_seconds
            lookup = sum(LOOKUPS.values())
            # Code generation: one "codegen" stage in older checkouts; libraries, schedule,
            # lower-to-llvm, machine-code and bind-weights (the stages after select) now.
            codegen = sum(v for k, v in stages.items() if k in CODEGEN_STAGES)
            rows.append((lookup, stages.get("select", 0.0), codegen, total))
            parts = ", ".join(f"{k} {v * 1e3:.1f}" for k, v in LOOKUPS.items())
            print(f"compile {index}: record look-up {lookup * 1e3:.1f} ms ({parts}); select stage "
                  f"{rows[-1][1] * 1e3:.0f} ms, codegen {rows[-1][2] * 1e3:.0f} ms, compile {total * 1e3:.0f} ms; "
                  f"{model.stats.tuned_kernels} kernels with records")  # fmt: skip
        warm = rows[1:] or rows
        print(f"record look-up: first compile {rows[0][0] * 1e3:.1f} ms, then median "
              f"{statistics.median(r[0] for r in warm) * 1e3:.1f} ms; codegen median "
              f"{statistics.median(r[2] for r in warm) * 1e3:.0f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
