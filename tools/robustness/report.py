"""The per-class table, the failing cases and the JSON of a run."""

from __future__ import annotations

from collections import Counter

from case import CLEAN_ERROR, CORRECT, CRASH, HANG, MEMORY, SKIPPED, TRACEBACK, WRONG, Result

COLUMNS = (("clean-error", CLEAN_ERROR), ("correct", CORRECT), ("traceback", TRACEBACK), ("crash", CRASH),
           ("hang", HANG), ("wrong", WRONG), ("memory", MEMORY))  # fmt: skip
NAMED = {outcome for _, outcome in COLUMNS}


def table(results: list[Result]) -> str:
    classes = sorted({r.klass for r in results})
    header = ["class", "cases", *[title for title, _ in COLUMNS], "other", "failing"]
    rows = []
    for klass in [*classes, "total"]:
        mine = [r for r in results if klass in ("total", r.klass)]
        counts = Counter(r.outcome for r in mine)
        other = sum(n for outcome, n in counts.items() if outcome not in NAMED)
        rows.append([klass, len(mine), *[counts[o] for _, o in COLUMNS], other, sum(not r.accepted for r in mine)])
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row) -> str:
        return " | ".join(
            str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )

    rule = "-+-".join("-" * w for w in widths)
    others = Counter(r.outcome for r in results if r.outcome not in NAMED)
    note = f"\nother: {', '.join(f'{n} {o}' for o, n in sorted(others.items()))}" if others else ""
    return "\n".join([line(header), rule, *(line(r) for r in rows[:-1]), rule, line(rows[-1])]) + note


def failing_lines(results: list[Result]) -> list[str]:
    return [f"  {r.case_id}: {r.outcome} ({r.seconds:.1f}s): {r.detail}" for r in results if not r.accepted]


def json_report(results: list[Result]) -> dict:
    return {
        "results": [
            {
                "case": r.case_id,
                "class": r.klass,
                "outcome": r.outcome,
                "accepted": r.accepted,
                "detail": r.detail,
                "seconds": round(r.seconds, 2),
                "returncode": r.returncode,
                "output_tail": r.output_tail,
            }
            for r in results
        ],
        "counts": {
            k: dict(Counter(r.outcome for r in results if r.klass == k)) for k in sorted({r.klass for r in results})
        },
    }


def skipped_lines(results: list[Result]) -> list[str]:
    return [f"  {r.case_id}: {r.detail}" for r in results if r.outcome == SKIPPED]
