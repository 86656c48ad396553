"""Bounds on what a tool reads before handing it to MLIR: the input's kind and size, and the
nesting depth of the IR text.

MLIR's parser recurses once per nested region, attribute or type (`{`, `(`, `[`, `<`), so a
few thousand levels overflow the C stack (a segfault, no diagnostic). `nesting_overflow`
pre-scans the text (outside strings and `//` comments) and reports where it first goes
deeper than the limit; `read_bounded` refuses a FIFO, a device or a file over the size
limit instead of reading it forever.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass

from woodpecker.errors import WoodpeckerError
from woodpecker.runtime.bundle import file_kind

GIB = 1 << 30


@dataclass(frozen=True)
class InputLimits:
    """How much input a tool accepts."""

    max_bytes: int = GIB  # of one input file (or stdin)
    max_nesting: int = 512  # of `{ ( [ <` in the IR text


class InputError(WoodpeckerError):
    """An input that cannot be read within the limits (names the input and why)."""


@dataclass(frozen=True)
class NestingOverflow:
    """Where the nesting first goes deeper than the limit (1-based line and column)."""

    line: int
    col: int
    limit: int

    def message(self) -> str:
        return (
            f"IR nests deeper than {self.limit} levels of regions, attributes or types here "
            "(the input limit; MLIR's parser would overflow its stack)"
        )


_OPENERS = "{([<"
# Strings and comments are skipped whole; `->`, `>=` and `<=` are no brackets.
_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*|->|[<>]=|[{(\[<]|[})\]>]')


def nesting_overflow(text: str, limit: int) -> NestingOverflow | None:
    """The first place where `text` nests deeper than `limit` brackets, or None."""
    if sum(text.count(c) for c in _OPENERS) <= limit:
        return None  # cannot be deeper than the number of openers
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in _OPENERS:
            depth += 1
            if depth > limit:
                start = match.start()
                line = text.count("\n", 0, start) + 1
                col = start - (text.rfind("\n", 0, start) + 1) + 1
                return NestingOverflow(line, col, limit)
        elif len(token) == 1:
            depth = max(depth - 1, 0)
    return None


def check_input_file(path: str, limits: InputLimits) -> None:
    """Raises InputError unless `path` is a regular file within the size limit (checked with
    stat, before anything opens it: opening a FIFO would wait for a writer)."""
    what = f"input file '{path}'"
    try:
        info = os.stat(path)
    except OSError as err:
        raise InputError(f"cannot open {what}: {err.strerror or err}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{what} is not a regular file ({file_kind(info.st_mode)}); give a file or '-'")
    if info.st_size > limits.max_bytes:
        raise InputError(f"{what} is {info.st_size} bytes, over the limit of {limits.max_bytes} bytes")


def read_bounded(path: str, limits: InputLimits, binary: bool = False) -> str | bytes:
    """The contents of `path` ('-': stdin), at most `limits.max_bytes`; raises InputError for
    a file that is not a regular file (a FIFO, a device, a directory), is too big, cannot be
    opened or (text) is not UTF-8."""
    what = "standard input" if path == "-" else f"input file '{path}'"
    try:
        if path == "-" and not binary:
            text = sys.stdin.read(limits.max_bytes + 1)  # characters: at most as many as bytes
            if len(text) > limits.max_bytes:
                raise InputError(f"{what} is over the limit of {limits.max_bytes} bytes")
            return text
        if path == "-":
            data = sys.stdin.buffer.read(limits.max_bytes + 1)
        else:
            check_input_file(path, limits)
            with open(path, "rb") as handle:
                data = handle.read(limits.max_bytes + 1)
    except OSError as err:
        raise InputError(f"cannot open {what}: {err.strerror or err}") from None
    if len(data) > limits.max_bytes:
        raise InputError(f"{what} is over the limit of {limits.max_bytes} bytes")
    if binary:
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{what} is not UTF-8 text: {err}") from None
