"""CPU parallel tiling: which ops are split across cores, what is fused into them, and numerics."""

from __future__ import annotations

import numpy as np
import pytest
from mlir import ir

from woodpecker.backend import compile_cpu
from woodpecker.backend.cpu import CpuOptions
from woodpecker.backend.parallelize import ParallelOptions, parallelize

CONV_BIAS_RELU = """
#id = affine_map<(a, b, c, d) -> (a, b, c, d)>
#ch = affine_map<(a, b, c, d) -> (b)>
func.func @main(%x: tensor<1x8x{hp}x{hp}xf32>, %w: tensor<{f}x8x3x3xf32>, %b: tensor<{f}xf32>)
    -> tensor<1x{f}x{h}x{h}xf32> {{
  %e = tensor.empty() : tensor<1x{f}x{h}x{h}xf32>
  %z = arith.constant 0.0 : f32
  %fill = linalg.fill ins(%z : f32) outs(%e : tensor<1x{f}x{h}x{h}xf32>) -> tensor<1x{f}x{h}x{h}xf32>
  %conv = linalg.conv_2d_nchw_fchw ins(%x, %w : tensor<1x8x{hp}x{hp}xf32>, tensor<{f}x8x3x3xf32>)
      outs(%fill : tensor<1x{f}x{h}x{h}xf32>) -> tensor<1x{f}x{h}x{h}xf32>
  %e2 = tensor.empty() : tensor<1x{f}x{h}x{h}xf32>
  %r = linalg.generic {{indexing_maps = [#id, #ch, #id],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel"]}}
      ins(%conv, %b : tensor<1x{f}x{h}x{h}xf32>, tensor<{f}xf32>) outs(%e2 : tensor<1x{f}x{h}x{h}xf32>) {{
  ^bb0(%in: f32, %bias: f32, %out: f32):
    %s = arith.addf %in, %bias : f32
    %m = arith.maximumf %s, %z : f32
    linalg.yield %m : f32
  }} -> tensor<1x{f}x{h}x{h}xf32>
  return %r : tensor<1x{f}x{h}x{h}xf32>
}}
"""

ROW_SUM = """
func.func @main(%x: tensor<512x256xf32>) -> tensor<512xf32> {
  %e = tensor.empty() : tensor<512xf32>
  %z = arith.constant 0.0 : f32
  %fill = linalg.fill ins(%z : f32) outs(%e : tensor<512xf32>) -> tensor<512xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (j, i)>, affine_map<(i, j) -> (j)>],
                       iterator_types = ["reduction", "parallel"]}
      ins(%x : tensor<512x256xf32>) outs(%fill : tensor<512xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %in, %acc : f32
    linalg.yield %s : f32
  } -> tensor<512xf32>
  return %r : tensor<512xf32>
}
"""


def _conv_module(f: int, h: int) -> ir.Module:
    return ir.Module.parse(CONV_BIAS_RELU.format(f=f, h=h, hp=h + 2))


def test_epilogue_is_split_and_conv_and_fill_are_fused_into_it() -> None:
    with ir.Context(), ir.Location.unknown():
        module = _conv_module(16, 32)
        assert parallelize(module, ParallelOptions(threads=2)) == 1
        text = str(module)
    forall = text[text.index("scf.forall") :]
    assert "in (2)" in forall.splitlines()[0]
    # Inside each thread's chunk, one loop walks the output channels; the fill, the conv
    # (7 loops) and the epilogue of one channel are all computed in its body.
    loop = forall[forall.index("scf.for %") : forall.index("scf.forall.in_parallel")]
    assert loop.count("linalg.generic") == 3
    assert '"reduction", "reduction", "reduction"' in loop
    assert loop.count("tensor<1x1x32x32xf32>") >= 3


def test_small_ops_stay_serial() -> None:
    with ir.Context(), ir.Location.unknown():
        module = _conv_module(2, 4)
        assert parallelize(module, ParallelOptions(threads=2)) == 0
        assert "scf.forall" not in str(module)


def test_reduction_loops_are_never_split() -> None:
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(ROW_SUM)
        assert parallelize(module, ParallelOptions(threads=2, min_iterations=1)) == 1
        text = str(module)
    # Loop 0 is the reduction: the split must be along loop 1 (tile sizes [0, 256]).
    assert "tensor<256x256xf32>" in text and "scf.forall" in text


@pytest.mark.parametrize("threads", [2, 3])
def test_parallel_code_matches_serial_code(threads: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 8, 34, 34)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    results = []
    for options in (CpuOptions(parallel=False), CpuOptions(parallel=True, threads=threads)):
        with ir.Context(), ir.Location.unknown():
            exe = compile_cpu(_conv_module(16, 32), options)
        results.append(exe([x, w, b])[0])
    window = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), (3, 3), axis=(2, 3))
    expected = np.maximum(np.einsum("nchwij,kcij->nkhw", window, w.astype(np.float64)) + b[None, :, None, None], 0)
    np.testing.assert_allclose(results[0], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(results[1], expected, rtol=1e-4, atol=1e-4)
