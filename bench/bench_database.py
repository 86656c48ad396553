"""Times the tuning database (woodpecker.database) on SQLite, a journal and PostgreSQL.

* records: a database with 60 workloads (50 KB kernel modules), 32 finished trials each and
  three confirmations each; the time to open it and read the 60 records in one batched call
  (what a compile does), and the batched read alone (median of 20). `--optuna` adds the same
  read from an Optuna storage of the same shape (the old layout, one study per kernel).
* throughput: claim + finish pairs per second, with 1 and with 4 processes claiming distinct
  configurations of one shared workload at once.

    python bench/bench_database.py [--postgres URL | --start-postgres] [--optuna] [--ops 300]

`--start-postgres` starts a throwaway server like the tests do (initdb/pg_ctl on PATH).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "py"))

from database_support import PostgresServer, make_workload, throughput_worker

from woodpecker.database import open_database

KEYS = [f"cpu.conv.k{i:02d}.0123456789ab" for i in range(60)]
TRIALS = 32


def fill(location: str) -> None:
    with open_database(location) as db:
        db.add_workloads([make_workload(key) for key in KEYS])
        for key in KEYS:
            numbers = []
            for index in range(TRIALS):
                claim = db.claim(
                    key, {"tile": index, "vec": (4, 1)}, strategy="ga", budget=TRIALS, is_default=index == 0
                )
                trial = db.finish(claim, seconds=1.0 + (index * 7919 % 97) / 100, times=[0.001] * 10)
                numbers.append(trial.number)
            db.confirm(key, {n: 1.5 for n in numbers[:3]})


def time_records(location: str) -> tuple[float, float]:
    start = time.perf_counter()
    with open_database(location) as db:
        records = db.records(KEYS)
        opened = time.perf_counter() - start
        assert len(records) == len(KEYS)
        samples = []
        for _ in range(20):
            start = time.perf_counter()
            db.records(KEYS)
            samples.append(time.perf_counter() - start)
    return opened, statistics.median(samples)


def time_optuna(directory: Path) -> float:
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{directory / 'optuna.db'}"
    storage = optuna.storages.RDBStorage(url)
    for key in KEYS:
        study = optuna.create_study(study_name=key, storage=storage)
        study.set_user_attr("task", {"key": key})
        study.set_user_attr("module_text", make_workload(key).module_text)
        study.set_user_attr("confirmed_seconds", {"0": 1.5, "1": 1.5, "2": 1.5})
        dist = {"tile": CategoricalDistribution(list(range(TRIALS)))}
        for index in range(TRIALS):
            trial = create_trial(
                params={"tile": index},
                distributions=dist,
                value=1.0 + index / 100,
                user_attrs={"config": f'{{"tile": {index}}}', "strategy": "ga", "times": [0.001] * 10},
            )
            study.add_trial(trial)
    start = time.perf_counter()
    storage = optuna.storages.RDBStorage(url)
    present = {s.study_name for s in storage.get_all_studies()}
    for key in set(KEYS) & present:
        study = optuna.load_study(study_name=key, storage=storage)
        study.get_trials(deepcopy=False)
        _ = study.user_attrs
    return time.perf_counter() - start


def throughput(location: str, processes: int, ops: int) -> float:
    with open_database(location) as db:
        db.add_workloads([make_workload("cpu.bench.shared")])
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(
            target=throughput_worker, args=(location, "cpu.bench.shared", ops, index * ops, barrier, results)
        )
        for index in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    for _, _, error in outcomes:
        if error:
            raise RuntimeError(error)
    done = sum(count for _, count, _ in outcomes)
    return done / max(seconds for seconds, _, _ in outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL of an empty database")
    parser.add_argument("--start-postgres", action="store_true")
    parser.add_argument("--optuna", action="store_true")
    parser.add_argument("--ops", type=int, default=300, help="claim+finish pairs per process")
    args = parser.parse_args()
    server = PostgresServer.start() if args.start_postgres else None
    try:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            backends = {"sqlite": str(root / "r.db"), "journal": str(root / "r.journal")}
            postgres = args.postgres or (server.new_database() if server else None)
            if postgres:
                backends["postgresql"] = postgres
            print(f"records of {len(KEYS)} workloads ({TRIALS} trials each):")
            for name, location in backends.items():
                fill(location)
                opened, warm = time_records(location)
                print(f"  {name:10s} open + records {opened * 1000:7.1f} ms   records alone {warm * 1000:6.2f} ms")
            if args.optuna:
                print(f"  optuna     load 60 studies + trials + attrs {time_optuna(root) * 1000:7.1f} ms")
            print(f"claim+finish throughput ({args.ops} per process, one shared workload):")
            for name in backends:
                rates = []
                for processes in (1, 4):
                    if name == "postgresql":
                        location = server.new_database() if server else postgres
                    else:
                        location = str(root / f"t{processes}{Path(backends[name]).suffix}")
                    rates.append(throughput(location, processes, args.ops))
                print(f"  {name:10s} 1 process {rates[0]:7.0f}/s   4 processes {rates[1]:7.0f}/s (total)")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
