"""The inputs and output names of a run, checked against the model's (every CPU model, compiled
in memory or loaded from a directory, runs like `onnxruntime.InferenceSession.run`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def wanted_outputs(output_names: Sequence[str] | None, outputs: Sequence[str]) -> list[str]:
    """The outputs asked for (all of them for None); ValueError naming an unknown one."""
    wanted = list(outputs if output_names is None else output_names)
    for name in wanted:
        if name not in outputs:
            raise ValueError(f"unknown output name '{name}'; outputs are {list(outputs)}")
    return wanted


def checked_feeds(
    feeds: Mapping[str, np.ndarray], input_names: Sequence[str], input_shapes: Mapping[str, tuple[int, ...]]
) -> list[np.ndarray]:
    """The inputs in the model's order as C-contiguous float32 arrays; ValueError naming the
    input that is unknown, missing, of another dtype or of another shape."""
    unknown = sorted(set(feeds) - set(input_names))
    if unknown:
        raise ValueError(f"unknown input name '{unknown[0]}'; inputs are {list(input_names)}")
    arrays = []
    for name in input_names:
        if name not in feeds:
            raise ValueError(f"missing input '{name}'; inputs are {list(input_names)}")
        value = np.asarray(feeds[name])
        if value.dtype != np.float32:
            raise ValueError(f"input '{name}' has dtype {value.dtype}; expected float32")
        expected = tuple(input_shapes[name])
        if tuple(value.shape) != expected:
            raise ValueError(f"input '{name}' has shape {tuple(value.shape)}; expected {expected}")
        arrays.append(np.ascontiguousarray(value))
    return arrays
