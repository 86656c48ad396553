"""Inputs several cases share, built once per run in the run's directory (a saved CUDA plan,
made without a GPU as tests/py/test_cuda*.py do)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sandbox import REPO, case_environment

CUDA_PLAN = """
import numpy as np, woodpecker
from casekit import model, node, vi, init
rng = np.random.default_rng(0)
made = model([node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), node("Relu", ["c"], ["r"]),
              node("Flatten", ["r"], ["f"]), node("Gemm", ["f", "g"], ["y"])],
             [vi("x", [1, 3, 8, 8])], [vi("y", [1, 10])],
             [init("w", rng.standard_normal((8, 3, 3, 3)).astype(np.float32)),
              init("g", rng.standard_normal((512, 10)).astype(np.float32))])
woodpecker.compile(made, target="cuda", arch="sm_90", options=None).save("cuda_plan")
"""

BUILDERS = {"cuda_plan": CUDA_PLAN}


def build_fixtures(names: set[str], root: Path) -> dict[str, str]:
    """Builds the named fixtures under root; what failed, with why."""
    failed = {}
    for name in sorted(names):
        result = subprocess.run([sys.executable, "-c", BUILDERS[name]], cwd=root, capture_output=True, text=True,
                                env=case_environment(root, root, root / "unused.json"), timeout=300)  # fmt: skip
        if result.returncode != 0 or not (root / name).exists():
            failed[name] = (result.stderr.strip().splitlines() or ["no output"])[-1]
    return failed


__all__ = ["BUILDERS", "REPO", "build_fixtures"]
