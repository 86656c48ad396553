"""Build here, measure there: a directory of compiled candidates of one kernel task.

A machine with MLIR compiles candidate configurations of a `KernelTask` into a batch directory
(`export_batch`, or `woodpecker.measure.cuda_runner.export_candidates`); `wpk measure DIR` on a GPU
host that has only numpy and cuda-python measures them (`measure_batch`) and writes
`results.json`; the tuner reads them back (`read_results`), like TVM's RPC runner. This module
and `woodpecker.runtime.cuda.launch` import no MLIR.

Layout of a batch directory:

    batch.json                format "woodpecker.tune.batch", version 1;
                              task: the KernelTask fields (module_text included, so the
                              importing side needs nothing else); arch; device (the task's);
                              seed of the random inputs; reference: the id of the candidate whose
                              outputs the others must reproduce (the default configuration), or
                              null; candidates: [{id, config, dir, error, compile_seconds}]
                              (dir is null and error set for a candidate that did not compile)
    cand_<id>/                a saved CudaModel (manifest.json, <entry>.ptx/.cubin, weight_<i>.npy;
                              identical weight files are hard links to the first candidate's)
    reference_outputs.npz     written when the reference was measured (or by the exporter)
    results.json              format "woodpecker.tune.results", version 1; device (name, arch)
                              that measured; results: [MeasureResult.to_json() + id + verified]
                              in batch order, rewritten after every candidate; verified is
                              "reference", true (outputs match), false (they do not: the error
                              says where) or null (not checked: no reference outputs, or failed)

Measuring: every candidate runs on the same seeded random inputs (standard normal, never all
zeros; weights come from the candidate's directory); outputs and intermediates start as NaN;
a candidate whose outputs differ from the reference's (`rtol`/`atol`, NaNs included) gets an
error and no times. Each candidate runs in its own process (`python -m woodpecker.measure.batch
--one DIR ID`) with a timeout, so that a hanging kernel or a sticky CUDA fault costs only that
candidate. Candidates already in results.json are skipped: rerunning resumes. Without a CUDA
device `measure_batch` raises `NoCudaDeviceError` before touching results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import filecmp
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from woodpecker.errors import WoodpeckerError
from woodpecker.kernels.task import Config, KernelTask, MeasureResult
from woodpecker.measure.task_json import task_from_json, task_to_json
from woodpecker.runtime import bundle
from woodpecker.runtime.cuda import launch

BATCH_FILE = "batch.json"
RESULTS_FILE = "results.json"
REFERENCE_FILE = "reference_outputs.npz"
MAX_REFERENCE_BYTES = 1 << 30  # the reference outputs of one kernel
BATCH_FORMAT = "woodpecker.tune.batch"
RESULTS_FORMAT = "woodpecker.tune.results"
VERSION = 1
RESULT_MARK = "WPK-MEASURE-RESULT "
DEFAULT_REPEAT = 20
DEFAULT_WARMUP = 5
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-3

Log = Callable[[str], None]


class BatchError(WoodpeckerError, ValueError):
    """A directory that is not a batch (or a malformed one), or a bad export request."""


class NoCudaDeviceError(RuntimeError):
    """No CUDA device to measure on (no cuda-python, no driver, or no GPU)."""


class DeviceMismatchError(RuntimeError):
    """The batch's PTX is for a newer architecture than the device."""


# -- configs in JSON ---------------------------------------------------------------------------


def _normalize(value: Any) -> Any:
    """JSON lists become tuples (the GPU tile knobs are tuples)."""
    if isinstance(value, list):
        return tuple(_normalize(v) for v in value)
    return value


def config_from_json(data: Mapping[str, Any]) -> Config:
    return {str(k): _normalize(v) for k, v in data.items()}


def config_to_json(config: Mapping[str, Any]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        return value

    return {str(k): plain(v) for k, v in config.items()}


def _write_json(path: Path, data: Any) -> None:
    """Atomic: a half-written file never replaces a good one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


# -- the batch ---------------------------------------------------------------------------------


@dataclass
class Candidate:
    """One configuration to export: its compiled model (a `CudaModel`, or a saved model
    directory), or the compile error when it did not compile."""

    id: int
    config: Config
    model: Any = None
    error: str | None = None
    compile_seconds: float = 0.0


@dataclass
class BatchCandidate:
    """A candidate as `batch.json` lists it."""

    id: int
    config: Config
    dir: str | None
    error: str | None = None
    compile_seconds: float = 0.0


@dataclass
class Batch:
    """A batch directory as read back."""

    root: Path
    task: KernelTask
    arch: str
    device: str
    seed: int
    reference: int | None
    candidates: list[BatchCandidate] = field(default_factory=list)
    created: str = ""

    def candidate(self, cid: int) -> BatchCandidate:
        for cand in self.candidates:
            if cand.id == cid:
                return cand
        raise BatchError(f"{self.root}: no candidate {cid} (ids: {[c.id for c in self.candidates]})")

    def model_dir(self, cand: BatchCandidate) -> Path:
        """The candidate's model directory: inside the batch (no link out of it), a directory."""
        if cand.dir is None:
            raise BatchError(f"candidate {cand.id} has no compiled model ({cand.error})")
        path = (self.root / bundle.checked_name(cand.dir, BatchError, f"candidate {cand.id} dir")).resolve()
        if path.parent != self.root.resolve() or not path.is_dir():
            raise BatchError(f"{self.root}: candidate {cand.id}'s {cand.dir!r} is not a directory inside the batch")
        return path


def _as_candidate(item: Candidate | Sequence[Any]) -> Candidate:
    if isinstance(item, Candidate):
        return item
    cid, config, model = item
    return Candidate(int(cid), dict(config), model)


def _dedupe_weights(first: Path, other: Path) -> None:
    """Replaces the weight files of `other` that equal `first`'s by hard links to them."""
    for path in sorted(other.glob("weight_*.npy")):
        twin = first / path.name
        if not twin.exists() or twin.stat().st_size != path.stat().st_size:
            continue
        if filecmp.cmp(twin, path, shallow=False):
            tmp = path.with_name(path.name + ".link")
            try:
                os.link(twin, tmp)
                os.replace(tmp, path)
            except OSError:
                with contextlib.suppress(OSError):
                    tmp.unlink()


def export_batch(
    directory: str | os.PathLike,
    task: KernelTask,
    candidates: Sequence[Candidate | tuple[int, Config, Any]],
    *,
    arch: str,
    reference: int | None = None,
    seed: int = 0,
    reference_outputs: Sequence[np.ndarray] | None = None,
) -> Path:
    """Writes a batch of `task`'s candidates into `directory` (which must not hold a batch yet).

    `candidates`: `Candidate`s or `(id, config, model)` tuples, `model` a `CudaModel` or a saved
    model directory (copied). `reference`: the id of the candidate whose outputs the others are
    checked against (default: the first candidate that compiled; the tuner measures the default
    configuration first). `reference_outputs`: outputs already known for the batch's inputs
    (seed `seed`) and weights, used when no candidate is the reference. Returns the directory."""
    root = Path(directory)
    if (root / BATCH_FILE).exists():
        raise BatchError(f"{root} already holds a batch ({BATCH_FILE}); export into a new directory")
    items = [_as_candidate(c) for c in candidates]
    ids = [c.id for c in items]
    if len(set(ids)) != len(ids):
        raise BatchError(f"candidate ids must be unique, got {ids}")
    compiled = [c for c in items if c.error is None]
    for c in compiled:
        if c.model is None:
            raise BatchError(f"candidate {c.id} has neither a model nor an error")
    if reference is None and reference_outputs is None and compiled:
        reference = compiled[0].id
    if reference is not None and reference not in {c.id for c in compiled}:
        raise BatchError(f"reference {reference} is not a compiled candidate of the batch")
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    first_dir: Path | None = None
    for c in items:
        sub = None
        if c.error is None:
            sub = f"cand_{c.id}"
            target = root / sub
            if target.exists():
                shutil.rmtree(target)
            if hasattr(c.model, "save"):
                c.model.save_kernels(target)
            else:
                source = Path(c.model)
                if not (source / "manifest.json").exists():
                    raise BatchError(f"candidate {c.id}: {source} is not a saved CUDA model (no manifest.json)")
                shutil.copytree(source, target)
            if first_dir is None:
                first_dir = target
            else:
                _dedupe_weights(first_dir, target)
        entries.append(
            {
                "id": c.id,
                "config": config_to_json(c.config),
                "dir": sub,
                "error": c.error,
                "compile_seconds": float(c.compile_seconds),
            }
        )
    if reference_outputs is not None:
        np.savez(root / REFERENCE_FILE, *[np.asarray(a, dtype=np.float32) for a in reference_outputs])
    manifest = {
        "format": BATCH_FORMAT,
        "version": VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "task": task_to_json(task),
        "arch": arch,
        "device": task.device,
        "seed": int(seed),
        "reference": reference,
        "candidates": entries,
    }
    _write_json(root / BATCH_FILE, manifest)
    return root


def read_batch(directory: str | os.PathLike) -> Batch:
    """The batch in `directory` (`BatchError` when there is none or it is malformed: every field
    is checked, and a candidate's directory is a plain name of a directory inside the batch)."""
    root = Path(directory)
    where = str(root / BATCH_FILE)
    if not root.is_dir():
        raise BatchError(f"{root}: no such directory")
    if not (root / BATCH_FILE).exists():
        raise BatchError(f"{root}: not a batch directory (no {BATCH_FILE})")
    data = launch.read_format_json(root, BATCH_FILE, "batch", BATCH_FORMAT, VERSION, BatchError)
    candidates = []
    for i, c in enumerate(bundle.objects(data, "candidates", BatchError, where)):
        at = f"{where}: candidates[{i}]"
        sub = bundle.optional(c, "dir", str, BatchError, at)
        if sub is not None:
            bundle.checked_name(sub, BatchError, f"{at}: dir")
        seconds = c.get("compile_seconds", 0.0)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < 1e9:
            raise BatchError(f"{at}: compile_seconds {seconds!r:.60} is not a duration")
        candidates.append(
            BatchCandidate(
                id=bundle.integer(c.get("id"), BatchError, f"{at}: id", minimum=-(1 << 40), maximum=1 << 40),
                config=config_from_json(bundle.field(c, "config", dict, BatchError, at)),
                dir=sub,
                error=bundle.optional(c, "error", str, BatchError, at),
                compile_seconds=float(seconds),
            )
        )
    reference = data.get("reference")
    if reference is not None:
        reference = bundle.integer(reference, BatchError, f"{where}: reference", minimum=-(1 << 40), maximum=1 << 40)
    ids = [c.id for c in candidates]
    if len(set(ids)) != len(ids):
        raise BatchError(f"{where}: candidate ids {sorted({i for i in ids if ids.count(i) > 1})} appear twice")
    if reference is not None and reference not in ids:
        raise BatchError(f"{where}: the reference {reference} is not one of the candidates")
    batch = Batch(
        root=root,
        task=task_from_json(data.get("task"), BatchError, f"{where}: task"),
        arch=bundle.text_field(data, "arch", BatchError, where),
        device=bundle.optional(data, "device", str, BatchError, where) or "",
        seed=bundle.integer(data.get("seed", 0), BatchError, f"{where}: seed", maximum=(1 << 32) - 1),
        reference=reference,
        candidates=candidates,
        created=bundle.optional(data, "created", str, BatchError, where) or "",
    )
    for cand in candidates:
        if cand.dir is not None:
            batch.model_dir(cand)
    return batch


# -- results -------------------------------------------------------------------------------------


def _read_results_file(root: Path) -> dict[str, Any]:
    """results.json (empty before anything was measured), every entry checked."""
    path = root / RESULTS_FILE
    if not os.path.lexists(path):
        return {"format": RESULTS_FORMAT, "version": VERSION, "results": []}
    data = launch.read_format_json(root, RESULTS_FILE, "measurement", RESULTS_FORMAT, VERSION, BatchError)
    for i, entry in enumerate(bundle.objects(data, "results", BatchError, str(path))):
        at = f"{path}: results[{i}]"
        bundle.integer(entry.get("id"), BatchError, f"{at}: id", minimum=-(1 << 40), maximum=1 << 40)
        bundle.field(entry, "config", dict, BatchError, at)
        times = bundle.field(entry, "times", list, BatchError, at)
        if not all(isinstance(t, int | float) and not isinstance(t, bool) and t >= 0 for t in times):
            raise BatchError(f"{at}: times must be a list of seconds")
        bundle.optional(entry, "error", str, BatchError, at)
        if entry.get("verified") not in (True, False, None, "reference"):
            raise BatchError(f"{at}: verified is {entry.get('verified')!r:.60}, not true, false, null or 'reference'")
    return data


def read_results(directory: str | os.PathLike) -> dict[int, MeasureResult]:
    """The measured candidates of a batch, by id (empty before anything was measured)."""
    data = _read_results_file(Path(directory))
    results = {}
    for entry in data["results"]:
        try:
            result = MeasureResult.from_json(entry)
        except (KeyError, TypeError, ValueError) as err:
            raise BatchError(f"{Path(directory) / RESULTS_FILE}: result {entry['id']}: {err}") from None
        result.config = config_from_json(result.config)
        results[int(entry["id"])] = result
    return results


def write_results(
    directory: str | os.PathLike, entries: Sequence[Mapping[str, Any]], device: Mapping[str, Any]
) -> Path:
    """Writes results.json: `entries` are `MeasureResult.to_json()` dicts with `id` (and `verified`)."""
    path = Path(directory) / RESULTS_FILE
    data = {"format": RESULTS_FORMAT, "version": VERSION, "device": dict(device), "results": list(entries)}
    _write_json(path, data)
    return path


# -- measuring one candidate -----------------------------------------------------------------------


def random_inputs(shapes: Sequence[Sequence[int]], seed: int = 0) -> list[np.ndarray]:
    """The fixed inputs of a batch: standard normal f32 (never zeros), one generator for all."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(tuple(shape)).astype(np.float32) for shape in shapes]


def compare_outputs(
    outputs: Sequence[np.ndarray], reference: Sequence[np.ndarray], rtol: float, atol: float
) -> str | None:
    """Why `outputs` do not match `reference` (NaNs must match too), or None."""
    if len(outputs) != len(reference):
        return f"wrong output: {len(outputs)} outputs, the reference has {len(reference)}"
    for k, (got, want) in enumerate(zip(outputs, reference, strict=True)):
        got = np.asarray(got, dtype=np.float32)
        want = np.asarray(want, dtype=np.float32)
        if got.size != want.size:
            return f"wrong output {k}: shape {got.shape}, the reference has {want.shape}"
        got, want = got.reshape(want.shape), want
        close = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
        if not close.all():
            bad = int((~close).sum())
            where = tuple(int(i) for i in np.argwhere(~close)[0])
            return (
                f"wrong output {k}: {bad} of {want.size} elements differ from the reference candidate "
                f"(rtol={rtol:g}, atol={atol:g}; at {where}: {got[where]!r} vs {want[where]!r})"
            )
    return None


@dataclass
class CandidateRun:
    """What measuring one candidate in this process gave."""

    times: list[float] = field(default_factory=list)
    error: str | None = None
    verified: bool | None = None  # None: no reference to compare with
    outputs: list[np.ndarray] | None = None
    sticky: bool = False  # a CUDA error that leaves this process's context unusable

    def to_json(self) -> dict[str, Any]:
        return {"times": self.times, "error": self.error, "verified": self.verified}


def _describe_error(err: BaseException) -> str:
    if isinstance(err, launch.CudaError):
        return f"CUDA error: {err}"
    return f"{type(err).__name__}: {err}"


def measure_model_dir(
    model_dir: str | os.PathLike,
    *,
    seed: int = 0,
    reference: Sequence[np.ndarray] | None = None,
    repeat: int = DEFAULT_REPEAT,
    warmup: int = DEFAULT_WARMUP,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    flush_l2: bool = True,
    device: int = 0,
) -> CandidateRun:
    """Runs a saved CUDA model once on the seeded inputs, checks its outputs against
    `reference`, then times it; errors (CUDA, wrong outputs, bad directory) become
    `CandidateRun.error`, never exceptions."""
    run = CandidateRun()
    try:
        with launch.CudaLauncher(model_dir, device=device) as launcher:
            inputs = random_inputs(launcher.input_shapes, seed)
            run.outputs = launcher.run(inputs)
            if reference is not None:
                run.error = compare_outputs(run.outputs, reference, rtol, atol)
                run.verified = run.error is None
            if run.error is None:
                run.times = launcher.time(repeat=repeat, warmup=warmup, flush_l2=flush_l2)
    except Exception as err:
        run.error = _describe_error(err)
        run.sticky = bool(getattr(err, "sticky", False))
        run.times = []
    return run


def load_reference(path: Path | None) -> list[np.ndarray] | None:
    """The reference outputs (a checked regular file inside the batch; no pickles)."""
    if path is None or not os.path.lexists(path):
        return None
    checked = bundle.member(path.parent, path.name, BatchError, max_bytes=MAX_REFERENCE_BYTES)
    unpacked = 0

    def bounded(key: str, header: bundle.NpyHeader) -> None:  # bounded once unpacked too
        nonlocal unpacked
        unpacked += header.nbytes
        if unpacked > MAX_REFERENCE_BYTES:
            raise BatchError(f"{path}: more than the {MAX_REFERENCE_BYTES} bytes allowed, unpacked")

    arrays = bundle.load_npz_file(checked, BatchError, bounded, follow_links=False)
    try:
        return [np.asarray(arrays[f"arr_{k}"], dtype=np.float32) for k in range(len(arrays))]
    except (KeyError, ValueError, TypeError) as err:
        raise BatchError(f"{path}: not the reference outputs ({type(err).__name__}: {err})") from None


def _save_outputs(path: Path, outputs: Sequence[np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, *outputs)
    os.replace(tmp, path)


def _measure_one_main(argv: Sequence[str]) -> int:
    """`python -m woodpecker.measure.batch --one DIR ID ...`: measures one candidate in this
    process and prints its result as one JSON line after RESULT_MARK."""
    parser = argparse.ArgumentParser(prog="python -m woodpecker.measure.batch --one")
    parser.add_argument("--one", nargs=2, metavar=("DIR", "ID"), required=True)
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT)
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    parser.add_argument("--rtol", type=float, default=DEFAULT_RTOL)
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL)
    parser.add_argument("--device", type=int, default=0)
    parser.add_argument("--no-flush", action="store_true")
    parser.add_argument("--reference", type=Path, help="outputs (.npz) to check against")
    parser.add_argument("--save-outputs", type=Path, help="write this candidate's outputs (.npz) here")
    args = parser.parse_args(argv)
    try:
        batch = read_batch(args.one[0])
        cand = batch.candidate(int(args.one[1]))
        run = measure_model_dir(
            batch.model_dir(cand),
            seed=batch.seed,
            reference=load_reference(args.reference),
            repeat=args.repeat,
            warmup=args.warmup,
            rtol=args.rtol,
            atol=args.atol,
            flush_l2=not args.no_flush,
            device=args.device,
        )
        if args.save_outputs is not None and run.error is None and run.outputs is not None:
            _save_outputs(args.save_outputs, run.outputs)
    except Exception as err:
        run = CandidateRun(error=f"{type(err).__name__}: {err}")
    print(RESULT_MARK + json.dumps(run.to_json()), flush=True)
    return 0


def _child_env() -> dict[str, str]:
    """The environment of a measuring subprocess: this one's, with woodpecker importable."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if package_root not in paths:
        paths.append(package_root)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


@dataclass
class MeasureSettings:
    repeat: int = DEFAULT_REPEAT
    warmup: int = DEFAULT_WARMUP
    timeout_s: float = DEFAULT_TIMEOUT_S
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    flush_l2: bool = True
    isolate: bool = True
    device: int = 0


def _measure_in_subprocess(
    batch: Batch, cand: BatchCandidate, s: MeasureSettings, reference: Path | None, save_outputs: Path | None
) -> CandidateRun:
    cmd = [sys.executable, "-m", "woodpecker.measure.batch", "--one", str(batch.root), str(cand.id)]
    cmd += ["--repeat", str(s.repeat), "--warmup", str(s.warmup), "--rtol", repr(s.rtol), "--atol", repr(s.atol)]
    cmd += ["--device", str(s.device)]
    if not s.flush_l2:
        cmd.append("--no-flush")
    if reference is not None:
        cmd += ["--reference", str(reference)]
    if save_outputs is not None:
        cmd += ["--save-outputs", str(save_outputs)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=s.timeout_s, env=_child_env())
    except subprocess.TimeoutExpired:
        return CandidateRun(error=f"timed out after {s.timeout_s:g} s (the measuring process was killed)")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            data = json.loads(line[len(RESULT_MARK) :])
            return CandidateRun(
                times=[float(t) for t in data.get("times", [])], error=data.get("error"), verified=data.get("verified")
            )
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    return CandidateRun(error=f"the measuring process exited with code {proc.returncode} and no result: {tail}")


def _measure_in_process(
    batch: Batch, cand: BatchCandidate, s: MeasureSettings, reference: Path | None, save_outputs: Path | None
) -> CandidateRun:
    run = measure_model_dir(
        batch.model_dir(cand),
        seed=batch.seed,
        reference=load_reference(reference),
        repeat=s.repeat,
        warmup=s.warmup,
        rtol=s.rtol,
        atol=s.atol,
        flush_l2=s.flush_l2,
        device=s.device,
    )
    if save_outputs is not None and run.error is None and run.outputs is not None:
        _save_outputs(save_outputs, run.outputs)
    return run


def _arch_cc(arch: str) -> tuple[int, int] | None:
    digits = arch.removeprefix("sm_").rstrip("a")
    if not digits.isdigit() or len(digits) < 2:
        return None
    return int(digits[:-1]), int(digits[-1])


def check_device(batch: Batch, device: int = 0) -> dict[str, Any]:
    """The device that will measure `batch`: raises `NoCudaDeviceError` when there is none and
    `DeviceMismatchError` when the batch's PTX is for a newer architecture."""
    reason = launch.cuda_status(device)
    if reason is not None:
        raise NoCudaDeviceError(
            f"no CUDA device: {reason}. Nothing was measured ({batch.root / RESULTS_FILE} is unchanged); "
            f"run `wpk measure {batch.root}` on a host with an NVIDIA GPU, numpy and cuda-python"
        )
    info = launch.device_info(device)
    want = _arch_cc(batch.arch)
    if want is not None and want > tuple(info.compute_capability):
        raise DeviceMismatchError(
            f"the batch is compiled for {batch.arch}; device {device} ({info.name}) is {info.arch}, which cannot run it"
        )
    return {"name": info.name, "arch": info.arch, "index": device}


def measure_batch(
    directory: str | os.PathLike,
    repeat: int = DEFAULT_REPEAT,
    warmup: int = DEFAULT_WARMUP,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    *,
    isolate: bool = True,
    flush_l2: bool = True,
    device: int = 0,
    retry_failed: bool = False,
    log: Log | None = None,
) -> Path:
    """Measures the candidates of the batch in `directory` not yet in its results.json (the
    reference first) and returns the path of results.json. `isolate`: one subprocess per
    candidate with `timeout_s` (otherwise in this process, without a timeout). `retry_failed`
    measures candidates again whose recorded result is an error. Raises `BatchError` for a bad
    directory, `NoCudaDeviceError`/`DeviceMismatchError` before measuring anything."""
    say = log or (lambda _text: None)
    batch = read_batch(directory)
    root = batch.root
    existing = _read_results_file(root)
    dev = check_device(batch, device)
    if batch.device and batch.device not in (dev["name"], dev["arch"]):
        say(f"note: the task's device is {batch.device!r}; measuring on {dev['name']} ({dev['arch']})")
    settings = MeasureSettings(repeat, warmup, timeout_s, rtol, atol, flush_l2, isolate, device)
    measure = _measure_in_subprocess if isolate else _measure_in_process
    entries: dict[int, dict[str, Any]] = {int(e["id"]): e for e in existing["results"]}
    if retry_failed:
        entries = {cid: e for cid, e in entries.items() if e.get("error") is None}
    order = [c.id for c in batch.candidates]

    def record(cid: int, entry: dict[str, Any]) -> None:
        entries[cid] = entry
        ordered = [entries[i] for i in order if i in entries]
        write_results(root, ordered, dev)

    def entry_of(cand: BatchCandidate, run: CandidateRun, verified: Any) -> dict[str, Any]:
        result = MeasureResult(cand.config, run.times, run.error, cand.compile_seconds)
        return {"id": cand.id, **result.to_json(), "verified": verified}

    def report(cand: BatchCandidate) -> None:
        entry = entries[cand.id]
        status = entry["error"] or f"{statistics.median(entry['times']) * 1e3:.4f} ms"
        done = len([i for i in order if i in entries])
        say(f"[{done}/{len(order)}] candidate {cand.id}: {status}")

    # The reference first: its outputs (reference_outputs.npz) check the others. A reference
    # recorded as failed is not measured again (unless retry_failed); the rest is then unverified.
    ref_file = root / REFERENCE_FILE
    ref_entry = entries.get(batch.reference) if batch.reference is not None else None
    if batch.reference is not None and (ref_entry is None or (ref_entry["error"] is None and not ref_file.exists())):
        cand = batch.candidate(batch.reference)
        run = measure(batch, cand, settings, None, ref_file)
        record(cand.id, entry_of(cand, run, "reference" if run.error is None else None))
        report(cand)
        if run.error is not None:
            say(f"warning: the reference candidate {cand.id} failed; the others are measured without verification")
    reference = ref_file if ref_file.exists() else None
    for cand in batch.candidates:
        if cand.id in entries:
            continue
        if cand.error is not None:
            record(cand.id, entry_of(cand, CandidateRun(error=cand.error), None))
        else:
            run = measure(batch, cand, settings, reference, None)
            record(cand.id, entry_of(cand, run, run.verified))
        report(cand)
    if not entries:
        write_results(root, [], dev)
    return root / RESULTS_FILE


# -- wpk measure --------------------------------------------------------------------------------


def format_table(directory: str | os.PathLike) -> str:
    """A table of the batch's results: id, median ms, verified, error (the reference marked *)."""
    batch = read_batch(directory)
    data = _read_results_file(batch.root)
    by_id = {int(e["id"]): e for e in data["results"]}
    lines = [f"  {'id':>6}  {'median ms':>10}  {'verified':<9}  error"]
    for cand in batch.candidates:
        mark = "*" if cand.id == batch.reference else " "
        entry = by_id.get(cand.id)
        if entry is None:
            lines.append(f"{mark} {cand.id:>6}  {'-':>10}  {'-':<9}  not measured")
            continue
        times = [float(t) for t in entry.get("times", [])]
        ms = f"{statistics.median(times) * 1e3:.4f}" if times and entry.get("error") is None else "-"
        verified = entry.get("verified")
        text = {True: "yes", False: "no", None: "-"}.get(verified, str(verified))
        lines.append(f"{mark} {cand.id:>6}  {ms:>10}  {text:<9}  {entry.get('error') or ''}".rstrip())
    ok = [e for e in data["results"] if e.get("error") is None and e.get("times")]
    if ok:
        best = min(ok, key=lambda e: statistics.median(e["times"]))
        lines.append(f"best: candidate {best['id']} ({statistics.median(best['times']) * 1e3:.4f} ms)")
    return "\n".join(lines)


def batch_directories(directory: str | os.PathLike) -> list[Path]:
    """`directory` when it is a batch, else the batches directly inside it (one per kernel, as
    `wpk tune --target cuda --export DIR` writes them), sorted by name."""
    root = Path(directory)
    if not root.is_dir():
        raise BatchError(f"{root}: no such directory")
    if (root / BATCH_FILE).exists():
        return [root]
    found = sorted(p for p in root.iterdir() if (p / BATCH_FILE).exists()) if root.is_dir() else []
    if not found:
        raise BatchError(f"{root} is not a batch directory ({BATCH_FILE}) and holds none")
    return found


if __name__ == "__main__":  # `python -m woodpecker.measure.batch --one DIR ID`: one candidate, in its own process
    sys.exit(_measure_one_main(sys.argv[1:]))
