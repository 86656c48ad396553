"""One real model against ONNX Runtime: what blocks it, seeded feeds, relative L2, latency.

Shared by tools/model_report.py (one row per model, each in its own subprocess) and
tests/py/test_real_models.py, so the report and the tests measure the same thing.
"""

from __future__ import annotations

import collections
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

TOKEN_IDS = 1000  # int inputs get token ids below this (every exported vocabulary is larger)
THREADS = 2
DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass
class Row:
    """One model's result; `error` is None when it compiled."""

    model: str
    compiles: bool = False
    error: str | None = None
    blocking: dict[str, int] | None = None  # op type -> nodes, for the ops without a converter
    rel_l2: float | None = None
    compile_s: float | None = None
    wpk_ms: float | None = None
    ort_ms: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def blocking_ops(model: onnx.ModelProto) -> collections.Counter[str]:
    """Node counts of the op types Woodpecker has no converter for (foreign domains as
    `domain::Op`), in the graph as stored (before any folding)."""
    from woodpecker.importer import SUPPORTED_OPS

    missing: collections.Counter[str] = collections.Counter()
    for node in model.graph.node:
        if node.domain not in DEFAULT_DOMAINS:
            missing[f"{node.domain}::{node.op_type}"] += 1
        elif node.op_type not in SUPPORTED_OPS:
            missing[node.op_type] += 1
    return missing


def seeded_feeds(session, seed: int = 0) -> dict[str, np.ndarray]:  # session: ort.InferenceSession
    """One feed per model input: standard normal floats; int inputs valid token ids (a mask,
    any input whose name contains "mask", all ones)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in value.shape]
        if "int" in value.type:
            dtype = np.int32 if "int32" in value.type else np.int64
            if "mask" in value.name:
                feeds[value.name] = np.ones(shape, dtype)
            else:
                feeds[value.name] = rng.integers(0, TOKEN_IDS, shape).astype(dtype)
        elif "bool" in value.type:
            feeds[value.name] = np.ones(shape, bool)
        else:
            feeds[value.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def rel_l2(got: list[np.ndarray], expected: list[np.ndarray]) -> float:
    """The largest relative L2 error over the outputs (||got - expected|| / ||expected||)."""
    worst = 0.0
    for g, e in zip(got, expected, strict=True):
        if g.shape != e.shape:
            return float("inf")
        e64, g64 = e.astype(np.float64), g.astype(np.float64)
        worst = max(worst, float(np.linalg.norm(g64 - e64) / max(np.linalg.norm(e64), 1e-30)))
    return worst


def ort_session(path: Path):  # -> ort.InferenceSession
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check(path: Path, latency: bool = False, repeats: int = 10) -> Row:
    """Compiles `path` with default options and compares it with ONNX Runtime."""
    import woodpecker
    from woodpecker.errors import WoodpeckerError
    from woodpecker.tune.end_to_end import measure_interleaved

    row = Row(path.stem)
    blocking = blocking_ops(onnx.load(str(path), load_external_data=False))
    row.blocking = dict(blocking.most_common()) or None
    start = time.perf_counter()
    try:
        compiled = woodpecker.compile(path)
    except WoodpeckerError as err:
        row.error = _one_line(err)
        return row
    except Exception as err:  # a bug, not a refusal: still one row, named as such
        row.error = f"internal error {type(err).__name__}: {_one_line(err)}"
        return row
    row.compile_s = time.perf_counter() - start
    row.compiles = True
    session = ort_session(path)
    feeds = seeded_feeds(session)
    expected = session.run(None, feeds)
    got = compiled.run(None, feeds)
    row.rel_l2 = rel_l2(list(got), list(expected))
    if latency:
        # Blocks of calls, alternating, a pause after each: timed call by call, each engine ran
        # against the other's still-spinning threads, which doubled the CNN latencies on 2 cores.
        timed = measure_interleaved(lambda: compiled.run(None, feeds), lambda: session.run(None, feeds),
                                    rounds=repeats, pause_s=0.3)
        row.wpk_ms, row.ort_ms = 1e3 * timed.before.median, 1e3 * timed.after.median
    return row


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
