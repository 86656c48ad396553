"""The classifier of tools/robustness (run_cases.py) on three synthetic cases, each in its own
process as the runner runs them: a clean error, a traceback, and a hang (2 s timeout)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "robustness"
sys.path.insert(0, str(TOOL))

from case import CLEAN_ERROR, HANG, TRACEBACK, Case  # noqa: E402
from sandbox import run_case  # noqa: E402

CLEAN = "api(lambda: (_ for _ in ()).throw(__import__('woodpecker.errors').errors.ShapeError('input x: bad')))\n"
# a TypeError raised inside woodpecker/errors.py (sorted() of an int)
TRACE = (
    "from woodpecker.errors import UnsupportedOperatorError\nUnsupportedOperatorError('Op', 'n', 'r', supported=5)\n"
)
HANGS = "import time\ntime.sleep(60)\n"


@pytest.mark.parametrize(
    ("code", "outcome", "detail"),
    [
        (CLEAN, CLEAN_ERROR, "ShapeError: input x: bad"),
        (TRACE, TRACEBACK, "TypeError"),
        (HANGS, HANG, "still running at the timeout"),
    ],
)
def test_the_runner_classifies_what_a_case_process_did(code: str, outcome: str, detail: str) -> None:
    result = run_case(Case("synthetic", outcome, code), timeout_s=2.0)
    assert result.outcome == outcome, result
    assert detail in result.detail
    assert result.seconds < 30
