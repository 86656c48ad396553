"""CPU backend: weight outlining, the bufferize-to-LLVM pipeline and the JIT, on hand-written IR."""

from __future__ import annotations

import numpy as np
import pytest
from mlir import ir

from woodpecker.backend import compile_cpu
from woodpecker.backend.cpu import CpuOptions
from woodpecker.backend.pipelines import cpu_pipeline
from woodpecker.dialect import create_context, create_op, tensor_type, weight_attr
from woodpecker.errors import CompilationError
from woodpecker.graph.outline_weights import outline_weights

MATMUL_BODY = """
  %e = tensor.empty() : tensor<{m}x{n}xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<{m}x{n}xf32>) -> tensor<{m}x{n}xf32>
  %r = linalg.matmul ins(%x, %w : tensor<{m}x{k}xf32>, tensor<{k}x{n}xf32>)
                     outs(%f : tensor<{m}x{n}xf32>) -> tensor<{m}x{n}xf32>
"""


def _matmul_module(m: int, k: int, n: int, weight: np.ndarray) -> ir.Module:
    """func @main(%x) with %w a wpk.weight, built with the Python API so the blob is real."""
    module = ir.Module.parse(
        f"func.func @main(%x: tensor<{m}x{k}xf32>, %w: tensor<{k}x{n}xf32>) -> tensor<{m}x{n}xf32> {{"
        + MATMUL_BODY.format(m=m, k=k, n=n)
        + f"  return %r : tensor<{m}x{n}xf32>\n}}"
    )
    # Replace the second argument by a wpk.weight op, as the importer would produce.
    fn = module.body.operations[0]
    block = fn.regions[0].blocks[0]
    with ir.InsertionPoint.at_block_begin(block):
        op = create_op("weight", [], [tensor_type([k, n])], {"value": weight_attr(weight, "w")})
    block.arguments[1].replace_all_uses_with(op.results[0])
    block.erase_argument(1)
    fn.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get([tensor_type([m, k])], [tensor_type([m, n])]))
    return module


@pytest.mark.parametrize("parallel", [True, False])
def test_matmul_with_outlined_weight_matches_numpy(parallel: bool) -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((48, 40)).astype(np.float32)
    x = rng.standard_normal((24, 48)).astype(np.float32)
    with create_context(), ir.Location.unknown():
        module = _matmul_module(24, 48, 40, w)
        outlined = outline_weights(module)
        assert [o.arg_index for o in outlined] == [1]
        assert "wpk.weight" not in str(module)
        exe = compile_cpu(module, CpuOptions(parallel=parallel))
    exe.bind_weights([w])
    (out,) = exe([x])
    np.testing.assert_allclose(out, x.astype(np.float64) @ w, rtol=1e-4, atol=1e-4)
    # A second call reuses the executable and gets a fresh output array.
    (again,) = exe([x])
    assert again is not out
    np.testing.assert_array_equal(again, out)


def test_outline_weights_shares_one_argument_per_resource() -> None:
    w = np.ones((4, 4), np.float32)
    with create_context(), ir.Location.unknown():
        module = _matmul_module(4, 4, 4, w)
        fn = module.body.operations[0]
        block = fn.regions[0].blocks[0]
        first = next(iter(block.operations))
        with ir.InsertionPoint(first):
            create_op("weight", [], [tensor_type([4, 4])], {"value": first.attributes["value"]})
        outlined = outline_weights(module)
        assert len(outlined) == 1
        assert len(block.arguments) == 2


def test_pipeline_text_parallel_and_serial() -> None:
    assert "convert-scf-to-openmp" in cpu_pipeline(True)
    assert "convert-openmp-to-llvm" in cpu_pipeline(True)
    assert "openmp" not in cpu_pipeline(False)
    assert cpu_pipeline(False).index("expand-strided-metadata") < cpu_pipeline(False).index("lower-affine")


def test_backend_rejects_unlowered_ops_with_compilation_error() -> None:
    with create_context(), ir.Location.unknown():
        module = ir.Module.parse(
            "func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {\n"
            '  %0 = "wpk.relu"(%x) : (tensor<2xf32>) -> tensor<2xf32>\n'
            "  return %0 : tensor<2xf32>\n}"
        )
        with pytest.raises(CompilationError, match="failed"):
            compile_cpu(module)
