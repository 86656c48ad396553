"""What one robustness case is, and the outcomes a run of it can have."""

from __future__ import annotations

from dataclasses import dataclass, field

CLEAN_ERROR = "clean-error"  # exit status 1 or 2 (or a raised WoodpeckerError) with one error line
CORRECT = "correct"  # ran, and the result is the expected one
TRACEBACK = "traceback"  # a Python traceback reached the user
CRASH = "crash"  # killed by a signal (or an exit status that is neither 0, 1 nor 2)
HANG = "hang"  # still running at the timeout
WRONG = "wrong-answer"  # ran and disagrees, accepted a bad input silently, lost or duplicated work
MEMORY = "memory"  # hit the address-space limit (MemoryError, bad_alloc)
NO_MESSAGE = "no-message"  # failed without a traceback but without a one-line error either
SKIPPED = "skipped"  # the case's precondition is missing (stated why)
HARNESS = "harness-error"  # the case's own setup failed: a bug of the case, not of Woodpecker

OUTCOMES = (CLEAN_ERROR, CORRECT, TRACEBACK, CRASH, HANG, WRONG, MEMORY, NO_MESSAGE, SKIPPED, HARNESS)
GOOD = frozenset({CLEAN_ERROR, CORRECT})


@dataclass(frozen=True)
class Case:
    """One scenario, run in a fresh Python with `casekit` imported (`from casekit import *`).

    `code` builds its inputs in the current directory (a fresh temporary one) and then calls the
    thing under test through casekit (`api`, `cli`, `wpk_opt`, `correct`, `wrong`, ...).
    `on_success` is the outcome when the code ends with exit status 0 and states no verdict:
    by default a bad input that was accepted silently.
    """

    klass: str
    name: str
    code: str
    accept: frozenset[str] = GOOD
    timeout_s: float = 20.0
    on_success: str = WRONG
    needs: tuple[str, ...] = ()  # fixtures built once per run (see fixtures.py)
    note: str = ""
    extended: bool = False  # run only with --all

    @property
    def id(self) -> str:
        return f"{self.klass}/{self.name}"


@dataclass
class Result:
    """What the sandbox saw of one case, and how it was classified."""

    case_id: str
    klass: str
    outcome: str
    detail: str
    seconds: float
    accepted: bool
    returncode: int | None = None
    output_tail: str = field(default="", repr=False)
