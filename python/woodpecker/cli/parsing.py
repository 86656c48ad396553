"""How every `wpk` sub-command parses its arguments and ends: one parser class, the argument
types that refuse bad values, and `run_command`, which turns what a command raises into one
line and an exit status, the same for every sub-command:

    0    done
    1    a failure: a `WoodpeckerError` (or an OS error) -> `wpk <sub>: error: <one line>`
    2    a usage error: argparse, or a `UsageError` -> `wpk <sub>: error: <one line>`
    130  Ctrl-C -> `wpk <sub>: interrupted`

No MLIR and no numpy here: `wpk measure` on a GPU host uses it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from woodpecker.errors import WoodpeckerError

USAGE_ERROR = 2
FAILURE = 1
INTERRUPTED = 130


class UsageError(WoodpeckerError):
    """An argument the command cannot use (found after parsing: an input the model does not
    have, a feed file of the wrong shape): exit status 2, like argparse's own errors."""


class WpkArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that takes no abbreviations (`--input` is never `--input-shape`) and
    reports a usage error in one line: `<prog>: error: <message>` (then exit status 2)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {one_line(message)} (--help lists the options)\n")


def one_line(text: object) -> str:
    """`text` on one line (the lines of a multi-line message joined by '; ')."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return "; ".join(lines) if lines else type(text).__name__


def run_command(prog: str, command: Callable[[], int]) -> int:
    """`command()`'s exit status; what it raises becomes one line on stderr and the status of
    the table above."""
    try:
        return command()
    except UsageError as err:
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        return USAGE_ERROR
    except WoodpeckerError as err:
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        return FAILURE
    except OSError as err:  # a file the command writes or reads outside the checked readers
        where = f"{err.filename}: " if err.filename else ""
        print(f"{prog}: error: {where}{err.strerror or one_line(err)}", file=sys.stderr)
        return FAILURE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED


def parse_with(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | int:
    """The parsed arguments, or the exit status argparse chose (0 for --help/--version, 2 for a
    usage error) instead of raising SystemExit: `main(argv)` returns a status in-process. A
    sub-command's parser is `parser` in its defaults."""
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # said by the sub-command's parser (`wpk run: error: ...`), not by `wpk`'s
            getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
        return args
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else USAGE_ERROR


# -- argument types: each refuses a bad value with a message argparse prefixes with the option --


def positive_int(text: str) -> int:
    """An int >= 1 (`--repeat`, `--threads`, `--trials`)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def non_negative_int(text: str) -> int:
    """An int >= 0 (`--seed`, `--warmup`, `--confirm`)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, not {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (`--timeout`, `--time-budget`)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, not {text}")
    return value


def directory_path(text: str) -> Path:
    """A directory to write into: it may not exist yet, but may not be an existing file."""
    path = Path(text)
    if not text:
        raise argparse.ArgumentTypeError("an empty path is not a directory")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"'{text}' exists and is not a directory")
    return path


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None


# -- which tuning records a command uses ----------------------------------------------------------

_PASSWORD = re.compile(r"(://[^:/@]*):[^@/]*@")


def storage_text(db: str | None) -> str:
    """The tuning database as it is shown: the default's path when not named, the home
    directory as ~, a URL's password hidden."""
    from woodpecker.database import default_location

    text = default_location() if db is None else db
    home = str(Path.home())
    if text.startswith(home + "/"):
        text = "~" + text[len(home) :]
    return _PASSWORD.sub(r"\1:***@", text)
