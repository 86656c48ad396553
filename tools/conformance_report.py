#!/usr/bin/env python3
"""ONNX node conformance of Woodpecker as a per-op table (op, passed, failed, skipped, total).

Runs exactly what tests/py/test_node_conformance.py runs (same selection, frozen inputs, skip
rules, KNOWN_LIMITATIONS and tolerances rtol=1e-4/atol=1e-5), without pytest, then prints the
table and every failure with its first error line.

    python tools/conformance_report.py                 # all of woodpecker.importer.SUPPORTED_OPS
    python tools/conformance_report.py --ops Conv,Relu # a subset
    python tools/conformance_report.py --markdown      # the table as Markdown
    python tools/conformance_report.py --ops ArgMax,Add --by-op
        # also each op's skip reasons, condensed (the KNOWN_LIMITATIONS reason, or the dtype)
    python tools/conformance_report.py --downgrade-opset 21
        # DIAGNOSTIC ONLY: converts test models above that opset with onnx.version_converter first
        # (shows what fails behind an importer opset limit; not the conformance result)

Exit status: 0 if nothing failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for _p in (REPO_ROOT / "python", REPO_ROOT / "tests" / "py"):
    sys.path.insert(0, str(_p))

import onnx  # noqa: E402
from conformance import CaseResult, ensure_node_test_data, format_table, load_index, run_case, select_cases  # noqa: E402


def _markdown(results: list[CaseResult]) -> str:
    plain = format_table((r.case.primary_op, r.status) for r in results).splitlines()
    rows = [line.split() for line in plain if not line.startswith("-")]
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)


_DTYPE_SKIP = re.compile(r"^non-f32 dtype: (?:input|output) '[^']*' is (\w+)")


def _skip_label(result: CaseResult, known_limitations: dict[str, str]) -> str:
    """A skip reason without the test's own names: its KNOWN_LIMITATIONS reason, or the dtype."""
    if result.case.name in known_limitations and result.reason.startswith("known limitation"):
        return known_limitations[result.case.name]
    match = _DTYPE_SKIP.match(result.reason)
    return f"{match.group(1)} data" if match else result.reason


def _skips_by_op(results: list[CaseResult], known_limitations: dict[str, str]) -> list[str]:
    """One line per op with skipped tests: the count, then each condensed reason with its count."""
    by_op: dict[str, collections.Counter[str]] = {}
    for r in results:
        if r.status == "skipped":
            by_op.setdefault(r.case.primary_op, collections.Counter())[_skip_label(r, known_limitations)] += 1
    lines = []
    for op, reasons in sorted(by_op.items()):
        listed = "; ".join(f"{label} x{n}" for label, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(f"- {op} ({sum(reasons.values())}): {listed}")
    return lines


def _compile_fn(downgrade_opset: int | None) -> Callable[[onnx.ModelProto], Any]:
    import woodpecker

    if downgrade_opset is None:
        return woodpecker.compile

    from onnx import version_converter

    def compile_downgraded(model: onnx.ModelProto) -> Any:
        version = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
        if version > downgrade_opset:
            model = version_converter.convert_version(model, downgrade_opset)
        return woodpecker.compile(model)

    return compile_downgraded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", help="comma-separated op types (default: woodpecker.importer.SUPPORTED_OPS)")
    parser.add_argument("--dir", type=Path, help="node test data directory (default: the cache)")
    parser.add_argument("-k", dest="pattern", help="only tests whose name contains this substring")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--skips", action="store_true", help="also list every skipped test with its reason")
    parser.add_argument("--by-op", action="store_true", help="also each op's skip reasons, condensed")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each test as it runs")
    parser.add_argument(
        "--downgrade-opset",
        type=int,
        metavar="N",
        help="diagnostic only: convert models above opset N to N before compiling",
    )
    args = parser.parse_args(argv)

    from test_node_conformance import KNOWN_LIMITATIONS, LIMITATION_ERRORS

    from woodpecker.importer import SUPPORTED_OPS

    ops = [o.strip() for o in args.ops.split(",")] if args.ops else sorted(SUPPORTED_OPS)
    start = time.perf_counter()
    cache = ensure_node_test_data(args.dir)
    index = load_index(cache)
    cases = select_cases(ops, cache)
    if args.pattern:
        cases = [c for c in cases if args.pattern in c.name]
    compile_fn = _compile_fn(args.downgrade_opset)

    results: list[CaseResult] = []
    for case in cases:
        t0 = time.perf_counter()
        result = run_case(case, compile_fn, KNOWN_LIMITATIONS, LIMITATION_ERRORS)
        results.append(result)
        if args.verbose:
            print(f"{time.perf_counter() - t0:6.2f}s {result.status:8} {case.name}  {result.reason}", flush=True)
    elapsed = time.perf_counter() - start

    title = "Woodpecker ONNX node conformance"
    if args.downgrade_opset is not None:
        title += f" (DIAGNOSTIC: models downgraded to opset {args.downgrade_opset})"
    print(f"{title}: onnx {index['onnx_version']}, {len(cases)} node tests, {elapsed:.1f} s")
    print(f"data: {cache} (generated in {index['generation_seconds']} s)\n")
    print(_markdown(results) if args.markdown else format_table((r.case.primary_op, r.status) for r in results))
    if args.by_op:
        lines = _skips_by_op(results, KNOWN_LIMITATIONS)
        if lines:
            print("\nskipped per op (a non-f32 dtype, or the known limitation):")
            print("\n".join(lines))
    unexercised = sorted(set(ops) - set().union(*(c.ops for c in cases)))
    if unexercised:
        print(f"\nops without any selected node test: {', '.join(unexercised)}")
    for status in ("failed", "skipped") if args.skips else ("failed",):
        by_reason: dict[str, list[CaseResult]] = {}
        for r in results:
            if r.status == status:
                by_reason.setdefault(r.reason, []).append(r)
        if by_reason:
            total = sum(len(v) for v in by_reason.values())
            print(f"\n{status} ({total}), grouped by first error line:")
        for reason, group in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            ops = sorted({r.case.primary_op for r in group})
            print(f"- {len(group)} [{', '.join(ops)}]: {reason}")
            print(f"    {' '.join(r.case.name for r in group)}")
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
