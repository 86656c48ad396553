"""Recognizing the blocked (NCHW[x]c) convolutions among generic linalg ops, by their indexing maps.

lowering/blocked_conv.py builds them as plain `linalg.generic` ops (no tag survives into the
lowered IR); a generic is one when its filter and output maps are exactly those forms and its
input map reads (n, input block, window, window, lane) of them:

    blocked_conv            (n, oc, oh, ow, ob, ic, kh, kw, ib)      w (oc, ic, kh, kw, ib, ob)
    grouped blocked_conv    (n, g, oc, oh, ow, ob, ic, kh, kw, ib)   w (g, oc, ic, kh, kw, ib, ob)
    blocked_depthwise_conv  (n, cb, oh, ow, c, kh, kw)               w (cb, kh, kw, c)
"""

from __future__ import annotations

from collections.abc import Sequence

from mlir import ir

# kind -> (loop count, filter dims, output dims, input dims at (batch, block, lane), reduction dims)
_FORMS: dict[str, tuple[int, tuple[int, ...], tuple[int, ...], tuple[int, int, int], tuple[int, ...]]] = {
    "blocked_conv": (9, (1, 5, 6, 7, 8, 4), (0, 1, 2, 3, 4), (0, 5, 8), (5, 6, 7, 8)),
    "blocked_conv_grouped": (10, (1, 2, 6, 7, 8, 9, 5), (0, 1, 2, 3, 4, 5), (0, 6, 9), (6, 7, 8, 9)),
    "blocked_depthwise_conv": (7, (1, 5, 6, 4), (0, 1, 2, 3, 4), (0, 1, 4), (5, 6)),
}


def _dims(amap: ir.AffineMap) -> list[int | None]:
    return [ir.AffineDimExpr(e).position if isinstance(e, ir.AffineDimExpr) else None for e in amap.results]


def blocked_conv_kind(maps: Sequence[ir.AffineMap], parallel: Sequence[bool]) -> str | None:
    """'blocked_conv', 'blocked_depthwise_conv' or None for a generic with these maps and iterators."""
    if len(maps) != 3:
        return None
    for name, (loops, filter_dims, out_dims, input_dims, reductions) in _FORMS.items():
        if len(parallel) != loops or any(parallel[d] == (d in reductions) for d in range(loops)):
            continue
        if _dims(maps[1]) != list(filter_dims) or _dims(maps[2]) != list(out_dims):
            continue
        x = _dims(maps[0])
        grouped = name == "blocked_conv_grouped"
        batch, block, lane = (0, 2, len(x) - 1) if grouped else (0, 1, len(x) - 1)
        if len(x) != len(out_dims) or [x[batch], x[block], x[lane]] != list(input_dims):
            continue
        if grouped and x[1] != 1:
            continue
        return "blocked_conv" if grouped else name
    return None
