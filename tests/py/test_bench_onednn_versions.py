"""bench/bench_onednn_versions.py with the project's oneDNN on the bundled tiny model's convolutions: the
conv primitives it builds (nChw16c src/dst) compute what a float64 numpy convolution does, and the thread
count it reports shows one pool (oneDNN 3.2 on the preloaded libiomp5). Not a timing test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from woodpecker.runtime.cpu.onednn import availability, library_path

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "bench"
TINY = REPO_ROOT / "python" / "woodpecker" / "models" / "tiny_resnet.onnx"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import bench_onednn_versions as versions  # noqa: E402


def test_the_project_library_on_the_tiny_model(tmp_path: Path) -> None:
    reason = availability()
    if reason is not None:
        pytest.skip(reason)
    out = tmp_path / "versions.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "bench_onednn_versions.py"), "--lib", f"gomp={library_path()}", "--model",
         str(TINY), "--rounds", "1", "--runs", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gomp: oneDNN 3.2.0 (OpenMP runtime)" in done.stdout
    report = json.loads(out.read_text())
    expected = versions.distinct_convs(TINY)
    assert len(report["rows"]) == len(expected) >= 2
    info = report["libraries"]["gomp"]
    for row in report["rows"]:
        lib = row["libraries"]["gomp"]
        assert lib["rel_l2"] < 1e-5 and lib["median_ms"] > 0 and lib["impl"]
        # oneDNN 3.2 runs on the OpenMP pool the region started: no thread of its own.
        assert lib["threads_after_conv"] == info["threads_after_openmp"]


def test_reference_conv_matches_a_direct_loop() -> None:
    conv = versions.Conv(c=2, h=5, w=4, k=3, kh=3, kw=3, stride=2, pad=1)
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    got = versions.reference_conv(x, w, b, conv)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    assert got.shape == (1, 3, conv.oh, conv.ow) == (1, 3, 3, 2)
    for k in range(3):
        for i in range(conv.oh):
            for j in range(conv.ow):
                window = padded[0, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3]
                assert got[0, k, i, j] == pytest.approx(float(np.sum(window * w[k])) + b[k])
