"""Helpers of the ONNX node conformance tests: data generation/caching and case checking."""

from .cases import (
    ATOL,
    FROZEN_INPUTS,
    RTOL,
    TOLERANCE_OVERRIDES,
    CaseResult,
    NodeCase,
    SkipCase,
    check_node_case,
    format_table,
    load_case,
    run_case,
    select_cases,
)
from .data import default_cache_dir, ensure_node_test_data, load_index

__all__ = [
    "ATOL",
    "FROZEN_INPUTS",
    "RTOL",
    "TOLERANCE_OVERRIDES",
    "CaseResult",
    "NodeCase",
    "SkipCase",
    "check_node_case",
    "default_cache_dir",
    "ensure_node_test_data",
    "format_table",
    "load_case",
    "load_index",
    "run_case",
    "select_cases",
]
