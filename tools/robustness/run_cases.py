#!/usr/bin/env python3
"""Robustness cases of issue #19: each a small scenario a careless or hostile user could make,
run in its own process (address-space limit, timeout) and classified automatically.

    python tools/robustness/run_cases.py [--class NAME] [--case SUBSTRING] [--jobs 1]
                                         [--timeout S] [--json out.json] [--list]

Prints a table per class (cases, clean-error, correct, traceback, crash, hang, wrong, memory,
other) and one line per failing case (its outcome is not one the case accepts). Exit status 0
when every case is acceptable, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from case import Case, Result  # noqa: E402
from fixtures import build_fixtures  # noqa: E402
from report import failing_lines, json_report, skipped_lines, table  # noqa: E402
from sandbox import Limits, run_case  # noqa: E402

CASE_MODULES = ("cases_crashes", "cases_models", "cases_inputs", "cases_arguments", "cases_wpk_opt",
                "cases_storage", "cases_concurrency", "cases_plans", "cases_cpu_deploy")  # fmt: skip


def all_cases() -> list[Case]:
    cases = [case for name in CASE_MODULES for case in importlib.import_module(name).CASES]
    for name in CASE_MODULES:
        module = importlib.import_module(name)
        missing = set(getattr(module, "EXTENDED", ())) - {c.name for c in module.CASES}
        if missing:
            raise SystemExit(f"run_cases: error: {name}.EXTENDED names no case: {', '.join(sorted(missing))}")
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise SystemExit(f"run_cases: error: two cases are named {case.id}")
        seen.add(case.id)
    return cases


def select(cases: list[Case], classes: Sequence[str], substrings: Sequence[str]) -> list[Case]:
    known = sorted({c.klass for c in cases})
    unknown = [k for k in classes if k not in known]
    if unknown:
        raise SystemExit(f"run_cases: error: no class {', '.join(unknown)} (classes: {', '.join(known)})")
    return [
        c
        for c in cases
        if (not classes or c.klass in classes) and (not substrings or any(s in c.id for s in substrings))
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--class", dest="classes", action="append", default=[], metavar="NAME")
    parser.add_argument("--case", action="append", default=[], metavar="SUBSTRING", help="cases whose id has it")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=float, help="seconds per case (default: each case's own, 20 or 60)")
    parser.add_argument("--memory-gib", type=float, default=6.0, help="address-space limit of a case")
    parser.add_argument("--json", metavar="FILE", help="write every result (JSON)")
    parser.add_argument("--all", action="store_true", help="also the extended cases (longer run)")
    parser.add_argument("--list", action="store_true", help="list the cases and stop")
    parser.add_argument("--verbose", "-v", action="store_true", help="print each case as it finishes")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    cases = select(all_cases(), args.classes, args.case)
    if not args.all:
        cases = [c for c in cases if not c.extended]
    if args.list:
        for case in cases:
            print(f"{case.id}  [{', '.join(sorted(case.accept))}]  {case.note}")
        return 0
    limits = Limits(address_space_bytes=int(args.memory_gib * (1 << 30)))
    with tempfile.TemporaryDirectory(prefix="wpk-robustness-") as tmp:
        fixtures = Path(tmp)
        needed = {name for case in cases for name in case.needs}
        for name, why in build_fixtures(needed, fixtures).items():
            print(f"run_cases: fixture {name} could not be built ({why}): its cases are skipped", file=sys.stderr)

        def one(case: Case) -> Result:
            result = run_case(case, fixtures, limits, timeout_s=args.timeout)
            if args.verbose:
                mark = "ok  " if result.accepted else "FAIL"
                print(
                    f"{mark} {result.outcome:13s} {result.seconds:5.1f}s {case.id}: {result.detail[:150]}", flush=True
                )
            return result

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(one, cases))
    print(table(results))
    failing = failing_lines(results)
    print(f"\n{len(failing)} of {len(results)} cases failing (outcome not accepted):" if failing else
          f"\nall {len(results)} cases acceptable")  # fmt: skip
    for line in failing:
        print(line)
    skipped = skipped_lines(results)
    if skipped:
        print(f"\n{len(skipped)} cases skipped (not failing):")
        print("\n".join(skipped))
    if args.json:
        Path(args.json).write_text(json.dumps(json_report(results), indent=1))
        print(f"\nwrote {args.json}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
