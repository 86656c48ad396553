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
  2. `woodpecker.compile` raises UnsupportedOperatorError, ShapeError or ModelLoadError (an opset outside
     the supported range) and the test is in KNOWN_LIMITATIONS.
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
from woodpecker.errors import ModelLoadError, ShapeError, UnsupportedOperatorError
from woodpecker.importer import SUPPORTED_OPS

_POOL_3D = "3-D pooling (wpk pooling ops are 2-D, NCHW)"
_TRAINING_DROPOUT = "training-mode Dropout (random mask; Woodpecker compiles inference graphs)"
_CONV_1D = "1-D Conv (wpk conv2d is 2-D, NCHW)"
_SCATTER_REDUCTION = "ScatterND with a reduction (add/mul/max/min); only reduction none is converted"
_RUNTIME_RANGE = "Range with a run-time limit (the window size is a graph input: Range folds at import only)"
_RUNTIME_CROP_SHAPE = (
    "CenterCropPad with the crop shape a graph input: the pads and slices are int64 data at run time "
    "(Concat, Pad and Slice take them as constants; the output shape depends on the input's value)"
)
_EMPTY = "empty (zero-sized) tensors are not compiled"
_RESIZE_CUBIC = "Resize mode cubic (wpk.resize interpolates nearest and linear)"
_RESIZE_ANTIALIAS = "Resize antialias=1 (wpk.resize does not filter when downsampling)"
_RESIZE_CROP = "Resize coordinate_transformation_mode tf_crop_and_resize (roi and extrapolation)"
_EMPTY = "empty (zero-sized) tensors are not compiled"
_REDUCE_EMPTY_SET = ("l1", "l2", "log_sum", "log_sum_exp", "max", "min", "prod", "sum", "sum_square")
_LAYERNORM_STATS = "LayerNormalization outputs Mean/InvStdDev are used (only output Y is produced)"
_LAYERNORM_CASES = (
    "2d_axis0", "2d_axis1", "2d_axis_negative_1", "2d_axis_negative_2",
    "3d_axis0_epsilon", "3d_axis1_epsilon", "3d_axis2_epsilon",
    "3d_axis_negative_1_epsilon", "3d_axis_negative_2_epsilon", "3d_axis_negative_3_epsilon",
    "4d_axis0", "4d_axis1", "4d_axis2", "4d_axis3",
    "4d_axis_negative_1", "4d_axis_negative_2", "4d_axis_negative_3", "4d_axis_negative_4",
    "default_axis",
)  # fmt: skip

# Documented limitations: test name -> reason. A test listed here is skipped only if
# woodpecker.compile raises LIMITATION_ERRORS for it; if it compiles, it runs and must pass.
KNOWN_LIMITATIONS: dict[str, str] = {
    "test_scatternd_add": _SCATTER_REDUCTION,
    "test_scatternd_multiply": _SCATTER_REDUCTION,
    "test_scatternd_max": _SCATTER_REDUCTION,
    "test_scatternd_min": _SCATTER_REDUCTION,
    "test_scatternd_max_with_element_indices": _SCATTER_REDUCTION,
    "test_scatternd_min_with_element_indices": _SCATTER_REDUCTION,
    "test_blackmanwindow_expanded": _RUNTIME_RANGE,
    "test_blackmanwindow_symmetric_expanded": _RUNTIME_RANGE,
    "test_hammingwindow_expanded": _RUNTIME_RANGE,
    "test_hammingwindow_symmetric_expanded": _RUNTIME_RANGE,
    "test_hannwindow_expanded": _RUNTIME_RANGE,
    "test_hannwindow_symmetric_expanded": _RUNTIME_RANGE,
    "test_center_crop_pad_crop_and_pad_expanded": _RUNTIME_CROP_SHAPE,
    "test_center_crop_pad_crop_axes_chw_expanded": _RUNTIME_CROP_SHAPE,
    "test_center_crop_pad_crop_axes_hwc_expanded": _RUNTIME_CROP_SHAPE,
    "test_center_crop_pad_crop_expanded": _RUNTIME_CROP_SHAPE,
    "test_center_crop_pad_crop_negative_axes_hwc_expanded": _RUNTIME_CROP_SHAPE,
    "test_center_crop_pad_pad_expanded": _RUNTIME_CROP_SHAPE,
    "test_rotary_embedding_3d_input_expanded": _EMPTY,
    "test_rotary_embedding_expanded": _EMPTY,
    "test_rotary_embedding_interleaved_expanded": _EMPTY,
    "test_rotary_embedding_no_position_ids_expanded": _EMPTY,
    "test_rotary_embedding_no_position_ids_interleaved_expanded": _EMPTY,
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
    "test_causal_conv_with_state_decode_step_expanded": _CONV_1D,
    "test_causal_conv_with_state_with_bias_and_past_state_expanded": _CONV_1D,
    "test_causal_conv_with_state_with_past_state_expanded": _CONV_1D,
    "test_slice_start_out_of_bounds": _EMPTY,
    "test_tril_zero": _EMPTY,
    "test_triu_zero": _EMPTY,
    "test_split_zero_size_splits_opset13": _EMPTY,
    "test_split_zero_size_splits_opset18": _EMPTY,
    "test_resize_downsample_scales_cubic": _RESIZE_CUBIC,
    "test_resize_downsample_scales_cubic_A_n0p5_exclude_outside": _RESIZE_CUBIC,
    "test_resize_downsample_scales_cubic_align_corners": _RESIZE_CUBIC,
    "test_resize_downsample_scales_cubic_antialias": _RESIZE_CUBIC,
    "test_resize_downsample_sizes_cubic": _RESIZE_CUBIC,
    "test_resize_downsample_sizes_cubic_antialias": _RESIZE_CUBIC,
    "test_resize_upsample_scales_cubic": _RESIZE_CUBIC,
    "test_resize_upsample_scales_cubic_A_n0p5_exclude_outside": _RESIZE_CUBIC,
    "test_resize_upsample_scales_cubic_align_corners": _RESIZE_CUBIC,
    "test_resize_upsample_scales_cubic_asymmetric": _RESIZE_CUBIC,
    "test_resize_upsample_sizes_cubic": _RESIZE_CUBIC,
    "test_resize_downsample_scales_linear_antialias": _RESIZE_ANTIALIAS,
    "test_resize_downsample_sizes_linear_antialias": _RESIZE_ANTIALIAS,
    "test_resize_tf_crop_and_resize": _RESIZE_CROP,
    "test_resize_tf_crop_and_resize_axes_2_3": _RESIZE_CROP,
    "test_resize_tf_crop_and_resize_axes_3_2": _RESIZE_CROP,
    "test_resize_tf_crop_and_resize_extrapolation_value": _RESIZE_CROP,
    **{f"test_reduce_{kind}_empty_set": _EMPTY for kind in _REDUCE_EMPTY_SET},
    "test_reduce_sum_empty_set_non_reduced_axis_zero": _EMPTY,
    "test_reduce_sum_square_empty_set_expanded": _EMPTY,
    "test_reduce_l1_empty_set_expanded": _EMPTY,  # selected once Abs is supported (wt-ew)
    "test_reduce_log_sum_empty_set_expanded": _EMPTY,  # selected once Log is supported (wt-ew)
    # These graphs also output Mean and InvStdDev (training outputs, not produced at inference);
    # tests/py/test_normalization.py runs the same data for output Y.
    **{f"test_layer_normalization_{case}": _LAYERNORM_STATS for case in _LAYERNORM_CASES},
    "test_convtranspose_3d": "3-D ConvTranspose (wpk.conv_transpose2d is 2-D; 1-D is imported with H = 1)",
}
LIMITATION_ERRORS = (UnsupportedOperatorError, ShapeError, ModelLoadError)

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
