"""Classification of one finished case from what its process did (a pure function, tested by
tests/py/test_robustness_runner.py)."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

from case import CLEAN_ERROR, CORRECT, CRASH, HANG, HARNESS, MEMORY, NO_MESSAGE, OUTCOMES, TRACEBACK, WRONG

TRACEBACK_MARK = "Traceback (most recent call last)"
ERROR_LINE = re.compile(r"(^|\s|:)error:\s*\S", re.IGNORECASE)


@dataclass(frozen=True)
class Observed:
    """A finished (or killed) case process."""

    returncode: int | None  # None: killed at the timeout
    output: str  # stdout and stderr together
    verdict: dict | None  # what casekit wrote: {"outcome", "detail"} or {"raised", "message"}
    timed_out: bool = False


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _hit_memory_limit(output: str) -> bool:
    if "std::bad_alloc" in output or "LLVM ERROR: out of memory" in output:
        return True
    return TRACEBACK_MARK in output and re.search(r"^\s*MemoryError\b", output, re.MULTILINE) is not None


def _error_line(output: str) -> str | None:
    for line in output.splitlines():
        if ERROR_LINE.search(line):
            return line.strip()
    return None


def classify(seen: Observed, on_success: str = WRONG) -> tuple[str, str]:
    """(outcome, one line saying why) for a finished case."""
    verdict = seen.verdict or {}
    if seen.timed_out:
        return HANG, f"still running at the timeout; last output: {_last_line(seen.output)[:160]!r}"
    if _hit_memory_limit(seen.output):
        return MEMORY, _last_line(seen.output)[:200]
    if seen.returncode is not None and seen.returncode < 0:
        number = -seen.returncode
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        return CRASH, f"killed by {name}; last output: {_last_line(seen.output)[:160]!r}"
    if "Fatal Python error" in seen.output:
        return CRASH, _last_line(seen.output)[:200]
    if verdict.get("outcome") == HARNESS:
        return HARNESS, verdict.get("detail", "")[:300]
    if TRACEBACK_MARK in seen.output:
        if "/woodpecker/" not in seen.output:  # no frame of Woodpecker: the case's own code failed
            return HARNESS, f"the case failed outside Woodpecker: {_last_line(seen.output)[:160]}"
        return TRACEBACK, _last_line(seen.output)[:200]
    if verdict.get("outcome") in OUTCOMES:
        return verdict["outcome"], str(verdict.get("detail", ""))[:300]
    if "MISMATCH" in seen.output:
        mismatch = next(line for line in seen.output.splitlines() if "MISMATCH" in line)
        return WRONG, mismatch.strip()[:200]
    if "raised" in verdict:  # an API case that raised a WoodpeckerError
        message = str(verdict.get("message", ""))
        line = f"{verdict['raised']}: {message}"
        if message.strip() and "\n" not in message.strip():
            return CLEAN_ERROR, line[:300]
        return NO_MESSAGE, f"{verdict['raised']} with a {'multi-line' if message.strip() else 'blank'} message"
    if seen.returncode in (1, 2):
        line = _error_line(seen.output)
        if line is None:
            return (
                NO_MESSAGE,
                f"exit status {seen.returncode} and no error line; last: {_last_line(seen.output)[:120]!r}",
            )
        return CLEAN_ERROR, line[:300]
    if seen.returncode == 0:
        if on_success == CORRECT:
            return CORRECT, _last_line(seen.output)[:200]
        return on_success, f"exit status 0 (accepted); last output: {_last_line(seen.output)[:160]!r}"
    return CRASH, f"exit status {seen.returncode}; last output: {_last_line(seen.output)[:160]!r}"
