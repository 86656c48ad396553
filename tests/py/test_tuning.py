"""Auto-tuning on the CPU: kernel extraction and signatures, the runners (in process and
isolated, with crashing and hanging candidates), the search with each strategy (on recorded
measurements and on real ones), storage and resume after a kill, concurrent workers, and
compile using the records.

Numerical checks compare with numpy in float64 at RTOL/ATOL, or with the default
configuration's output (the runner's own check).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from woodpecker import compile as wpk_compile
from woodpecker.compiler import CompileOptions
from woodpecker.database import COMPLETE, FAILED, DatabaseError, open_database
from woodpecker.database.open import parse_location
from woodpecker.database.schema import config_key
from woodpecker.frontend import lower_model
from woodpecker.kernels.task import unique_tasks
from woodpecker.measure.cpu_runner import CpuMeasureOptions, InProcessCpuRunner, IsolatedCpuRunner
from woodpecker.measure.recorded import CachedRunner, RecordedRunner
from woodpecker.schedule.target import CpuMachine
from woodpecker.schedule.tasks import cpu_tasks
from woodpecker.tune.records import best_records
from woodpecker.tune.tune_model import model_cpu_tasks, tune_model
from woodpecker.tune.tuner import TuneOptions, tune_tasks

RTOL, ATOL = 1e-4, 1e-5
FAST = CpuMeasureOptions(repeat=2, min_seconds=0.0, max_repeat=2, warmup=0)
REPO = Path(__file__).resolve().parents[2]


def _conv_net() -> onnx.ModelProto:
    """Two identical 3x3 conv+relu layers (one signature), a 1x1 conv and a Gemm."""
    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2,
        "b1": rng.standard_normal(8).astype(np.float32),
        "w2": rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2,
        "b2": rng.standard_normal(8).astype(np.float32),
        "w3": rng.standard_normal((16, 8, 1, 1)).astype(np.float32) * 0.2,
        "fc": rng.standard_normal((16 * 16 * 16, 10)).astype(np.float32) * 0.05,
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3"], ["c3"]),
        helper.make_node("Flatten", ["c3"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "convnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 8, 16, 16))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 10))],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tune") / "convnet.onnx"
    onnx.save(_conv_net(), str(path))
    return path


@pytest.fixture(scope="module")
def extracted(model_path: Path):
    lowered = lower_model(str(model_path), layout="nchw")
    with lowered.imported.context:
        return cpu_tasks(lowered.module, len(lowered.weights), CpuMachine.host(threads=2))


def _conv_task(extracted, out_channels: int = 8, kernel: int = 3):
    for item in extracted:
        if item.task.kind == "conv" and f"{out_channels}x8x{kernel}x{kernel}" in item.task.description:
            return item
    raise AssertionError([e.task.description for e in extracted])


# ----------------------------------------------------------------------------
# Extraction and signatures.


def test_identical_layers_share_a_signature(extracted) -> None:
    convs = [e for e in extracted if e.task.kind == "conv" and "8x8x3x3" in e.task.description]
    assert len(convs) == 2
    assert convs[0].task.key == convs[1].task.key
    assert set(convs[0].task.model_kernels) == {convs[0].kernel_name, convs[1].kernel_name}
    keys = {e.task.key for e in extracted}
    assert len(unique_tasks([e.task for e in extracted])) == len(keys) < len(extracted)
    one_by_one = _conv_task(extracted, 16, 1)
    assert one_by_one.task.key != convs[0].task.key
    assert one_by_one.task.flops == 2 * 16 * 8 * 16 * 16


def test_signature_depends_on_the_device(model_path: Path) -> None:
    lowered = lower_model(str(model_path))
    with lowered.imported.context:
        one = cpu_tasks(lowered.module, len(lowered.weights), CpuMachine.host(threads=1))
        two = cpu_tasks(lowered.module, len(lowered.weights), CpuMachine.host(threads=2))
    assert [e.task.device for e in one] != [e.task.device for e in two]
    assert {e.task.key for e in one}.isdisjoint({e.task.key for e in two})


def test_standalone_kernel_matches_numpy(extracted) -> None:
    """The cut-out conv kernel (its padding copies included) computes pad + conv + bias + relu
    of its arguments."""
    item = _conv_task(extracted)
    task = item.task
    assert task.arg_shapes[0] == (1, 8, 16, 16)  # the unpadded input is the argument: the kernel pads it
    assert task.num_weights == 2 and task.arg_shapes[-2:] == ((8, 8, 3, 3), (8,))
    runner = InProcessCpuRunner(FAST)
    result = runner.measure(task, [item.space.default])[0]
    assert result.ok, result.error
    from woodpecker.measure.cpu_runner import task_arrays

    (x,), (w, b) = task_arrays(task, FAST.seed)
    x64, w64 = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1))), w.astype(np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(x64[0], (3, 3), axis=(1, 2))  # c, 16, 16, 3, 3
    expected = np.maximum(np.einsum("chwij,fcij->fhw", windows, w64) + b[:, None, None], 0.0)[None]
    got = runner._tasks[task.key].reference
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------
# Runners.


def test_in_process_runner_checks_outputs(extracted) -> None:
    item = _conv_task(extracted)
    runner = InProcessCpuRunner(FAST)
    other = next(c for c in item.space.configs() if c != item.space.default)
    default, candidate = runner.measure(item.task, [item.space.default, other])
    assert default.ok and candidate.ok and len(candidate.times) == 2 * FAST.pairs and candidate.seconds > 0
    assert default.relative == 1.0 and candidate.relative > 0  # timed alternately with the default
    runner._tasks[item.task.key].reference += 1.0  # now every candidate disagrees
    (wrong,) = runner.measure(item.task, [other])
    assert not wrong.ok and "wrong output" in wrong.error and wrong.seconds == float("inf")


def test_runner_reference_is_the_default_even_if_measured_later(extracted) -> None:
    item = _conv_task(extracted)
    other = next(c for c in item.space.configs() if c != item.space.default)
    runner = InProcessCpuRunner(FAST)
    (first,) = runner.measure(item.task, [other])
    assert first.ok
    default_runner = InProcessCpuRunner(FAST)
    default_runner.measure(item.task, [item.space.default])
    np.testing.assert_array_equal(
        runner._tasks[item.task.key].reference, default_runner._tasks[item.task.key].reference
    )


def test_isolated_runner_survives_hangs_and_crashes(extracted) -> None:
    item = _conv_task(extracted)
    runner = IsolatedCpuRunner(FAST, timeout_s=60)
    try:
        (ok,) = runner.measure(item.task, [item.space.default])
        assert ok.ok, ok.error
        runner.timeout_s = 0.001  # every candidate "hangs"
        (hung,) = runner.measure(item.task, [item.space.default])
        assert not hung.ok and "timed out" in hung.error
        runner.timeout_s = 60
        process = runner._worker()  # a fresh worker (the hung one was killed), killed while it measures
        threading.Timer(0.3, lambda: process.send_signal(signal.SIGKILL)).start()
        (crashed,) = runner.measure(item.task, [item.space.default])
        assert not crashed.ok and "SIGKILL" in crashed.error
        (again,) = runner.measure(item.task, [item.space.default])  # a new worker
        assert again.ok, again.error
        bad = dict(item.task.__dict__, module_text="this is not MLIR")
        from woodpecker.kernels.task import KernelTask

        (broken,) = runner.measure(KernelTask(**bad), [item.space.default])
        assert not broken.ok and "MLIR" in broken.error
    finally:
        runner.close()


# ----------------------------------------------------------------------------
# Search on recorded measurements.


def _synthetic(task, config) -> float | str:
    """A smooth landscape with its optimum away from the default, and one crashing region."""
    if config.get("tile_c") == 1 and config.get("unroll_c") == 1:
        return "candidate crashed"
    cost = 1.0
    for value in config.values():
        if isinstance(value, bool):
            cost += 0.3 * value
        elif isinstance(value, int):
            cost += 0.1 * abs(np.log2(value) - 1)
    return cost * 1e-3


@pytest.mark.parametrize("strategy", ["ga", "tpe", "random", "rl"])
def test_search_strategies_on_recorded_times(strategy: str, extracted, tmp_path: Path) -> None:
    item = _conv_task(extracted)
    runner = RecordedRunner(_synthetic)
    options = TuneOptions(trials=24, strategy=strategy, seed=1, storage=str(tmp_path / "t.db"), confirm_top=0)
    (result,) = tune_tasks([(item.task, item.space)], runner, options)
    assert result.trials == 24 == len(runner.calls)
    assert runner.calls[0][1] == item.space.default  # the default first
    keys = [config_key(c) for _, c in runner.calls]
    assert len(set(keys)) == len(keys)  # nothing measured twice
    assert all(item.space.is_valid(c) for _, c in runner.calls)
    assert result.best_seconds < result.default_seconds
    assert result.best_seconds == min(
        _synthetic(None, c) for _, c in runner.calls if not isinstance(_synthetic(None, c), str)
    )
    with open_database(options.storage) as db:
        (trials,) = db.trials([item.task.key]).values()
        record = db.records([item.task.key])[item.task.key]
    (default,) = [t for t in trials if t.is_default]
    assert default.seconds == record.default_seconds == pytest.approx(result.default_seconds)
    assert {t.strategy for t in trials if t.finished} == {"default", strategy}


def test_resume_measures_only_what_is_missing(extracted, tmp_path: Path) -> None:
    item = _conv_task(extracted)
    db = str(tmp_path / "resume.journal")
    first = RecordedRunner(_synthetic)
    tune_tasks(
        [(item.task, item.space)], first, TuneOptions(trials=6, strategy="ga", seed=0, storage=db, confirm_top=0)
    )
    second = RecordedRunner(_synthetic)
    (result,) = tune_tasks(
        [(item.task, item.space)], second, TuneOptions(trials=10, strategy="ga", seed=0, storage=db, confirm_top=0)
    )
    assert len(first.calls) == 6 and len(second.calls) == 4 and result.trials == 10
    assert {config_key(c) for _, c in first.calls}.isdisjoint({config_key(c) for _, c in second.calls})


def test_failures_are_recorded_with_their_reason(extracted, tmp_path: Path) -> None:
    item = _conv_task(extracted)
    runner = RecordedRunner(lambda task, config: "segfault" if config != item.space.default else 1e-3)
    (result,) = tune_tasks(
        [(item.task, item.space)],
        runner,
        TuneOptions(trials=5, strategy="random", seed=0, storage=str(tmp_path / "f.db"), confirm_top=0),
    )
    assert result.failures == 4 and result.best_seconds == 1e-3 and result.speedup == 1.0
    with open_database(tmp_path / "f.db") as db:
        failed = db.trials([item.task.key], states=[FAILED])[item.task.key]
    assert len(failed) == 4 and all(t.error == "segfault" for t in failed)


def test_time_budget_stops_the_search(extracted, tmp_path: Path) -> None:
    item = _conv_task(extracted)

    def slow(task, config):
        time.sleep(0.05)
        return 1e-3

    runner = RecordedRunner(slow)
    (result,) = tune_tasks(
        [(item.task, item.space)],
        runner,
        TuneOptions(
            trials=1000, strategy="random", seed=0, time_budget_s=0.5, storage=str(tmp_path / "b.db"), confirm_top=0
        ),
    )
    assert 2 <= result.trials < 30


def test_bad_tune_options() -> None:
    with pytest.raises(ValueError, match="unknown strategy 'sa'"):
        TuneOptions(strategy="sa")
    with pytest.raises(ValueError, match="trials must be >= 1"):
        TuneOptions(trials=0)
    with pytest.raises(ValueError, match="time budget"):
        TuneOptions(time_budget_s=0)
    with pytest.raises(ValueError, match="confirm_top"):
        TuneOptions(confirm_top=-1)


def test_unknown_kernel_filter(model_path: Path) -> None:
    with pytest.raises(ValueError, match="'k99_conv' names no kernel"):
        model_cpu_tasks(str(model_path), kernels=["k99_conv"])


def test_confirmation_undoes_the_winners_curse(extracted, tmp_path: Path) -> None:
    """A candidate that was fast once by luck is re-measured with the runners-up and the default;
    the record is the confirmed fastest, and confirming again measures nothing."""
    item = _conv_task(extracted)
    seen: dict[str, int] = {}
    lucky: list[str] = []

    def noisy(task, config) -> float:
        key = config_key(config)
        seen[key] = seen.get(key, 0) + 1
        if config == item.space.default:
            return 1e-3
        if not lucky:
            lucky.append(key)
        if key == lucky[0]:  # truly slower than the others, but fast once
            return 0.1e-3 if seen[key] == 1 else 0.99e-3
        return 0.9e-3 + 1e-5 * (sum(map(ord, key)) % 7)

    runner = RecordedRunner(noisy)
    options = TuneOptions(trials=12, strategy="random", seed=0, storage=str(tmp_path / "c.db"), confirm_rounds=2)
    (result,) = tune_tasks([(item.task, item.space)], runner, options)
    assert len(runner.calls) == 12 + 2 * 4  # the search, then 2 rounds of the top 3 and the default
    assert config_key(result.best_config) != lucky[0]
    assert result.best_seconds >= 0.9e-3 and result.default_seconds == pytest.approx(1e-3)
    (again,) = tune_tasks([(item.task, item.space)], runner, options)
    assert len(runner.calls) == 20 and again.best_config == result.best_config
    records = best_records(options.storage, [item.task.key])
    assert records[item.task.key] == (result.best_config, pytest.approx(result.best_seconds))


def test_cached_runner_measures_once(extracted, tmp_path: Path) -> None:
    item = _conv_task(extracted)
    inner = RecordedRunner(_synthetic)
    cache = tmp_path / "cache.json"
    runner = CachedRunner(inner, cache)
    runner.measure(item.task, [item.space.default, item.space.default])
    again = CachedRunner(RecordedRunner(_synthetic), cache)
    (result,) = again.measure(item.task, [item.space.default])
    assert len(inner.calls) == 1 and runner.hits == 1 and again.hits == 1 and result.ok


def test_storage_urls(tmp_path: Path) -> None:
    assert parse_location(tmp_path / "a.journal").kind == "journal"
    sqlite = parse_location(tmp_path / "a.db")
    assert sqlite.kind == "sqlite" and sqlite.path == tmp_path / "a.db"
    assert parse_location("postgresql://u@host/db").kind == "postgresql"


# ----------------------------------------------------------------------------
# Real tuning, records used by compile, kill and resume, concurrent workers.


@pytest.mark.parametrize("strategy", ["ga", "tpe", "random"])
def test_tune_then_compile_uses_the_records(strategy: str, model_path: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "records.db")
    results = tune_model(
        str(model_path),
        TuneOptions(trials=4, strategy=strategy, seed=0, storage=db),
        isolated=False,
        measure=FAST,
        kernels=["conv", "blocked_conv", "matmul"],
    )
    assert results and all(r.trials == 4 and r.default_seconds for r in results)
    records = best_records(db, [r.task.key for r in results])
    assert set(records) == {r.task.key for r in results}
    # libraries="none": every kernel is generated, so each must carry its record (library
    # candidates compete with the tuned kernels in test_cpu_libraries.py).
    tuned = wpk_compile(str(model_path), options=CompileOptions(tuning_db=db, libraries="none"))
    plain = wpk_compile(str(model_path), options=CompileOptions(use_tuning_records=False, libraries="none"))
    assert plain.stats.tuned_kernels == 0
    assert tuned.stats.tuned_kernels == sum(len(r.task.model_kernels) for r in results)
    by_key = {r.task.key: r.best_config for r in results}
    lowered = lower_model(str(model_path))
    with lowered.imported.context:
        names = {
            e.kernel_name: e.task.key
            for e in cpu_tasks(
                lowered.module, len(lowered.weights), CpuMachine.host(threads=FAST.threads or os.cpu_count())
            )
        }
    applied = {s.kernel.name: s.config for s in tuned.executable.schedules}
    for name, key in names.items():
        if key in by_key:
            assert applied[name] == by_key[key], name
    x = np.random.default_rng(3).standard_normal((1, 8, 16, 16)).astype(np.float32)
    (a,) = tuned.run(None, {"x": x})
    (b,) = plain.run(None, {"x": x})
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    # An explicit configuration wins over a record.
    explicit = wpk_compile(
        str(model_path), options=CompileOptions(tuning_db=db, cpu=_cpu(schedules={"conv": {}}), libraries="none")
    )
    assert explicit.stats.tuned_kernels == sum(len(r.task.model_kernels) for r in results if r.task.kind != "conv")


def _cpu(**kwargs):
    from woodpecker.backend.cpu import CpuOptions

    return CpuOptions(**kwargs)


def test_stale_record_falls_back_to_the_default(model_path: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "stale.db")
    item_tasks = model_cpu_tasks(str(model_path), kernels=["matmul"])
    task, space = item_tasks[0]
    bogus = dict(space.default, reg_n=12345)
    tune_tasks([(task, space)], RecordedRunner(lambda t, c: 1.0), TuneOptions(trials=1, storage=db))
    with open_database(db) as database:  # a faster record the schedule no longer accepts
        claim = database.claim(task.key, bogus, strategy="ga", budget=2)
        database.finish(claim, seconds=0.5, times=[0.5])
        assert database.records([task.key])[task.key].config == bogus
    with pytest.warns(UserWarning, match="not valid for its schedule any more"):
        compiled = wpk_compile(str(model_path), options=CompileOptions(tuning_db=db, libraries="none"))
    assert compiled.stats.tuned_kernels == 0


def _wpk(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "woodpecker.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        **kwargs,
    )


def _finished(db: str) -> dict[str, list]:
    """key -> the finished trials of every workload in the database."""
    with open_database(db) as database:
        keys = database.keys()
        found = database.trials(keys, states=[COMPLETE, FAILED])
    return {key: found.get(key, []) for key in keys}


def _stored_so_far(db: str) -> dict[str, list]:
    """`_finished` while the tuner writes the database; a poll that cannot read it counts nothing."""
    try:
        return _finished(db)
    except DatabaseError:
        return {}


def test_killed_run_resumes_without_losing_trials(model_path: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "kill.db")
    args = [
        "tune",
        str(model_path),
        "--trials",
        "6",
        "--strategy",
        "tpe",
        "--db",
        db,
        "--kernel",
        "conv",
        "--layout",
        "nchw",
        "--seed",
        "0",
        "--no-progress",
        "--no-end-to-end",
    ]
    process = _wpk(*args)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill it once some trials are stored
        time.sleep(0.5)
        if Path(db).exists() and sum(len(v) for v in _stored_so_far(db).values()) >= 4:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = _finished(db)
    kept = {(k, t.number, t.seconds) for k, ts in before.items() for t in ts}
    assert 4 <= len(kept) < 6 * 3
    done = _wpk(*args)
    out, _ = done.communicate(timeout=300)
    assert done.returncode == 0, out
    after = _finished(db)
    assert len(after) == 2 and all(len(ts) == 6 for ts in after.values()), out  # 3x3 (twice) and 1x1
    assert kept <= {(k, t.number, t.seconds) for k, ts in after.items() for t in ts}
    assert "speedup" in out and "failures" in out


def test_two_workers_share_a_journal(model_path: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "shared.journal")
    (task, _), *_ = model_cpu_tasks(str(model_path), kernels=["conv"])
    args = [
        "tune",
        str(model_path),
        "--trials",
        "8",
        "--strategy",
        "random",
        "--db",
        db,
        "--kernel",
        task.model_kernels[0],
        "--in-process",
        "--no-progress",
        "--no-end-to-end",
    ]
    workers = [_wpk(*args, "--seed", str(seed)) for seed in (1, 2)]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    assert all("database is locked" not in out for out in outputs)
    (trials,) = _finished(db).values()
    # The budget is shared through claims: exactly 8, one default, no configuration twice
    # (Optuna studies allowed 9, several defaults and 2 duplicates).
    assert len(trials) == 8
    assert all(t.state == COMPLETE for t in trials)
    defaults = [t for t in trials if t.is_default]
    assert len(defaults) == 1
    configs = [t.config_key for t in trials]
    assert len(configs) == len(set(configs))


def test_infinite_outputs_are_not_failures(tmp_path: Path) -> None:
    """A padding with -inf (what a max pool pads with): a legitimate output, equal across
    configurations."""
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64), "pads")
    value = numpy_helper.from_array(np.array(-np.inf, dtype=np.float32), "value")
    graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads", "value"], ["y"], mode="constant")],
        "pad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 8, 16, 16))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 8, 18, 18))],
        [pads, value],
    )
    path = tmp_path / "pool.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    (fill,) = [(t, s) for t, s in model_cpu_tasks(str(path)) if t.description.startswith("fill")]
    task, space = fill
    configs = list(space.configs())[:3]
    results = InProcessCpuRunner(FAST).measure(task, configs)
    assert all(r.ok for r in results), [r.error for r in results]


def test_relative_times_are_scaled_by_the_default(extracted, tmp_path: Path) -> None:
    """A candidate timed alternately with the default records relative x the default's time,
    whatever the machine's speed was when it ran."""
    from woodpecker.kernels.task import MeasureResult

    item = _conv_task(extracted)

    class SlowingRunner:
        def __init__(self) -> None:
            self.calls = 0

        def measure(self, task, configs):
            self.calls += 1
            slowdown = 1.0 + 0.5 * self.calls  # the machine gets slower and slower
            default = config_key(configs[0]) == config_key(item.space.default)
            relative = 1.0 if default else 0.5 + 0.01 * (self.calls % 5)
            return [MeasureResult(dict(configs[0]), times=[2e-3 * relative * slowdown] * 3, relative=relative)]

        def close(self) -> None:
            pass

    options = TuneOptions(trials=6, strategy="random", seed=0, storage=str(tmp_path / "r.db"), confirm_top=0)
    (result,) = tune_tasks([(item.task, item.space)], SlowingRunner(), options)
    with open_database(options.storage) as db:
        values = sorted(t.seconds for t in db.trials([item.task.key], states=[COMPLETE])[item.task.key])
    default = result.default_seconds
    assert default == pytest.approx(2e-3 * 1.5)  # the first measurement, at its machine speed
    assert all(default * 0.5 <= v <= default * 0.55 for v in values[:-1]) and values[-1] == default
    assert result.best_seconds == pytest.approx(default * 0.5, rel=0.05)
