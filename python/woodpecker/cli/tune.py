"""`wpk tune`: search the schedule knobs of every kernel of a model on this machine.

    wpk tune model.onnx --target cpu --trials 32 --strategy ga|tpe|random|rl [--db DB] [--time-budget S]
             [--search-layout [--layout-budget S]]   (first choose each layout region's layout, recorded)
    wpk tune --export-records FILE | --import-records FILE [--db DB]   (records between databases)
    wpk tune --import-optuna OLD_STORAGE [--db DB]       (old Optuna tuning records into the database)

A progress bar per kernel and one overall, then a table per kernel signature (its kernels,
how often it occurs, GFLOP, default and best time, GFLOP/s, speedup, trials, failures) with the
weighted total (the model's estimated time, sum of occurrences x kernel time), then (CPU) the
end-to-end verdict: the whole model compiled without and with the records, run interleaved,
medians and spreads (`--no-end-to-end` skips it). Records go to the tuning database (`--db`: a path, a .journal
file or a postgresql:// URL; default ~/.cache/woodpecker/tuning.db), where `woodpecker.compile`
and `wpk run` find them. `--trials` is each kernel's budget: several `wpk tune` processes on one
database share it. Killed, the same command resumes where it stopped; Ctrl-C gives the open
claim back and says what was kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from woodpecker.cli.common import add_shape_arguments, bundled_model, check_shape_options
from woodpecker.cli.parsing import directory_path, non_negative_int, positive_float, positive_int
from woodpecker.cli.tune_layout import check_layout_arguments, recorded_regions, search_and_record
from woodpecker.database import DatabaseError, open_database
from woodpecker.tune.report import WeightedTotal
from woodpecker.tune.tuner import STRATEGIES, Progress, TuneOptions, TuneResult, TuningInterrupted

PROG = "wpk tune"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="ONNX file (default: the bundled tiny ResNet)")
    parser.add_argument("--target", default="cpu", choices=["cpu", "cuda"], help="what to tune for (default cpu)")
    parser.add_argument(
        "--trials",
        type=positive_int,
        default=32,
        help="trials per kernel (default 32): the budget every worker on the database shares",
    )
    parser.add_argument("--strategy", default="ga", choices=STRATEGIES, help="the search (default ga)")
    parser.add_argument(
        "--db",
        metavar="DB",
        help="the tuning database: a file path (SQLite), a .journal file (several processes on one machine) "
        "or a postgresql:// URL (several machines); default ~/.cache/woodpecker/tuning.db",
    )
    parser.add_argument(
        "--export-records",
        metavar="FILE",
        type=Path,
        help="write every workload of --db with its finished trials, confirmations and selections to FILE "
        "(JSON lines), then stop",
    )
    parser.add_argument(
        "--import-records",
        metavar="FILE",
        type=Path,
        help="merge a file --export-records wrote into --db (configurations it has already are not added again), "
        "then stop",
    )
    parser.add_argument(
        "--import-optuna",
        metavar="STORAGE",
        help="copy the tuning records of an old Optuna storage (a .db file, a .journal/.log Optuna journal or "
        "an RDB URL) into --db, then stop",
    )
    parser.add_argument(
        "--time-budget", type=positive_float, metavar="S", help="seconds for all kernels together"
    )
    parser.add_argument("--seed", type=non_negative_int, help="seed of the search")
    parser.add_argument(
        "--kernel",
        action="append",
        metavar="NAME|KIND",
        help="tune only these kernels (k3_conv) or kinds (conv); repeatable",
    )
    add_shape_arguments(
        parser,
        shape_help="the size of an input's open (symbolic) dimensions, e.g. data=1x3x224x224 (repeatable)",
        opt_help="graph optimization level (default 2)",
    )
    parser.add_argument("--threads", type=positive_int, help="threads of the kernels (default: every core)")
    parser.add_argument(
        "--in-process", action="store_true", help="measure in this process (faster; a crashing candidate ends the run)"
    )
    parser.add_argument("--timeout", type=positive_float, default=120.0, help="seconds per candidate (isolated)")
    parser.add_argument(
        "--confirm",
        type=non_negative_int,
        default=3,
        metavar="N",
        help="after each kernel's search, re-measure its N best and the default side by side "
        "(default 3; 0: trust the search's times)",
    )
    parser.add_argument(
        "--confirm-rounds", type=positive_int, default=3, metavar="R", help="rounds of that (default 3)"
    )
    parser.add_argument(
        "--search-layout",
        action="store_true",
        help="first (CPU, --layout auto, -O2) measure per layout region whether the rule's blocks, NCHW or the "
        "other block size makes the whole model fastest, and record the decision in --db (compile with "
        "--layout auto applies it); the kernels tuned then are the chosen layout's",
    )
    parser.add_argument(
        "--layout-budget",
        type=positive_float,
        metavar="S",
        help="seconds for the layout search (a candidate is not started after them; default: no limit)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--no-end-to-end",
        action="store_true",
        help="do not measure the whole model before and after at the end (CPU; it compiles the model twice)",
    )
    cuda = parser.add_argument_group("CUDA (--target cuda)")
    cuda.add_argument("--arch", help="GPU architecture (default: the local GPU's, else sm_90)")
    cuda.add_argument(
        "--export",
        metavar="DIR",
        type=directory_path,
        help="no GPU here: write the candidates still missing as batches under DIR for `wpk measure DIR` on a GPU host",
    )
    cuda.add_argument(
        "--import-results",
        metavar="DIR",
        type=Path,
        help="record the results `wpk measure DIR` wrote (then --export the next round)",
    )


def records_use(args: argparse.Namespace) -> str:
    """How `wpk tune` with these arguments uses the tuning database."""
    if args.export_records and not args.import_records:
        return "read only"
    if args.import_records or args.import_optuna or args.import_results:
        return "written: records are imported"
    return "read and written"


def cmd_tune(args: argparse.Namespace) -> int:
    """Run `wpk tune`; a tuning database that cannot be used is one error line and exit status 1."""
    try:
        return _cmd_tune(args)
    except DatabaseError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except TuningInterrupted as interrupted:
        print(f"{PROG}: interrupted: {interrupted.summary()}; the same command goes on", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # before tuning started, or after it ended: nothing is lost either way
        print(
            f"{PROG}: interrupted: no trial was being measured; what is recorded stays in the database", file=sys.stderr
        )
        return 130


def _cmd_tune(args: argparse.Namespace) -> int:
    import optuna

    from woodpecker.measure.cpu_runner import CpuMeasureOptions, InProcessCpuRunner, IsolatedCpuRunner
    from woodpecker.tune.tune_model import model_cpu_tasks

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.import_optuna:
        return _import_optuna(args)
    if args.export_records or args.import_records:
        return _transfer_records(args)
    model = args.model or str(bundled_model())
    check_shape_options(model, args.input_shape)
    try:
        options = TuneOptions(
            trials=args.trials,
            strategy=args.strategy,
            seed=args.seed,
            time_budget_s=args.time_budget,
            storage=args.db,
            confirm_top=args.confirm,
            confirm_rounds=args.confirm_rounds,
        )
        measure = CpuMeasureOptions(threads=args.threads)
    except ValueError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    if not args.import_results:  # a bad --db fails before the model is cut (an import checks its own)
        open_database(args.db).close()
    if args.search_layout:
        problem = check_layout_arguments(args)
        if problem is not None:
            print(f"{PROG}: error: {problem}", file=sys.stderr)
            return 2
    if args.target == "cuda" or args.import_results or args.export:
        return _cmd_tune_cuda(args, model, options)
    if args.search_layout:
        outcome = search_and_record(model, args)
        print("\n".join(outcome.lines))
        regions = outcome.regions
    else:
        regions = recorded_regions(model, args)
    try:
        tasks = model_cpu_tasks(
            model, args.opt_level, dict(args.input_shape or []) or None, args.threads, args.kernel, args.layout,
            regions,
        )  # fmt: skip
    except ValueError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    url = _location(args.db)
    print(
        f"tuning {len(tasks)} kernel signatures of {model} on the CPU, strategy {args.strategy}, "
        f"{args.trials} trials each; records in {url}"
    )
    runner = InProcessCpuRunner(measure) if args.in_process else IsolatedCpuRunner(measure, timeout_s=args.timeout)
    status = _search(tasks, runner, options, args, url)
    if not args.no_end_to_end:
        print(_end_to_end(model, args))
    return status


def _location(db: str | None) -> str:
    """The database as the user named it (the default's path when not named)."""
    from woodpecker.database import default_location

    return db if db is not None else default_location()


def _transfer_records(args: argparse.Namespace) -> int:
    """--export-records FILE / --import-records FILE: records moved between databases as a file."""
    with open_database(args.db) as db:
        if args.export_records:
            done = db.export(args.export_records)
            print(f"exported {done.workloads} workloads ({done.trials} finished trials, {done.confirmations} "
                  f"confirmations, {done.selections} selections) of {db.location} "
                  f"to {args.export_records}")  # fmt: skip
        if args.import_records:
            done = db.import_file(args.import_records)
            print(f"imported {done.workloads} workloads from {args.import_records} into {db.location}: "
                  f"{done.trials} new trials ({done.duplicates} already there), {done.confirmations} "
                  f"confirmations, {done.selections} selections")  # fmt: skip
    return 0


def _import_optuna(args: argparse.Namespace) -> int:
    from woodpecker.tune.migrate import import_optuna

    with open_database(args.db) as db:
        print(import_optuna(args.import_optuna, db).line(db.location))
    return 0


def _cmd_tune_cuda(args: argparse.Namespace, model: str, options: TuneOptions) -> int:
    from woodpecker.runtime.cuda.launch import cuda_available, device_info
    from woodpecker.tune.cuda_tuning import export_round, import_results, model_cuda_tasks
    from woodpecker.tune.report import format_table, summarize

    url = _location(args.db)
    if args.import_results:
        try:
            imported = import_results(args.import_results, args.db)
        except ValueError as err:
            print(f"{PROG}: error: {err}", file=sys.stderr)
            return 2
        for item in imported:
            print(
                f"{item.task.description}: {item.imported} results, {item.failures} failures recorded"
                + (f", {item.waiting} still without a result" if item.waiting else "")
            )
        print(format_table(summarize(url, sorted({i.task.key for i in imported}))))
        return 0
    local_gpu = cuda_available()
    arch = args.arch or (device_info().arch if local_gpu else "sm_90")
    try:
        tasks = model_cuda_tasks(
            model, arch, args.opt_level, dict(args.input_shape or []) or None, args.kernel, args.layout
        )
    except ValueError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    if args.export:
        batches = export_round(tasks, options, args.export, arch)
        pending = sum(b.candidates for b in batches)
        print(f"exported {pending} candidates of {len(batches)} kernels ({arch}) under {args.export}; records in {url}")
        if batches:
            print(
                f"next: `wpk measure {args.export}` on the GPU host, then "
                f"`wpk tune --import-results {args.export} --db {url}` here, and --export a new directory "
                f"for the next round"
            )
        return 0
    if not local_gpu:
        print(
            f"{PROG}: error: no CUDA device here: use `wpk tune --target cuda --export DIR`, "
            "`wpk measure DIR` on a GPU host and `wpk tune --import-results DIR`",
            file=sys.stderr,
        )
        return 2
    from woodpecker.measure.cuda_runner import CudaRunner

    return _search(tasks, CudaRunner(arch), options, args, url)


def _search(tasks, runner, options: TuneOptions, args: argparse.Namespace, url: str) -> int:
    """Tunes `tasks` with progress bars, then prints the table of their records, weighted by how
    often each signature occurs in the model."""
    from woodpecker.tune.report import format_table, summarize, weighted_total
    from woodpecker.tune.tuner import tune_tasks

    bars = _Bars(len(tasks), args.trials, disable=args.no_progress)
    try:
        results = tune_tasks(tasks, runner, options, bars.progress())
    finally:
        runner.close()
        bars.close()
    kernels = {r.task.key: r.task.model_kernels for r in results}
    summaries = summarize(url, [r.task.key for r in results], kernels)
    print(format_table(summaries))
    _print_totals(results, weighted_total(summaries))
    return 0


def _print_totals(results: list[TuneResult], total: WeightedTotal) -> None:
    from woodpecker.table import format_us

    measured = sum(r.measured for r in results)
    failures = sum(r.failures for r in results)
    line = f"{measured} candidates measured by the search in this run, {failures} failed trials in the records"
    if total.speedup is not None:
        line += (
            f"; estimated model time (sum over its {total.kernels} tuned kernels of occurrences x kernel time) "
            f"{format_us(total.default_seconds)} µs -> {format_us(total.best_seconds)} µs ({total.speedup:.2f}x)"
        )
    print(line)


def _end_to_end(model: str, args: argparse.Namespace) -> str:
    """The whole model compiled without the tuning records and with them (generated code in
    both: the libraries off, so only the tuned schedules differ), run interleaved: one line."""
    import numpy as np

    import woodpecker
    from woodpecker.backend.cpu import CpuOptions
    from woodpecker.compiler import random_feeds
    from woodpecker.tune.end_to_end import measure_interleaved

    shapes = dict(args.input_shape or []) or None

    def build(records: bool):
        options = woodpecker.CompileOptions(
            opt_level=args.opt_level,
            cpu=CpuOptions(threads=args.threads),
            use_tuning_records=records,
            tuning_db=args.db,
            libraries="none",
            layout=args.layout,
        )
        return woodpecker.compile(model, input_shapes=shapes, options=options)

    before, after = build(False), build(True)
    feeds = random_feeds(before)
    line = measure_interleaved(lambda: before.run(None, feeds), lambda: after.run(None, feeds)).line()
    line += (
        f" [generated code only, libraries off in both; {after.stats.tuned_kernels} of {after.stats.num_kernels} "
        f"kernels with tuning records; layout: {before.stats.layout} -> {after.stats.layout}]"
    )
    for name, old, new in zip(before.output_names, before.run(None, feeds), after.run(None, feeds), strict=True):
        if not np.allclose(new.astype(np.float64), old.astype(np.float64), rtol=1e-4, atol=1e-5):
            diff = float(np.max(np.abs(new.astype(np.float64) - old)))
            line += f"; output '{name}' differs from the untuned model's (max abs diff {diff:.3e})"
    return line


class _Bars:
    """tqdm bars: one overall (trials of every kernel), one for the kernel being tuned."""

    def __init__(self, tasks: int, trials: int, disable: bool):
        from tqdm import tqdm

        self._tqdm = tqdm
        self.disable = disable
        self.overall = tqdm(total=tasks * trials, desc="all kernels", unit="trial", position=0, disable=disable)
        self.kernel = None
        self.trials = trials

    def progress(self) -> Progress:
        def start(task, done, total):
            if self.kernel is not None:
                self.kernel.close()
            self.kernel = self._tqdm(
                total=self.trials,
                desc=f"[{done + 1}/{total}] {task.description[:50]}",
                unit="trial",
                position=1,
                leave=False,
                disable=self.disable,
            )

        def trial(task, result, finished):
            assert self.kernel is not None
            step = min(finished, self.trials) - self.kernel.n
            if step > 0:
                self.kernel.update(step)
                self.overall.update(step)
            if result is not None and result.ok:
                self.kernel.set_postfix_str(f"last {result.seconds * 1e3:.3f} ms")

        def end(result: TuneResult):
            assert self.kernel is not None
            self.overall.update(max(0, self.trials - self.kernel.n))  # a resumed or cut-short kernel

        return Progress(on_task_start=start, on_trial=trial, on_task_end=end)

    def close(self) -> None:
        if self.kernel is not None:
            self.kernel.close()
        self.overall.close()
