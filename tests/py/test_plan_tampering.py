"""Saved directories that were tampered with: a CUDA plan, a kernels-only model, a measurement
batch and the CPU tuning worker's requests. Every variant is generated systematically (each
path field pointed outside, at a link out, a FIFO, /dev/zero, a directory, nothing; each field of
each record given a wrong type, a negative, a float or a huge value; the JSON top level a list, a
string, deeply nested) and must give one error line of the format's error type, never another
exception and never a hang (each load runs in a thread with a timeout: a FIFO opened for reading
would block it). No GPU needed (the launcher runs on the fake driver of test_cuda_tuning).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_cuda_tuning import _make_fake

import woodpecker
from woodpecker.cli import measure as measure_cli
from woodpecker.compiler import CompileOptions
from woodpecker.errors import CompilationError, WoodpeckerError
from woodpecker.gpu.model import CudaModel
from woodpecker.kernels.task import KernelTask
from woodpecker.measure import batch as batch_mod
from woodpecker.models import bundled_model_path
from woodpecker.runtime.cuda import launch
from woodpecker.runtime.cuda.plan import InferencePlan, PlanError, pack_weights

LOAD_TIMEOUT_S = 20.0
FREE_FORM = ("selection", "config")  # reporting and knobs: any JSON object is accepted there


# -- helpers ---------------------------------------------------------------------------------------


def outcome(call: Callable[[], Any]) -> BaseException | None:
    """What `call` raised (None: it returned), run in a thread that must finish in time."""
    box: dict[str, BaseException | None] = {"error": None}

    def target() -> None:
        try:
            call()
        except BaseException as err:
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(LOAD_TIMEOUT_S)
    assert not thread.is_alive(), f"{call} hangs (still running after {LOAD_TIMEOUT_S} s)"
    return box["error"]


def assert_one_line_error(call: Callable[[], Any], kind: type[Exception], *fragments: str, case: object = "") -> str:
    error = outcome(call)
    assert error is not None, f"{case}: loaded without an error"
    assert isinstance(error, kind), f"{case}: {type(error).__name__}: {error}"
    assert isinstance(error, WoodpeckerError)
    text = str(error)
    assert text and "\n" not in text, text
    for fragment in fragments:
        assert fragment in text, text
    return text


def json_paths(data: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every key path of `data` (objects and lists), the free-form objects left out."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return
    for key, value in items:
        if key in FREE_FORM:
            continue
        yield (*prefix, key)
        yield from json_paths(value, (*prefix, key))


def get(data: Any, path: tuple) -> Any:
    for key in path:
        data = data[key]
    return data


def with_value(data: Any, path: tuple, value: Any) -> Any:
    copy = json.loads(json.dumps(data))
    get(copy, path[:-1])[path[-1]] = value
    return copy


def wrong_values(value: Any) -> list[Any]:
    """Values of the wrong type (or range) for a field holding `value`."""
    if isinstance(value, bool):
        return ["yes", 2]
    if isinstance(value, int):
        return ["12", 1.5, -1, 1 << 62, True]
    if isinstance(value, str):
        return [7, ["x"], {}]
    if isinstance(value, list):
        return ["x", {"0": 1}, 3]
    if isinstance(value, dict):
        return ["x", [1], 3]
    return ["x"]  # null


def show(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def tamper_file(root: Path, outside: Path) -> dict[str, Callable[[], str]]:
    """Ways to make a path field point where it must not: each returns the name to write."""

    def absolute() -> str:
        return str(outside)

    def dotdot() -> str:
        return os.path.relpath(outside, root)

    def link_out() -> str:
        (root / "link_out").unlink(missing_ok=True)
        (root / "link_out").symlink_to(outside)
        return "link_out"

    def fifo() -> str:
        if not (root / "a_fifo").exists():
            os.mkfifo(root / "a_fifo")
        return "a_fifo"

    def dev_zero() -> str:
        (root / "zero").unlink(missing_ok=True)
        (root / "zero").symlink_to("/dev/zero")
        return "zero"

    def absolute_dev_zero() -> str:
        return "/dev/zero"

    def char_device() -> str:  # /dev/zero itself, inside the directory (mknod: the tests run as root)
        if not (root / "zero_device").exists():
            try:
                os.mknod(root / "zero_device", 0o666 | stat.S_IFCHR, os.makedev(1, 5))
            except PermissionError:
                pytest.skip("mknod needs root")
        return "zero_device"

    def directory() -> str:
        (root / "a_dir").mkdir(exist_ok=True)
        return "a_dir"

    def missing() -> str:
        return "not_there.bin"

    makers = (absolute, dotdot, link_out, fifo, dev_zero, absolute_dev_zero, char_device, directory, missing)
    return {f.__name__: f for f in makers}


TAMPERINGS = [
    "absolute",
    "dotdot",
    "link_out",
    "fifo",
    "dev_zero",
    "absolute_dev_zero",
    "char_device",
    "directory",
    "missing",
]


# -- the saved model -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compiled() -> CudaModel:
    options = CompileOptions(target="cuda", use_tuning_records=False)
    model = woodpecker.compile(bundled_model_path(), options=options)
    assert isinstance(model, CudaModel)
    assert {s.impl for s in model.plan.steps} == {"generated", "cudnn", "cublas"}
    return model


@pytest.fixture(scope="module")
def saved(compiled: CudaModel, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("saved")
    return {"plan": compiled.save(root / "plan"), "kernels": compiled.save_kernels(root / "kernels")}


@pytest.fixture
def plan_dir(saved: dict[str, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "box" / "plan"
    shutil.copytree(saved["plan"], copy)
    (tmp_path / "box" / "secret.txt").write_text("not part of any plan\n")
    return copy


@pytest.fixture
def kernels_dir(saved: dict[str, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "box" / "kernels"
    shutil.copytree(saved["kernels"], copy)
    (tmp_path / "box" / "secret.txt").write_text("not part of any model\n")
    return copy


def _plan_json(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "plan.json").read_text())


def _write(directory: Path, name: str, data: Any) -> None:
    (directory / name).write_text(json.dumps(data))


def test_the_untampered_directories_load(saved: dict[str, Path]) -> None:
    plan, block = InferencePlan.load(saved["plan"])
    assert block.nbytes == plan.weight_bytes and len(plan.steps) == 11
    assert len(CudaModel.load_kernels(saved["kernels"]).program.kernels) > 11


# -- plan.json: the files it names -----------------------------------------------------------------

# A generated kernel's PTX and cubin, a library epilogue's PTX, and the weight block.
PLAN_FILE_FIELDS = {
    "kernel ptx": ("steps", 1, "kernels", 0, "ptx"),
    "kernel cubin": ("steps", 1, "kernels", 0, "cubin"),
    "epilogue ptx": ("steps", 0, "library", "epilogue", "ptx"),
    "weights": ("weights",),
}


@pytest.mark.parametrize("how", TAMPERINGS)
@pytest.mark.parametrize("field", list(PLAN_FILE_FIELDS))
def test_a_plan_file_outside_or_not_a_regular_file_is_refused(plan_dir: Path, field: str, how: str) -> None:
    data = _plan_json(plan_dir)
    path = PLAN_FILE_FIELDS[field]
    if field == "kernel cubin" and get(data, path) is None:
        pytest.skip("no cubin assembled here")
    name = tamper_file(plan_dir, plan_dir.parent / "secret.txt")[how]()
    _write(plan_dir, "plan.json", with_value(data, path, name))
    assert_one_line_error(lambda: woodpecker.load(plan_dir), PlanError, str(plan_dir))


# -- plan.json: every field ------------------------------------------------------------------------


def _plan_field_paths() -> list[tuple]:
    """The fields of the top level, of the first buffer and graph value, and of a cuDNN step (with
    its epilogue) and of the cuBLAS step of the tiny ResNet's plan (every record type)."""
    return [
        ("arch",),
        ("version",),
        ("format",),
        ("element_type",),
        ("calling_convention",),
        ("arena_bytes",),
        ("weight_bytes",),
        ("weights",),
        ("memory",),
        ("inputs",),
        ("outputs",),
        ("buffers",),
        ("steps",),
    ]


@pytest.fixture(scope="module")
def plan_record_paths(saved: dict[str, Path]) -> list[tuple]:
    data = _plan_json(saved["plan"])
    cublas = next(i for i, s in enumerate(data["steps"]) if s["impl"] == "cublas")
    paths = _plan_field_paths()
    for root in [("buffers", 0), ("inputs", 0), ("outputs", 0), ("memory",), ("steps", 0), ("steps", cublas)]:
        paths += [root] + [(*root, *p) for p in json_paths(get(data, root))]
    return list(dict.fromkeys(paths))


def test_every_plan_field_of_a_wrong_type_or_range_is_one_plan_error(
    saved: dict[str, Path], plan_record_paths: list[tuple], tmp_path: Path
) -> None:
    data = _plan_json(saved["plan"])
    plan = tmp_path / "plan"
    shutil.copytree(saved["plan"], plan)
    tried = 0
    for path in plan_record_paths:
        for value in wrong_values(get(data, path)):
            if path[-1] in ("how", "cubin", "epilogue", "library") and value is None:
                continue  # optional fields: null is allowed
            _write(plan, "plan.json", with_value(data, path, value))
            text = assert_one_line_error(lambda: woodpecker.load(plan), PlanError, case=(show(path), value))
            assert "Traceback" not in text, (show(path), value)
            tried += 1
    assert tried > 300


@pytest.mark.parametrize(
    "text, reason",
    [
        ("[1, 2]", "not an object"),
        ('"a plan"', "not an object"),
        ("[" * 100_000 + "]" * 100_000, "nested"),
        ('{"a":' * 200 + "1" + "}" * 200, "nested"),
        ("{", "not JSON"),
        ("", "not JSON"),
        ("null", "not an object"),
    ],
)
def test_a_plan_json_that_is_no_object_is_one_plan_error(plan_dir: Path, text: str, reason: str) -> None:
    (plan_dir / "plan.json").write_text(text)
    assert_one_line_error(lambda: woodpecker.load(plan_dir), PlanError, reason)


def test_a_plan_json_that_is_no_regular_file_or_too_big_is_refused(plan_dir: Path) -> None:
    (plan_dir / "plan.json").unlink()
    os.mkfifo(plan_dir / "plan.json")
    assert_one_line_error(lambda: woodpecker.load(plan_dir), PlanError, "not a regular file")
    (plan_dir / "plan.json").unlink()
    (plan_dir / "plan.json").symlink_to(plan_dir.parent / "secret.txt")
    assert_one_line_error(lambda: woodpecker.load(plan_dir), PlanError, "outside")
    (plan_dir / "plan.json").unlink()
    (plan_dir / "plan.json").write_bytes(b"\xff\xfe{}")
    assert_one_line_error(lambda: woodpecker.load(plan_dir), PlanError, "UTF-8")


# -- plan.json: library calls against their buffers ------------------------------------------------


def _library_step(data: dict[str, Any], library: str) -> int:
    return next(i for i, s in enumerate(data["steps"]) if s["impl"] == library)


@pytest.mark.parametrize(
    "library, change, reason",
    [
        ("cublas", lambda lib: lib["spec"].update(m=64), "needs 1024 f32 elements"),
        ("cublas", lambda lib: lib["spec"].update(k=-3), "positive ints"),
        ("cublas", lambda lib: lib["spec"].update(n="10"), "positive ints"),
        ("cublas", lambda lib: lib["operands"].update(a="weight[13]"), "operand a needs 16"),
        ("cublas", lambda lib: lib["operands"].pop("bias"), "needs ['a', 'b', 'bias', 'y']"),
        ("cublas", lambda lib: lib["operands"].update(side0="input[0]"), "binds roles"),
        ("cublas", lambda lib: lib["spec"].update(post_ops="relu"), "post_ops must be a list"),
        ("cublas", lambda lib: lib["spec"].update(post_ops=[7]), "must be an object"),
        ("cudnn", lambda lib: lib["spec"].update(x_shape=[1, 3, 640, 640], y_shape=[1, 8, 640, 640]), "needs"),
        ("cudnn", lambda lib: lib["spec"].update(y_shape=[1, 8, 65, 64]), "does not match"),
        ("cudnn", lambda lib: lib["spec"].update(w_shape="8x3x3x3"), "list of ints"),
        ("cudnn", lambda lib: lib["spec"].update(strides=[0, 1]), ">= 1"),
        ("cudnn", lambda lib: lib["spec"].update(groups=1.5), "groups"),
        ("cudnn", lambda lib: lib["spec"].update(bias="yes"), "bias"),
        ("cudnn", lambda lib: lib["operands"].update(x="intermediate[13]"), "operand x needs 12288"),
        ("cudnn", lambda lib: lib["operands"].update(y="intermediate[999]"), "unknown intermediate[999]"),
        ("cudnn", lambda lib: lib["operands"].update(y=3), "not a buffer name"),
        ("cudnn", lambda lib: lib.update(spec="conv"), "'spec' is str"),
        ("cudnn", lambda lib: lib.update(operands=["x", "w"]), "'operands' is list"),
        ("cudnn", lambda lib: lib.update(library="rocblas"), "not one of cudnn, cublas"),
    ],
)
def test_a_library_spec_must_fit_the_buffers_it_touches(
    plan_dir: Path, library: str, change: Callable[[dict], Any], reason: str
) -> None:
    data = _plan_json(plan_dir)
    change(data["steps"][_library_step(data, library)]["library"])
    _write(plan_dir, "plan.json", data)
    assert_one_line_error(lambda: woodpecker.load(plan_dir), PlanError, reason)


def test_a_weight_block_of_another_size_or_type_is_refused(plan_dir: Path) -> None:
    data = _plan_json(plan_dir)
    block = np.load(plan_dir / "weights.npy")
    for bad, reason in [
        (block[:-1], "the manifest says"),
        (block.astype(np.float64), "float64"),
        (np.array([{"a": 1}], dtype=object), "object"),
    ]:
        np.save(plan_dir / "weights.npy", bad, allow_pickle=True)
        assert_one_line_error(lambda: woodpecker.load(plan_dir), PlanError, reason)
    (plan_dir / "weights.npy").write_bytes(b"\x93NUMPY garbage")
    assert_one_line_error(lambda: woodpecker.load(plan_dir), PlanError, "weights.npy")
    np.save(plan_dir / "weights.npy", block)
    _write(plan_dir, "plan.json", {**data, "weight_bytes": data["weight_bytes"] + 4})
    assert_one_line_error(lambda: woodpecker.load(plan_dir), PlanError)


# -- saving: names that would become paths ---------------------------------------------------------


@pytest.mark.parametrize("entry", ["../escaped", "a/b", "..", "", ".hidden", "/tmp/abs", "-rf", "x" * 300, "a\x00b"])
def test_saving_a_plan_whose_entry_is_no_plain_name_writes_nothing(
    compiled: CudaModel, tmp_path: Path, entry: str
) -> None:
    plan = compiled.plan
    block = pack_weights(plan, compiled.weights)
    kernel = plan.steps[1].kernels[0]
    original = kernel.entry
    out = tmp_path / "out" / "plan"
    try:
        kernel.entry = entry
        assert_one_line_error(lambda: plan.save(out, block), PlanError, "kernel entry")
    finally:
        kernel.entry = original
    assert not (tmp_path / "out").exists() and not (tmp_path / "escaped.ptx").exists()


@pytest.mark.parametrize("name", ["../escaped", "a/b", ".."])
def test_saving_kernels_whose_name_is_no_plain_name_writes_nothing(
    compiled: CudaModel, tmp_path: Path, name: str
) -> None:
    kernel = compiled.program.kernels[0]
    original = kernel.name
    out = tmp_path / "out" / "kernels"
    try:
        kernel.name = name
        assert_one_line_error(lambda: compiled.save_kernels(out), CompilationError, "kernel name")
    finally:
        kernel.name = original
    assert not (tmp_path / "out").exists() and not (tmp_path / "escaped.ptx").exists()


def test_two_kernels_with_one_entry_are_refused_on_saving(compiled: CudaModel, tmp_path: Path) -> None:
    plan = compiled.plan
    kernel = plan.steps[1].kernels[0]
    original = kernel.entry
    try:
        kernel.entry = plan.steps[0].kernels[0].entry
        error = assert_one_line_error(
            lambda: plan.save(tmp_path / "p", pack_weights(plan, compiled.weights)), PlanError, "twice"
        )
    finally:
        kernel.entry = original
    assert error


# -- the kernels-only format (manifest.json) -------------------------------------------------------

KERNEL_FILE_FIELDS = {
    "kernel ptx": ("kernels", 0, "ptx"),
    "kernel cubin": ("kernels", 0, "cubin"),
    "weight file": ("weights", 0, "file"),
}


def _load_kernels(directory: Path) -> Callable[[], Any]:
    return lambda: CudaModel.load_kernels(directory)


@pytest.mark.parametrize("how", TAMPERINGS)
@pytest.mark.parametrize("field", list(KERNEL_FILE_FIELDS))
def test_a_kernels_only_file_outside_or_not_regular_is_refused(
    kernels_dir: Path, field: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads((kernels_dir / "manifest.json").read_text())
    path = KERNEL_FILE_FIELDS[field]
    if get(data, path) is None:
        pytest.skip("no cubin assembled here")
    name = tamper_file(kernels_dir, kernels_dir.parent / "secret.txt")[how]()
    _write(kernels_dir, "manifest.json", with_value(data, path, name))
    assert_one_line_error(_load_kernels(kernels_dir), CompilationError, str(kernels_dir))
    _make_fake(monkeypatch)  # the launcher reads the same files (on the fake driver: no GPU needed)
    assert_one_line_error(lambda: launch.CudaLauncher(kernels_dir).close(), launch.ManifestError, str(kernels_dir))


# The parts the manifest check leaves to the loader: it accepts what the dataclasses accept there.
LOADER_CHECKED = (
    "problem",
    "resources",
    "ops",
    "function",
    "kind",
    "model_kernel",
    "element_type",
    "needs_shared_opt_in",
    "target",
)


def test_every_kernels_only_field_of_a_wrong_type_is_one_error(saved: dict[str, Path], tmp_path: Path) -> None:
    data = json.loads((saved["kernels"] / "manifest.json").read_text())
    model = tmp_path / "kernels"
    shutil.copytree(saved["kernels"], model)
    paths = [("arch",), ("version",), ("format",), ("calling_convention",)]
    for root in [("inputs",), ("outputs",), ("weights",), ("intermediates",), ("kernels",)]:
        paths.append(root)
        first = (*root, 0)
        paths += [first] + [(*first, *p) for p in json_paths(get(data, first))]
    tried = strict = 0
    for path in paths:
        loose = any(part in LOADER_CHECKED for part in path[1:] if isinstance(part, str))
        for value in wrong_values(get(data, path)):
            _write(model, "manifest.json", with_value(data, path, value))
            error = outcome(_load_kernels(model))
            if error is None and loose:
                continue
            assert isinstance(error, CompilationError), (show(path), value, error)
            assert "\n" not in str(error)
            tried += 1
            strict += not loose
    assert tried > 100 and strict > 80


@pytest.mark.parametrize("text", ["[]", '"x"', "[" * 50_000 + "]" * 50_000, "{]"])
def test_a_manifest_that_is_no_object_is_one_error(kernels_dir: Path, text: str) -> None:
    (kernels_dir / "manifest.json").write_text(text)
    assert_one_line_error(_load_kernels(kernels_dir), CompilationError, "manifest.json")
    assert_one_line_error(lambda: launch.read_manifest(kernels_dir), launch.ManifestError)


def test_a_kernel_argument_outside_the_buffer_plan_is_refused(kernels_dir: Path) -> None:
    data = json.loads((kernels_dir / "manifest.json").read_text())
    for change, reason in [
        ({"buffer": "weight", "index": 999}, "weight[999] is not in the buffer plan"),
        ({"buffer": "intermediate", "index": 12345}, "is not in the buffer plan"),
        ({"buffer": "heap", "index": 0}, "not one of input"),
        ({"index": -2}, "outside"),
    ]:
        bad = json.loads(json.dumps(data))
        bad["kernels"][0]["args"][0].update(change)
        _write(kernels_dir, "manifest.json", bad)
        assert_one_line_error(lambda: launch.read_manifest(kernels_dir), launch.ManifestError, reason)


# -- measurement batches ---------------------------------------------------------------------------


@pytest.fixture
def batch_dir(saved: dict[str, Path], tmp_path: Path) -> Path:
    task = KernelTask(
        key="conv.test",
        description="a conv",
        kind="conv",
        template="cuda.conv",
        target="cuda",
        device="sm_90",
        module_text="module {}",
        num_weights=1,
        arg_shapes=((1, 3, 8, 8), (8, 3, 3, 3)),
        output_shape=(1, 8, 8, 8),
        kernel_name="k0_conv",
        model_kernels=("k0_conv",),
    )
    root = tmp_path / "box" / "batch"
    batch_mod.export_batch(
        root, task, [(0, {"tile": [1, 2]}, saved["kernels"]), (1, {"tile": [2, 2]}, saved["kernels"])], arch="sm_90"
    )
    (tmp_path / "box" / "secret.txt").write_text("not part of any batch\n")
    return root


def _batch_json(root: Path) -> dict[str, Any]:
    return json.loads((root / "batch.json").read_text())


def test_the_untampered_batch_reads_and_without_a_gpu_says_so(batch_dir: Path, capsys) -> None:
    assert [c.id for c in batch_mod.read_batch(batch_dir).candidates] == [0, 1]
    if not launch.cuda_available():
        assert measure_cli.main([str(batch_dir)]) == 1
        assert "no CUDA device" in capsys.readouterr().err


# (an empty directory inside the batch is a candidate that fails when measured, not a bad batch)
@pytest.mark.parametrize("how", [*(t for t in TAMPERINGS if t != "directory"), "nested", "a_file"])
def test_a_candidate_directory_outside_the_batch_is_refused(batch_dir: Path, how: str, capsys) -> None:
    data = _batch_json(batch_dir)
    if how == "nested":
        name = "cand_0/../cand_1"
    elif how == "a_file":
        name = "batch.json"
    else:
        name = tamper_file(batch_dir, batch_dir.parent)[how]()
    _write(batch_dir, "batch.json", with_value(data, ("candidates", 0, "dir"), name))
    assert_one_line_error(lambda: batch_mod.read_batch(batch_dir), batch_mod.BatchError)
    assert measure_cli.main([str(batch_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wpk measure: error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_every_batch_field_of_a_wrong_type_or_range_is_one_batch_error(batch_dir: Path) -> None:
    data = _batch_json(batch_dir)
    tried = 0
    for path in json_paths(data):
        if path[-1] in ("error", "created", "reference", "device") or path == ("candidates", 1, "dir"):
            optional = True  # null is allowed there
        else:
            optional = False
        for value in wrong_values(get(data, path)):
            if optional and (value is None or (path[-1] != "reference" and isinstance(value, str))):
                continue  # a missing or textual error, date, device is fine
            if path[-1] in ("id", "reference") and value == -1 and path != ("candidates", 0, "id"):
                continue  # ids may be negative
            if path[-1] == "compile_seconds" and isinstance(value, int) and 0 <= value < 1e9:
                continue  # any duration
            _write(batch_dir, "batch.json", with_value(data, path, value))
            assert_one_line_error(
                lambda: batch_mod.read_batch(batch_dir), batch_mod.BatchError, case=(show(path), value)
            )
            tried += 1
    assert tried > 50


@pytest.mark.parametrize("text", ["[]", '"x"', "[" * 50_000 + "]" * 50_000, "{"])
def test_a_batch_or_results_json_that_is_no_object_is_one_batch_error(batch_dir: Path, text: str) -> None:
    good = (batch_dir / "batch.json").read_text()
    (batch_dir / "batch.json").write_text(text)
    assert_one_line_error(lambda: batch_mod.read_batch(batch_dir), batch_mod.BatchError, "batch.json")
    (batch_dir / "batch.json").write_text(good)
    (batch_dir / "results.json").write_text(text)
    assert_one_line_error(lambda: batch_mod.read_results(batch_dir), batch_mod.BatchError, "results.json")


def test_tampered_results_and_reference_outputs_are_refused(batch_dir: Path) -> None:
    results = {
        "format": batch_mod.RESULTS_FORMAT,
        "version": 1,
        "device": {},
        "results": [{"id": 0, "config": {}, "times": [1e-5], "error": None, "verified": True}],
    }
    _write(batch_dir, "results.json", results)
    assert list(batch_mod.read_results(batch_dir)) == [0]
    entry = results["results"][0]
    for path in [("id",), ("config",), ("times",), ("error",), ("verified",)]:
        for value in [7, [1]] if path == ("error",) else wrong_values(entry[path[0]]):
            if path == ("id",) and value == -1:
                continue  # ids may be negative
            _write(batch_dir, "results.json", {**results, "results": [with_value(entry, path, value)]})
            assert_one_line_error(lambda: batch_mod.read_results(batch_dir), batch_mod.BatchError)
    (batch_dir / "results.json").unlink()
    os.mkfifo(batch_dir / "results.json")
    assert_one_line_error(lambda: batch_mod.read_results(batch_dir), batch_mod.BatchError, "not a regular file")
    reference = batch_dir / batch_mod.REFERENCE_FILE
    for make in [
        lambda: os.mkfifo(reference),
        lambda: reference.symlink_to("/dev/zero"),
        lambda: reference.mkdir(),
        lambda: reference.write_bytes(b"PK junk"),
    ]:
        make()
        assert_one_line_error(lambda: batch_mod.load_reference(reference), batch_mod.BatchError)
        shutil.rmtree(reference) if reference.is_dir() and not reference.is_symlink() else reference.unlink()
    np.savez(reference, np.array([{"pickled": True}], dtype=object), allow_pickle=True)
    assert_one_line_error(lambda: batch_mod.load_reference(reference), batch_mod.BatchError, "pickle")


# -- the CPU tuning worker's requests --------------------------------------------------------------


def test_the_cpu_worker_answers_every_malformed_request_with_one_fatal_line() -> None:
    task = {
        "key": "k",
        "description": "d",
        "kind": "conv",
        "template": "cpu.conv",
        "target": "cpu",
        "device": "x",
        "module_text": "module {}",
        "num_weights": 0,
        "arg_shapes": [[1]],
        "output_shape": [1],
        "kernel_name": "k0",
        "flops": 0,
        "model_kernels": [],
    }
    requests = [
        "[1, 2]",
        '"request"',
        "[" * 100_000 + "]" * 100_000,
        "{not json",
        json.dumps({"task": task, "config": [], "options": {}}),
        json.dumps({"task": task, "config": {}, "options": "fast"}),
        json.dumps({"task": "conv", "config": {}, "options": {}}),
        json.dumps({"task": {**task, "arg_shapes": "1x1"}, "config": {}, "options": {}}),
        json.dumps({"task": {**task, "num_weights": -1}, "config": {}, "options": {}}),
        json.dumps({"task": {**task, "output_shape": [1.5]}, "config": {}, "options": {}}),
        json.dumps({"task": {**task, "evil": 1}, "config": {}, "options": {}}),
        json.dumps({"task": task, "config": {}, "options": {"repeat": "many"}}),
    ]
    process = subprocess.run(
        [sys.executable, "-m", "woodpecker.measure.cpu_worker"],
        input="\n".join(requests) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr
    replies = [json.loads(line) for line in process.stdout.splitlines()]
    assert len(replies) == len(requests)
    for request, reply in zip(requests, replies, strict=True):
        assert set(reply) == {"fatal"} and "\n" not in reply["fatal"], (request[:80], reply)
    assert "Traceback" not in process.stderr
