"""`wpk tune` as a test worker process: the real command line, its CPU runner replaced by a
`RecordedRunner` that sleeps a fixed time per measurement (so the work, not the machine, sets
how long tuning takes), started together with the other workers (a barrier of files), and
writing what it measured to a log.

    python tests/py/tune_worker.py SLEEP_S BARRIER_DIR WORKERS LOG -- tune MODEL --in-process ...

LOG gets a JSON list of [task key, config_key, wall time] per measurement, also when the
command is interrupted. Exits with `wpk`'s exit status.
"""

from __future__ import annotations

import json
import os
import sys
import time
import zlib
from pathlib import Path

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS.parents[1] / "python"))

from woodpecker.database import config_key  # noqa: E402
from woodpecker.measure.recorded import RecordedRunner  # noqa: E402


def seconds(task, config) -> float:
    """A deterministic landscape: a configuration's time from a hash of it."""
    return 1e-3 * (1 + zlib.crc32(config_key(config).encode()) % 1000 / 1000)


def wait_for(barrier: Path, workers: int, timeout_s: float = 120.0) -> None:
    """Marks this worker ready and waits for the others."""
    barrier.mkdir(parents=True, exist_ok=True)
    (barrier / str(os.getpid())).touch()
    deadline = time.monotonic() + timeout_s
    while len(list(barrier.iterdir())) < workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(list(barrier.iterdir()))} of {workers} workers started")
        time.sleep(0.01)


def main(argv: list[str]) -> int:
    sleep_s, barrier, workers, log = float(argv[0]), Path(argv[1]), int(argv[2]), Path(argv[3])
    wpk_args = argv[argv.index("--") + 1 :]
    runners: list[RecordedRunner] = []

    class SleepingRunner(RecordedRunner):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(seconds, delay_s=sleep_s)
            self.log: list[tuple[str, str, float]] = []
            runners.append(self)
            wait_for(barrier, workers)

        def measure(self, task, configs):
            results = super().measure(task, configs)
            self.log.extend((task.key, config_key(c), time.time()) for c in configs)
            return results

    import woodpecker.measure.cpu_runner as cpu_runner

    cpu_runner.InProcessCpuRunner = SleepingRunner  # what `wpk tune --in-process` constructs
    from woodpecker.cli.main import main as wpk

    try:
        return wpk(wpk_args)
    finally:
        log.write_text(json.dumps([entry for runner in runners for entry in runner.log]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
