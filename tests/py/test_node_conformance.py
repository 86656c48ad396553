"""ONNX backend node tests, compiled with `woodpecker.compile` and compared with the ONNX expected outputs.

Selection: every node test whose graph only uses op types in `woodpecker.importer.SUPPORTED_OPS`
(matched on the ops present in model.onnx, not on test names); one pytest test per ONNX test name
and optimization level: O0 (no graph optimization) and O2 (folding and fusion), so that every
graph pass must keep the numerics (`WPK_CONFORMANCE_OPT_LEVELS=0,1,2` runs other levels).
Data: generated once per machine from onnx's generators (conformance/data.py; cache in
`<repo>/.cache/onnx-node-tests/<onnx version>/` or `$WPK_NODE_TEST_DIR`).
Tolerance: rtol=1e-4, atol=1e-5 for every op (conformance.RTOL/ATOL; TOLERANCE_OVERRIDES only where
the ONNX expected data is rounded).
Operands that Woodpecker takes as attributes (Reshape shape, Pad pads, Clip min/max, ...) are frozen
into initializers when a test feeds them as graph inputs (conformance.FROZEN_INPUTS).

A test is skipped ONLY by one of these rules, with the reason shown by `pytest -ra`:
  1. a non-f32 input or output (after freezing); the reason names the tensor and its dtype;
  2. `woodpecker.compile` raises UnsupportedOperatorError or ShapeError and the test is in KNOWN_LIMITATIONS.
Any other UnsupportedOperatorError, any other exception, or a numeric mismatch FAILS.

Per-op pass/fail/skip table: printed at the end of the pytest run (conftest.py), or run
`python tools/conformance_report.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import pytest
from conformance import NodeCase, SkipCase, check_node_case, load_index, select_cases

import woodpecker
from woodpecker.errors import ShapeError, UnsupportedOperatorError
from woodpecker.importer import SUPPORTED_OPS

_POOL_3D = "3-D pooling (wpk pooling ops are 2-D, NCHW)"
_TRAINING_DROPOUT = "training-mode Dropout (random mask; Woodpecker compiles inference graphs)"

# Documented limitations: test name -> reason. A test listed here is skipped only if
# woodpecker.compile raises LIMITATION_ERRORS for it; if it compiles, it runs and must pass.
KNOWN_LIMITATIONS: dict[str, str] = {
    "test_averagepool_3d_default": _POOL_3D,
    "test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_False": _POOL_3D,
    "test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_True": _POOL_3D,
    "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_False": _POOL_3D,
    "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True": _POOL_3D,
    "test_averagepool_3d_dilations_small": _POOL_3D,
    "test_maxpool_3d_default": _POOL_3D,
    "test_maxpool_3d_dilations": _POOL_3D,
    "test_maxpool_3d_dilations_use_ref_impl": _POOL_3D,
    "test_maxpool_3d_dilations_use_ref_impl_large": _POOL_3D,
    "test_batchnorm_epsilon_training_mode": "training-mode BatchNormalization (batch statistics, 3 outputs)",
    "test_batchnorm_example_training_mode": "training-mode BatchNormalization (batch statistics, 3 outputs)",
    "test_training_dropout": _TRAINING_DROPOUT,
    "test_training_dropout_default": _TRAINING_DROPOUT,
    "test_training_dropout_zero_ratio": _TRAINING_DROPOUT,
    "test_reshape_allowzero_reordered": "empty (zero-sized) tensors are not compiled",
    "test_convtranspose_3d": "3-D ConvTranspose (wpk.conv_transpose2d is 2-D; 1-D is imported with H = 1)",
}
LIMITATION_ERRORS = (UnsupportedOperatorError, ShapeError)

CASES: list[NodeCase] = select_cases(SUPPORTED_OPS)
OPT_LEVELS = tuple(int(v) for v in os.environ.get("WPK_CONFORMANCE_OPT_LEVELS", "0,2").split(","))


@pytest.mark.parametrize("node_case", CASES, ids=str)
@pytest.mark.parametrize("opt_level", OPT_LEVELS, ids=[f"O{level}" for level in OPT_LEVELS])
def test_node(node_case: NodeCase, opt_level: int, node_test_dir: Path) -> None:
    case = dataclasses.replace(node_case, directory=node_test_dir / "node" / node_case.name)
    compile_fn = functools.partial(woodpecker.compile, opt_level=opt_level)
    try:
        check_node_case(case, compile_fn, KNOWN_LIMITATIONS, LIMITATION_ERRORS)
    except SkipCase as exc:
        pytest.skip(str(exc))


def test_known_limitations_name_real_tests(node_test_dir: Path) -> None:
    """Every KNOWN_LIMITATIONS key is an existing ONNX node test (catches typos and renames)."""
    tests = load_index(node_test_dir)["tests"]
    unknown = sorted(set(KNOWN_LIMITATIONS) - set(tests))
    assert not unknown, f"KNOWN_LIMITATIONS names tests that onnx does not have: {unknown}"


def test_every_supported_op_is_exercised() -> None:
    """Each supported op appears in at least one selected node test (else the table hides it)."""
    used = set().union(*(c.ops for c in CASES)) if CASES else set()
    missing = sorted(set(SUPPORTED_OPS) - used)
    assert not missing, f"supported ops without any ONNX node test: {missing}"
