#!/usr/bin/env python3
"""Which real models Woodpecker compiles, how close it is to ONNX Runtime, and how fast.

    python tools/model_report.py MODEL_DIR [--latency] [--json rows.json] [--timeout 900]

For every MODEL_DIR/*.onnx, in its own subprocess (a hang or a crash is one row): compile
with default options; on failure report the one-line error and the op types without a
converter (node counts); else the relative L2 error against ONNX Runtime on one seeded input
(int inputs get valid token ids, masks ones) and, with --latency, the median milliseconds of
Woodpecker and ONNX Runtime (both 2 threads: OMP_NUM_THREADS=2, intra_op_num_threads=2; in
alternating blocks of runs with a pause between: tune.end_to_end.measure_interleaved) and their
ratio. Prints a Markdown table, then the missing op types summed over
the models ("Shape 16, Slice 15, ...").
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
for _p in (REPO_ROOT / "python", REPO_ROOT / "tests" / "py"):
    sys.path.insert(0, str(_p))

from model_check import THREADS, Row, check  # noqa: E402


def run_isolated(path: Path, latency: bool, timeout: float) -> Row:
    """`check(path)` in a child process with 2 OpenMP threads; a timeout or crash is a row."""
    cmd = [sys.executable, __file__, "--one", str(path)] + (["--latency"] if latency else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return Row(path.stem, error=f"timed out after {timeout:.0f} s")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        how = f"signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
        return Row(path.stem, error=f"crashed ({how}): {tail[:200]}")
    return Row(**json.loads(lines[-1]))


def _blocking_text(blocking: dict[str, int] | None) -> str:
    return ", ".join(f"{op} {n}" for op, n in (blocking or {}).items())


def markdown(rows: list[Row], latency: bool) -> str:
    head = ["model", "compiles", "rel L2 vs ORT", "compile s"]
    if latency:
        head += ["Woodpecker ms", "ORT ms", "ratio"]
    head.append("blocking error / missing ops")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.model, "yes" if r.compiles else "no", f"{r.rel_l2:.1e}" if r.rel_l2 is not None else "",
                 f"{r.compile_s:.1f}" if r.compile_s is not None else ""]
        if latency:
            ratio = r.wpk_ms / r.ort_ms if r.wpk_ms and r.ort_ms else None
            cells += [f"{r.wpk_ms:.2f}" if r.wpk_ms else "", f"{r.ort_ms:.2f}" if r.ort_ms else "",
                      f"{ratio:.2f}" if ratio else ""]
        note = (r.error or "").split(". Supported ops:")[0]  # the list of every converter is in the docs
        if r.blocking:
            note += f" [missing: {_blocking_text(r.blocking)}]"
        cells.append(note.replace("|", "\\|"))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def missing_summary(rows: list[Row]) -> str:
    """Missing op types summed over the models: nodes, and in how many models."""
    nodes: collections.Counter[str] = collections.Counter()
    models: collections.Counter[str] = collections.Counter()
    for r in rows:
        for op, n in (r.blocking or {}).items():
            nodes[op] += n
            models[op] += 1
    return ", ".join(f"{op} {n} ({models[op]} models)" for op, n in nodes.most_common())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, nargs="?", help="directory of .onnx files")
    parser.add_argument("--latency", action="store_true", help="also time Woodpecker and ONNX Runtime")
    parser.add_argument("--json", type=Path, help="write the rows to this JSON file")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per model (default 900)")
    parser.add_argument("--models", help="comma-separated subset of the model names (file stems)")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # the child: one model, one JSON line
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(check(args.one, latency=args.latency).as_dict()), flush=True)
        return 0
    if args.model_dir is None or not args.model_dir.is_dir():
        parser.error("MODEL_DIR must be a directory of .onnx files")
    paths = sorted(p for p in args.model_dir.glob("*.onnx") if not p.name.endswith(".tmp.onnx"))
    if args.models:
        wanted = {m.strip() for m in args.models.split(",")}
        paths = [p for p in paths if p.stem in wanted]
    rows = []
    for path in paths:
        rows.append(run_isolated(path, args.latency, args.timeout))
        print(f"{path.stem}: {'compiles' if rows[-1].compiles else rows[-1].error}", file=sys.stderr, flush=True)
    print(markdown(rows, args.latency))
    summary = missing_summary(rows)
    print(f"\nMissing op types (nodes, models): {summary or 'none'}")
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in rows], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
