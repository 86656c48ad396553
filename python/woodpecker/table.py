"""Fixed-width text tables for the terminal: the one printer of `wpk tune`, `wpk tune-report`
and the implementation-selection tables (`woodpecker.select.report`), and the number formats
they share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """A column's header and alignment (numbers right-aligned, text left-aligned)."""

    header: str
    right: bool = False


def format_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], footer: Sequence[Sequence[str]] = (), rule: bool = True
) -> str:
    """The table: the header, a rule of dashes (when `rule`), the rows, then the `footer` rows
    (totals) after a second rule. Every row has one cell per column; trailing blanks are cut."""
    all_rows = [[c.header for c in columns], *rows, *footer]
    for row in all_rows:
        if len(row) != len(columns):
            raise ValueError(f"a table row has {len(row)} cells for {len(columns)} columns: {row!r}")
    widths = [max(len(row[i]) for row in all_rows) for i in range(len(columns))]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if col.right else c.ljust(w) for c, w, col in zip(cells, widths, columns, strict=True)]
        return "  ".join(parts).rstrip()

    dashes = "  ".join("-" * w for w in widths)
    lines = [line(all_rows[0]), *([dashes] if rule else []), *(line(row) for row in rows)]
    if footer:
        lines += [dashes, *(line(row) for row in footer)]
    return "\n".join(lines)


def format_quantity(value: float | None) -> str:
    """A positive quantity with 3-4 significant digits and no exponent: 1234, 123.4, 12.34,
    1.234, 0.123, '<0.001' below that; '-' when unknown."""
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:.0f}"
    if value >= 100:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}" if value >= 0.001 else "<0.001"


def format_us(seconds: float | None) -> str:
    """Seconds as microseconds: 2 decimals below 100 µs, 1 from there ('12.34', '123.4',
    '12345.6'); '-' when unknown."""
    if seconds is None:
        return "-"
    us = seconds * 1e6
    return f"{us:.2f}" if us < 100 else f"{us:.1f}"


def format_ms(seconds: float | None) -> str:
    """Seconds as milliseconds with 3 decimals ('0.412'), 4 significant digits below 0.01 ms."""
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms >= 0.01 else f"{ms:.4g}"
