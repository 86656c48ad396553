"""MLIR diagnostics for command-line tools: capture, mlir-opt-style printing, and `--verify-diagnostics`.

Printing follows mlir-opt's source-manager handler: `file:line:col: error: msg`,
then the source line and a caret when the location is in a known input buffer.
A location without a file position prints as itself (`loc("conv_1"): error: ...`),
an unknown one as `<unknown>:0: error: ...`.

`DiagnosticVerifier` implements mlir-opt's `--verify-diagnostics` on one buffer:
comments `expected-(error|warning|note|remark)[-re] [@+N|@-N|@above|@below|@unknown] {{text}}`
each expect one diagnostic of that severity on that line whose message contains
`text` (`-re`: `{{regex}}` blocks inside `text` are regular expressions).
Notes attached to a diagnostic are verified like diagnostics, except the
"see current operation" notes the bindings always attach (mlir-opt turns them off
under --verify-diagnostics).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mlir import ir

SEVERITIES = {
    ir.DiagnosticSeverity.ERROR: "error",
    ir.DiagnosticSeverity.WARNING: "warning",
    ir.DiagnosticSeverity.NOTE: "note",
    ir.DiagnosticSeverity.REMARK: "remark",
}

OP_NOTE_PREFIX = "see current operation:"
MAX_SOURCE_LINE = 200  # characters of a source line shown under a diagnostic

_EXPECTED = re.compile(
    r"expected-(error|note|remark|warning)(-re)? *(@([+-][0-9]+|above|below|unknown))? *\{\{(.*)\}\}$"
)


@dataclass(frozen=True)
class SourcePos:
    """A file:line:col position (1-based line and column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def find_file_pos(loc: ir.Location, rename: dict[str, str] | None = None) -> SourcePos | None:
    """The first file:line:col inside `loc` (through name, call-site and fused locations)."""
    if loc.is_a_file():
        name = loc.filename
        if rename and name in rename:
            name = rename[name]
        return SourcePos(name, loc.start_line, loc.start_col)
    children: list[ir.Location] = []
    if loc.is_a_name():
        children = [loc.child_loc]
    elif loc.is_a_callsite():
        children = [loc.callee, loc.caller]
    elif loc.is_a_fused():
        children = list(loc.locations)
    for child in children:
        pos = find_file_pos(child, rename)
        if pos is not None:
            return pos
    return None


@dataclass(frozen=True)
class Diag:
    """A diagnostic detached from MLIR (safe to keep after the handler returns)."""

    severity: str
    message: str
    pos: SourcePos | None = None
    loc_text: str = "<unknown>:0"
    notes: tuple[Diag, ...] = ()

    @classmethod
    def from_mlir(cls, diag: Any, rename: dict[str, str] | None = None) -> Diag:
        """From an `ir.Diagnostic` (handler argument) or `ir.DiagnosticInfo` (in MLIRError)."""
        loc = diag.location
        loc_text = str(loc)
        if loc_text == "loc(unknown)":
            loc_text = "<unknown>:0"
        return cls(
            severity=SEVERITIES.get(diag.severity, "error"),
            message=str(diag.message),
            pos=find_file_pos(loc, rename),
            loc_text=loc_text,
            notes=tuple(cls.from_mlir(n, rename) for n in diag.notes),
        )

    @classmethod
    def at(cls, severity: str, loc: ir.Location, message: str, rename: dict[str, str] | None = None) -> Diag:
        """A diagnostic made here (not by MLIR) at `loc`, e.g. a warning the bindings cannot emit."""
        loc_text = str(loc)
        return cls(
            severity, message, find_file_pos(loc, rename), "<unknown>:0" if loc_text == "loc(unknown)" else loc_text
        )

    @classmethod
    def tool_error(cls, message: str, tool: str = "wpk-opt") -> Diag:
        """An error that has no IR location; prints as `wpk-opt: error: msg`."""
        return cls("error", message, None, tool)

    def where(self) -> str:
        return str(self.pos) if self.pos is not None else self.loc_text


@dataclass
class SourceBuffers:
    """Input texts by file name, for showing the source line of a diagnostic."""

    texts: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, text: str) -> None:
        self.texts[name] = text.split("\n")

    def line(self, pos: SourcePos) -> str | None:
        lines = self.texts.get(pos.file)
        if lines is None or not 1 <= pos.line <= len(lines):
            return None
        return lines[pos.line - 1].rstrip("\r")


def render(
    severity: str,
    message: str,
    pos: SourcePos | None,
    loc_text: str,
    sources: SourceBuffers | None,
    show_source: bool = True,
    range_len: int = 0,
) -> str:
    """One message in mlir-opt's format, with the source line and caret if known."""
    head = f"{pos if pos is not None else loc_text}: {severity}: {message}"
    if not show_source or pos is None or sources is None:
        return head
    line = sources.line(pos)
    if line is None:
        return head
    col = max(pos.col - 1, 0)
    if len(line) > MAX_SOURCE_LINE:  # a window around the column, not a megabyte of text
        start = max(col - MAX_SOURCE_LINE // 2, 0)
        line, col = line[start : start + MAX_SOURCE_LINE], col - start
    return f"{head}\n{line}\n{' ' * col}^{'~' * range_len}"


def format_diagnostic(diag: Diag, sources: SourceBuffers | None = None, drop_op_notes: bool = False) -> str:
    """`diag` and its notes as mlir-opt prints them."""
    parts = [render(diag.severity, diag.message, diag.pos, diag.loc_text, sources)]
    for note in diag.notes:
        if drop_op_notes and note.message.startswith(OP_NOTE_PREFIX):
            continue
        # Like mlir-opt, a note at its parent's position does not repeat the source line.
        same = note.pos is not None and note.pos == diag.pos
        parts.append(render(note.severity, note.message, note.pos, note.loc_text, sources, not same))
    return "\n".join(parts)


@dataclass
class DiagnosticCollector:
    """A context diagnostic handler that records every diagnostic it is given."""

    rename: dict[str, str] = field(default_factory=dict)
    diagnostics: list[Diag] = field(default_factory=list)

    def __call__(self, diag: ir.Diagnostic) -> bool:
        try:
            self.diagnostics.append(Diag.from_mlir(diag, self.rename))
        except Exception as err:  # a handler must never raise into MLIR
            self.diagnostics.append(Diag.tool_error(f"cannot read diagnostic: {err}"))
        return True


def from_mlir_error(err: ir.MLIRError, rename: dict[str, str] | None = None) -> list[Diag]:
    """The diagnostics carried by an MLIRError."""
    return [Diag.from_mlir(d, rename) for d in err.error_diagnostics]


# ----------------------------------------------------------------------------
# --verify-diagnostics


@dataclass
class ExpectedDiag:
    """One `expected-*` designator."""

    severity: str
    line: int | None  # None: @unknown (a diagnostic without a file position)
    text: str
    designator: SourcePos
    regex: re.Pattern[str] | None = None
    matched: bool = False

    def matches(self, message: str) -> bool:
        if self.regex is not None:
            return self.regex.search(message) is not None
        return self.text in message


def _expected_regex(text: str) -> re.Pattern[str]:
    """mlir's `-re` form: literal text with `{{regex}}` blocks."""
    out, rest = [], text
    while rest:
        start = rest.find("{{")
        if start < 0:
            out.append(re.escape(rest))
            break
        out.append(re.escape(rest[:start]))
        end = rest.find("}}", start + 2)
        if end < 0:
            raise ValueError("found start of regex with no end '}}'")
        out.append("(" + rest[start + 2 : end] + ")")
        rest = rest[end + 2 :]
    return re.compile("".join(out))


@dataclass
class DiagnosticVerifier:
    """Matches the diagnostics of one buffer against its `expected-*` designators."""

    file: str
    sources: SourceBuffers
    expected: list[ExpectedDiag] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @classmethod
    def from_text(cls, file: str, text: str, sources: SourceBuffers) -> DiagnosticVerifier:
        """Scans `text` (the buffer, lines numbered from 1 as in the file) for designators."""
        verifier = cls(file, sources)
        last_plain_line = 0  # 0-based index of the last line without a designator
        below: list[ExpectedDiag] = []
        lines = text.split("\n")
        for index, raw in enumerate(lines):
            match = _EXPECTED.search(raw.rstrip())
            if match is None:
                for exp in below:
                    exp.line = index + 1
                below.clear()
                last_plain_line = index
                continue
            kind, is_re, _, offset, body = match.groups()
            designator = SourcePos(file, index + 1, match.start() + 1)
            exp = ExpectedDiag(kind, index + 1, body, designator)
            if is_re:
                try:
                    exp.regex = _expected_regex(body)
                except (ValueError, re.error) as err:
                    verifier.messages.append(render("error", f"invalid regex: {err}", designator, "", sources))
                    continue
            if offset:
                if offset[0] in "+-":
                    delta = int(offset[1:])
                    exp.line = index + 1 + (delta if offset[0] == "+" else -delta)
                elif offset == "unknown":
                    exp.line = None
                elif offset == "above":
                    exp.line = last_plain_line + 1
                else:  # below: the next line without a designator
                    exp.line = len(lines)
                    below.append(exp)
            verifier.expected.append(exp)
        return verifier

    def process(self, diag: Diag) -> None:
        """Checks one diagnostic and its notes."""
        self._process_one(diag)
        for note in diag.notes:
            if not note.message.startswith(OP_NOTE_PREFIX):
                self._process_one(note)

    def process_all(self, diags: Iterable[Diag]) -> None:
        for diag in diags:
            self.process(diag)

    def _process_one(self, diag: Diag) -> None:
        near_miss: ExpectedDiag | None = None
        if diag.pos is None:
            candidates = [e for e in self.expected if e.line is None]
        elif diag.pos.file == self.file:
            candidates = [e for e in self.expected if e.line == diag.pos.line]
        else:
            candidates = []
        for exp in candidates:
            if exp.matches(diag.message):
                if exp.severity == diag.severity and not exp.matched:
                    exp.matched = True
                    return
                if exp.severity != diag.severity:
                    near_miss = exp
        # mlir-opt lets one designator absorb repeated identical diagnostics.
        for exp in candidates:
            if exp.matched and exp.severity == diag.severity and exp.matches(diag.message):
                return
        if near_miss is not None:
            self.messages.append(
                render(
                    "error",
                    f"'{diag.severity}' diagnostic emitted when expecting a '{near_miss.severity}'",
                    near_miss.designator,
                    "",
                    self.sources,
                )
            )
        else:
            self.messages.append(
                render("error", f"unexpected {diag.severity}: {diag.message}", diag.pos, diag.loc_text, self.sources)
            )

    def finish(self) -> list[str]:
        """All verification failures: unexpected diagnostics, then expectations never met."""
        for exp in self.expected:
            if not exp.matched:
                self.messages.append(
                    render(
                        "error",
                        f'expected {exp.severity} "{exp.text}" was not produced',
                        exp.designator,
                        "",
                        self.sources,
                        range_len=len(exp.text),
                    )
                )
            exp.matched = True  # report once
        return self.messages
