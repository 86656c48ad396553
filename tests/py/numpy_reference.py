"""Float64 numpy references of the `wpk` ops, written from the ONNX operator definitions.

Deliberately naive (explicit windows and loops) so that they share no code or
shortcut with the lowering they check.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    groups: int,
) -> np.ndarray:
    """ONNX Conv, NCHW / FCHW; pads = [top, left, bottom, right]."""
    x, w = _f64(x), _f64(w)
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    n, _, h, wd = x.shape
    f, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = strides, dilations
    oh = (h - ((kh - 1) * dh + 1)) // sh + 1
    ow = (wd - ((kw - 1) * dw + 1)) // sw + 1
    fg = f // groups
    out = np.zeros((n, f, oh, ow))
    for g in range(groups):
        xs = x[:, g * cg : (g + 1) * cg]
        ws = w[g * fg : (g + 1) * fg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh : i * dh + (oh - 1) * sh + 1 : sh, j * dw : j * dw + (ow - 1) * sw + 1 : sw]
                out[:, g * fg : (g + 1) * fg] += np.einsum("nchw,fc->nfhw", patch, ws[:, :, i, j])
    if b is not None:
        out += _f64(b)[None, :, None, None]
    return out


def pool_output_size(size: int, kernel: int, stride: int, dilation: int, pad_sum: int, ceil_mode: bool) -> int:
    span = (kernel - 1) * dilation + 1
    if ceil_mode:
        out = int(np.ceil((size + pad_sum - span) / stride)) + 1
    else:
        out = int(np.floor((size + pad_sum - span) / stride)) + 1
    return out


def pool2d(
    x: np.ndarray,
    kind: str,
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    ceil_mode: bool,
    count_include_pad: bool = False,
) -> np.ndarray:
    """ONNX MaxPool (kind='max') / AveragePool (kind='avg'), window by window.

    In ceil_mode a window that would start past the input and the begin pad is dropped; with
    count_include_pad the average counts taps in the explicit pads but not in the ceil overhang.
    """
    x = _f64(x)
    n, c, h, w = x.shape
    pt, pl, pb, pr = pads
    oh = pool_output_size(h, kernel[0], strides[0], dilations[0], pt + pb, ceil_mode)
    ow = pool_output_size(w, kernel[1], strides[1], dilations[1], pl + pr, ceil_mode)
    if ceil_mode and (oh - 1) * strides[0] >= h + pt:
        oh -= 1
    if ceil_mode and (ow - 1) * strides[1] >= w + pl:
        ow -= 1
    out = np.zeros((n, c, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            ys = [oy * strides[0] - pt + i * dilations[0] for i in range(kernel[0])]
            xs = [ox * strides[1] - pl + j * dilations[1] for j in range(kernel[1])]
            inside = [(y, xx) for y in ys for xx in xs if 0 <= y < h and 0 <= xx < w]
            values = np.stack([x[:, :, y, xx] for y, xx in inside], axis=-1)
            if kind == "max":
                out[:, :, oy, ox] = values.max(axis=-1)
                continue
            if count_include_pad:
                count = sum(1 for y in ys for xx in xs if -pt <= y < h + pb and -pl <= xx < w + pr)
            else:
                count = len(inside)
            out[:, :, oy, ox] = values.sum(axis=-1) / count
    return out


def gemm(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray | None,
    alpha: float,
    beta: float,
    trans_a: bool,
    trans_b: bool,
) -> np.ndarray:
    a, b = _f64(a), _f64(b)
    a = a.T if trans_a else a
    b = b.T if trans_b else b
    out = alpha * (a @ b)
    if c is not None:
        out = out + beta * _f64(c)
    return out


def batch_norm(
    x: np.ndarray, scale: np.ndarray, bias: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float
) -> np.ndarray:
    shape = [1, -1] + [1] * (x.ndim - 2)
    s, b, m, v = (_f64(p).reshape(shape) for p in (scale, bias, mean, var))
    return (_f64(x) - m) * s / np.sqrt(v + eps) + b


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-_f64(x)))


def leaky_relu(x: np.ndarray, alpha: float) -> np.ndarray:
    x = _f64(x)
    return np.where(x >= 0, x, alpha * x)


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = _f64(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def reduce_mean(x: np.ndarray, axes: Sequence[int], keepdims: bool) -> np.ndarray:
    return np.mean(_f64(x), axis=tuple(axes), keepdims=keepdims)


def flatten(x: np.ndarray, axis: int) -> np.ndarray:
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    return _f64(x).reshape(outer, -1)


def pad(x: np.ndarray, pads: Sequence[int], mode: str, value: float = 0.0) -> np.ndarray:
    """ONNX Pad: all begins then all ends; negative amounts crop (before padding)."""
    x = _f64(x)
    rank = x.ndim
    begins, ends = pads[:rank], pads[rank:]
    crop = tuple(slice(max(0, -b), x.shape[d] - max(0, -e)) for d, (b, e) in enumerate(zip(begins, ends, strict=True)))
    x = x[crop]
    width = [(max(0, b), max(0, e)) for b, e in zip(begins, ends, strict=True)]
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=value)
    return np.pad(x, width, mode=mode)
