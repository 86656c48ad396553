"""Comparing an output with the reference's (ONNX Runtime) without copying either.

The arrays are compared a chunk at a time in float64 (a chunk of CHUNK values: memory stays
bounded however large the output is), with `np.isclose`'s rule |got - ref| <= atol + rtol*|ref|;
NaN in the same place on both sides agrees (equal_nan), NaN on one side only does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK = 1 << 20


@dataclass(frozen=True)
class Agreement:
    """How one output agrees with its reference."""

    shape: tuple[int, ...]
    reference_shape: tuple[int, ...]
    size: int
    max_abs_diff: float  # over the values that are not NaN on both sides (0.0 when none)
    outside: int  # values outside the tolerance, NaN on one side only included
    nan_one_side: int
    nan_both: int
    rtol: float
    atol: float

    @property
    def ok(self) -> bool:
        return self.shape == self.reference_shape and self.outside == 0

    def text(self) -> str:
        """'max abs diff 1.2e-07 (OK at rtol=1e-4, atol=1e-5)' and what disagrees."""
        tolerance = f"rtol={tolerance_text(self.rtol)}, atol={tolerance_text(self.atol)}"
        if self.shape != self.reference_shape:
            return f"shape {self.shape}, the reference's {self.reference_shape} (MISMATCH)"
        notes = []
        if self.outside:
            notes.append(f"{self.outside} of {self.size} values outside")
        if self.nan_one_side:
            notes.append(f"{self.nan_one_side} NaN on one side only")
        if self.nan_both:
            notes.append(f"{self.nan_both} NaN on both sides")
        extra = "; " + ", ".join(notes) if notes else ""
        return f"max abs diff {self.max_abs_diff:.3e} ({'OK' if self.ok else 'MISMATCH'} at {tolerance}{extra})"


def tolerance_text(value: float) -> str:
    """1e-4 -> '1e-4' (not '0.0001')."""
    return np.format_float_scientific(value, trim="-", exp_digits=1)


def compare(got: np.ndarray, ref: np.ndarray, rtol: float, atol: float, chunk: int = CHUNK) -> Agreement:
    """How `got` agrees with `ref` (see the module docstring)."""
    shape, reference_shape = tuple(got.shape), tuple(ref.shape)
    if shape != reference_shape:
        return Agreement(shape, reference_shape, int(got.size), float("nan"), int(got.size), 0, 0, rtol, atol)
    flat_got, flat_ref = got.reshape(-1), ref.reshape(-1)
    worst, outside, nan_one, nan_both = 0.0, 0, 0, 0
    for start in range(0, flat_got.size, chunk):
        g = flat_got[start : start + chunk].astype(np.float64)
        r = flat_ref[start : start + chunk].astype(np.float64)
        g_nan, r_nan = np.isnan(g), np.isnan(r)
        both = g_nan & r_nan
        one = g_nan ^ r_nan
        nan_both += int(both.sum())
        nan_one += int(one.sum())
        outside += int((~np.isclose(g, r, rtol=rtol, atol=atol, equal_nan=True)).sum())
        with np.errstate(invalid="ignore"):
            diff = np.abs(g - r)
        diff[(g == r) | g_nan | r_nan] = 0.0  # equal infinities, and NaN (counted above)
        if diff.size:
            worst = max(worst, float(diff.max()))
    return Agreement(shape, reference_shape, int(got.size), worst, outside, nan_one, nan_both, rtol, atol)
