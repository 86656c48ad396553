"""Runs one case in a fresh Python: its own temporary directory and HOME, a tuning database
inside it, an address-space limit, no core files, a bounded file size, its own process group
(killed as a whole at the timeout)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from case import SKIPPED, Case, Result
from classify import Observed, classify

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@dataclass(frozen=True)
class Limits:
    address_space_bytes: int = 6 << 30
    file_size_bytes: int = 2 << 30
    output_bytes: int = 1 << 20  # what is kept of a case's output


def _limit(limits: Limits):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limits.address_space_bytes, limits.address_space_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes))

    return apply


def case_environment(workdir: Path, fixtures: Path | None, result_file: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TERM", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        HOME=str(workdir),
        XDG_CACHE_HOME=str(workdir / ".cache"),
        WOODPECKER_TUNING_DB=str(workdir / "default-tuning.db"),
        PYTHONPATH=os.pathsep.join([str(REPO / "python"), str(HERE)]),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        WPK_CASE_RESULT=str(result_file),
        WPK_FIXTURES=str(fixtures or ""),
    )
    return env


def run_case(case: Case, fixtures: Path | None = None, limits: Limits = Limits(), python: str = sys.executable,
             timeout_s: float | None = None) -> Result:  # fmt: skip
    """Runs `case` and classifies what happened."""
    timeout = timeout_s if timeout_s is not None else case.timeout_s
    with tempfile.TemporaryDirectory(prefix="wpk-case-") as tmp:
        workdir = Path(tmp) / "work"
        workdir.mkdir()
        code_file, result_file = Path(tmp) / "case.py", Path(tmp) / "verdict.json"
        code_file.write_text(case.code)
        start = time.monotonic()
        process = subprocess.Popen(
            [python, str(HERE / "child.py"), str(code_file)],
            cwd=workdir,
            env=case_environment(workdir, fixtures, result_file),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_limit(limits),
        )
        timed_out = False
        try:
            raw, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            raw, _ = process.communicate()
        finally:  # whatever the case left behind in its group (a tuner it started) goes too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        seconds = time.monotonic() - start
        output = raw[-limits.output_bytes :].decode(errors="replace")
        verdict = None
        if result_file.exists():
            try:
                verdict = json.loads(result_file.read_text())
            except ValueError:
                verdict = None
    seen = Observed(None if timed_out else process.returncode, output, verdict, timed_out)
    outcome, detail = classify(seen, case.on_success)
    accepted = outcome in case.accept or outcome == SKIPPED  # a stated skip is listed apart, not a failure
    return Result(case.id, case.klass, outcome, detail, seconds, accepted, seen.returncode, output[-4000:])
