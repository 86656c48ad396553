"""What a case's code uses, inside its own process (`from casekit import *`).

The verdict goes to the JSON file named by $WPK_CASE_RESULT; the runner classifies the
process (classify.py) from its exit status, its output and that verdict.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32, F16, F64, I64, I32 = (
    TensorProto.FLOAT,
    TensorProto.FLOAT16,
    TensorProto.DOUBLE,
    TensorProto.INT64,
    TensorProto.INT32,
)
REPO = Path(__file__).resolve().parents[2]
RTOL, ATOL = 1e-4, 1e-5  # the stated tolerance of every numeric comparison (float64)

__all__ = [
    "ATOL",
    "F16",
    "F32",
    "F64",
    "I32",
    "I64",
    "REPO",
    "RTOL",
    "Path",
    "api",
    "bare_tensor",
    "check_model",
    "cli",
    "compare",
    "correct",
    "fixture",
    "harness_error",
    "helper",
    "init",
    "mkfifo",
    "model",
    "node",
    "np",
    "numpy_helper",
    "onnx",
    "ort_run",
    "save",
    "skip",
    "verdict",
    "vi",
    "wpk_opt",
    "wrong",
]  # fmt: skip


def verdict(outcome: str, detail: str = "", code: int = 0) -> None:
    """Writes the case's verdict and ends the process."""
    Path(os.environ["WPK_CASE_RESULT"]).write_text(json.dumps({"outcome": outcome, "detail": detail}))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def correct(detail: str = "") -> None:
    verdict("correct", detail)


def wrong(detail: str) -> None:
    verdict("wrong-answer", detail)


def skip(reason: str) -> None:
    verdict("skipped", reason)


def harness_error(detail: str) -> None:
    verdict("harness-error", detail)


# -- building models ----------------------------------------------------------------------------


def vi(name: str, shape: Sequence[int | str] | None, dtype: int = F32) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def bare_tensor(name: str, dtype: int, dims: Sequence[int], raw: bytes | None = None) -> onnx.TensorProto:
    """A TensorProto as a hostile file could hold it (onnx.helper would refuse to make it)."""
    tensor = onnx.TensorProto()
    tensor.name, tensor.data_type = name, dtype
    tensor.dims.extend(dims)
    if raw is not None:
        tensor.raw_data = raw
    return tensor


def node(op: str, inputs: Sequence[str], outputs: Sequence[str], **attrs: Any) -> onnx.NodeProto:
    return helper.make_node(op, list(inputs), list(outputs), name=f"{op.lower()}_{outputs[0] if outputs else 'x'}",
                            **attrs)  # fmt: skip


def model(nodes, inputs, outputs, inits=(), opset: int = 17, ir_version: int = 8) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "case", list(inputs), list(outputs), list(inits))
    made = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    made.ir_version = ir_version
    return made


def save(made: onnx.ModelProto, path: str = "model.onnx") -> str:
    Path(path).write_bytes(made.SerializeToString())
    return path


def mkfifo(path: str = "fifo") -> str:
    os.mkfifo(path)
    return path


def fixture(name: str, into: str | None = None) -> Path:
    """A copy (in the current directory) of a fixture the runner built once for this run."""
    source = Path(os.environ.get("WPK_FIXTURES", "")) / name
    if not source.exists():
        skip(f"fixture {name} could not be built (see the runner's output)")
    target = Path(into or name)
    shutil.copytree(source, target) if source.is_dir() else shutil.copy(source, target)
    return target


# -- calling what is under test ---------------------------------------------------------------


def api(call: Callable[[], Any]) -> Any:
    """Calls `call`; a WoodpeckerError ends the case as a (candidate) clean error, anything else
    propagates (a traceback); returns what the call returned."""
    from woodpecker.errors import WoodpeckerError

    try:
        return call()
    except WoodpeckerError as err:
        Path(os.environ["WPK_CASE_RESULT"]).write_text(json.dumps({"raised": type(err).__name__, "message": str(err)}))
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def cli(argv: Sequence[str]) -> None:
    """`wpk ARGV` as its console script runs it (in this process); ends with its exit status."""
    from woodpecker.cli.main import main

    sys.argv = ["wpk", *argv]
    sys.exit(main(list(argv)))


def wpk_opt(argv: Sequence[str]) -> None:
    """`wpk-opt ARGV` (in this process); ends with its exit status."""
    from woodpecker.tools.wpk_opt import main

    sys.argv = ["wpk-opt", *argv]
    sys.exit(main(list(argv)))


# -- reference results ----------------------------------------------------------------------


def ort_run(path: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray] | str:
    """ONNX Runtime's outputs, or why it refuses the model (a string)."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return session.run(None, feeds)
    except Exception as err:
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0][:200] if str(err).strip() else ''}"


def compare(got: Sequence[np.ndarray], expected: Sequence[np.ndarray], rtol: float = RTOL, atol: float = ATOL) -> str:
    """'' when they agree in float64 (identical NaNs agree), else what differs."""
    if len(got) != len(expected):
        return f"{len(got)} outputs, expected {len(expected)}"
    for index, (a, b) in enumerate(zip(got, expected, strict=True)):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return f"output {index}: shape {a.shape}, expected {b.shape}"
        if not np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True):
            worst = np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64))) if a.size else 0.0
            return f"output {index}: max abs diff {worst:.3e} at rtol={rtol}, atol={atol}"
    return ""


def check_model(made: onnx.ModelProto, feeds: dict[str, np.ndarray] | None = None, rtol: float = RTOL,
                atol: float = ATOL, **compile_kw: Any) -> None:  # fmt: skip
    """Compiles `made` (saved as model.onnx) for the CPU and runs it: a clean error, or outputs equal
    to ONNX Runtime's; Woodpecker running a model ONNX Runtime refuses is a wrong answer."""
    import woodpecker

    path = save(made)
    compiled = api(lambda: woodpecker.compile(path, **compile_kw))
    if feeds is None:
        from woodpecker.compiler import random_feeds

        feeds = random_feeds(compiled, seed=0)
    got = api(lambda: compiled.run(None, feeds))
    expected = ort_run(path, feeds)
    if isinstance(expected, str):
        wrong(f"ran a model ONNX Runtime refuses ({expected})")
    difference = compare(got, expected, rtol, atol)
    if difference:
        wrong(difference)
    correct(f"{len(got)} output(s) equal ONNX Runtime's at rtol={rtol}, atol={atol}")
