"""GPU code generation (compile only): PTX per kernel kind and config, ptxas, config
validation, the whole tiny ResNet, and CPU runs of the GPU schedules against numpy."""

from __future__ import annotations

import math
import re
import time

import numpy as np
import onnx
import pytest
from mlir import ir

from woodpecker.backend import compile_cpu
from woodpecker.backend.cpu import CpuOptions
from woodpecker.gpu import BufferRef, GpuConfig, GpuKernel, GpuProgram, KernelProblem, compile_gpu
from woodpecker.gpu.config import OperandAccess, default_config
from woodpecker.gpu.emulate import run_on_cpu
from woodpecker.gpu.prepare import clone_module
from woodpecker.gpu.ptxas import find_ptxas, parse_resources
from woodpecker.graph.outline_weights import outline_weights
from woodpecker.importer import import_onnx_with_weights
from woodpecker.lowering import lower_to_linalg
from woodpecker.models.builders import small_mlp, tiny_resnet

ARCHS = ("sm_80", "sm_90")
HAVE_PTXAS = find_ptxas() is not None

MATMUL = """
func.func @main(%a: tensor<64x32xf32>, %b: tensor<32x48xf32>) -> tensor<64x48xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64x48xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<64x48xf32>) -> tensor<64x48xf32>
  %m = linalg.matmul ins(%a, %b : tensor<64x32xf32>, tensor<32x48xf32>)
                     outs(%f : tensor<64x48xf32>) -> tensor<64x48xf32>
  return %m : tensor<64x48xf32>
}
"""

BATCH_MATMUL = """
func.func @main(%a: tensor<4x16x8xf32>, %b: tensor<4x8x12xf32>) -> tensor<4x16x12xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16x12xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16x12xf32>) -> tensor<4x16x12xf32>
  %m = linalg.batch_matmul ins(%a, %b : tensor<4x16x8xf32>, tensor<4x8x12xf32>)
                           outs(%f : tensor<4x16x12xf32>) -> tensor<4x16x12xf32>
  return %m : tensor<4x16x12xf32>
}
"""

CONV3X3 = """
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#ch = affine_map<(d0, d1, d2, d3) -> (d1)>
func.func @main(%x: tensor<1x8x16x16xf32>, %w: tensor<16x8x3x3xf32>, %bias: tensor<16xf32>) -> tensor<1x16x16x16xf32> {
  %zero = arith.constant 0.0 : f32
  %p = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %zero : f32
  } : tensor<1x8x16x16xf32> to tensor<1x8x18x18xf32>
  %e = tensor.empty() : tensor<1x16x16x16xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x16x16x16xf32>) -> tensor<1x16x16x16xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%p, %w : tensor<1x8x18x18xf32>, tensor<16x8x3x3xf32>)
      outs(%f : tensor<1x16x16x16xf32>) -> tensor<1x16x16x16xf32>
  %r = linalg.generic {indexing_maps = [#id, #ch, #id],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%c, %bias : tensor<1x16x16x16xf32>, tensor<16xf32>) outs(%e : tensor<1x16x16x16xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.addf %a, %b : f32
    %t = arith.maximumf %s, %zero : f32
    linalg.yield %t : f32
  } -> tensor<1x16x16x16xf32>
  return %r : tensor<1x16x16x16xf32>
}
"""

CONV1X1_STRIDED = """
func.func @main(%x: tensor<2x8x16x16xf32>, %w: tensor<16x8x1x1xf32>) -> tensor<2x16x8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x16x8x8xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<2x16x8x8xf32>) -> tensor<2x16x8x8xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
      ins(%x, %w : tensor<2x8x16x16xf32>, tensor<16x8x1x1xf32>) outs(%f : tensor<2x16x8x8xf32>) -> tensor<2x16x8x8xf32>
  return %c : tensor<2x16x8x8xf32>
}
"""

DEPTHWISE = """
func.func @main(%x: tensor<1x8x10x10xf32>, %w: tensor<8x3x3xf32>) -> tensor<1x8x8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x8x8x8xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  %c = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %w : tensor<1x8x10x10xf32>, tensor<8x3x3xf32>) outs(%f : tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  return %c : tensor<1x8x8x8xf32>
}
"""

MAX_POOL = """
func.func @main(%x: tensor<1x8x16x16xf32>) -> tensor<1x8x8x8xf32> {
  %ninf = arith.constant 0xFF800000 : f32
  %window = tensor.empty() : tensor<2x2xf32>
  %e = tensor.empty() : tensor<1x8x8x8xf32>
  %f = linalg.fill ins(%ninf : f32) outs(%e : tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  %c = linalg.pooling_nchw_max {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
      ins(%x, %window : tensor<1x8x16x16xf32>, tensor<2x2xf32>) outs(%f : tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  return %c : tensor<1x8x8x8xf32>
}
"""

ELEMENTWISE = """
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#row = affine_map<(d0, d1, d2) -> (d2)>
func.func @main(%x: tensor<4x16x32xf32>, %y: tensor<32xf32>) -> tensor<4x16x32xf32> {
  %e = tensor.empty() : tensor<4x16x32xf32>
  %r = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x, %y : tensor<4x16x32xf32>, tensor<32xf32>) outs(%e : tensor<4x16x32xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.mulf %a, %b : f32
    %t = math.tanh %s : f32
    linalg.yield %t : f32
  } -> tensor<4x16x32xf32>
  return %r : tensor<4x16x32xf32>
}
"""

REDUCTION = """
#id = affine_map<(d0, d1) -> (d0, d1)>
#rows = affine_map<(d0, d1) -> (d0)>
func.func @main(%x: tensor<64x100xf32>) -> tensor<64xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<64xf32>) -> tensor<64xf32>
  %r = linalg.generic {indexing_maps = [#id, #rows], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<64x100xf32>) outs(%f : tensor<64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.addf %a, %o : f32
    linalg.yield %s : f32
  } -> tensor<64xf32>
  return %r : tensor<64xf32>
}
"""

FILL = """
func.func @main(%x: tensor<8xf32>) -> tensor<32x64xf32> {
  %c = arith.constant 1.5 : f32
  %e = tensor.empty() : tensor<32x64xf32>
  %f = linalg.fill ins(%c : f32) outs(%e : tensor<32x64xf32>) -> tensor<32x64xf32>
  return %f : tensor<32x64xf32>
}
"""

# name -> (module, expected kernel kinds in order)
CASES = {
    "matmul": (MATMUL, ["matmul"]),
    "batch_matmul": (BATCH_MATMUL, ["batch_matmul"]),
    "conv3x3": (CONV3X3, ["gather", "conv"]),
    "conv1x1_strided": (CONV1X1_STRIDED, ["conv"]),
    "depthwise": (DEPTHWISE, ["depthwise_conv"]),
    "max_pool": (MAX_POOL, ["pool"]),
    "elementwise": (ELEMENTWISE, ["elementwise"]),
    "reduction": (REDUCTION, ["reduction"]),
    "fill": (FILL, ["fill"]),
}

# name -> [(config for the case's main kind, expected grid, expected block)]
CONFIGS = {
    "matmul": [
        (GpuConfig((32, 16), (4, 2)), (3, 2, 1), (8, 8, 1)),
        (GpuConfig((16, 48), (2, 4), (8,), promote_shared=True), (4, 1, 1), (12, 8, 1)),
    ],
    "batch_matmul": [(GpuConfig((1, 8, 12), (1, 2, 3)), (2, 4, 1), (4, 4, 1))],
    "conv3x3": [
        (GpuConfig((1, 8, 8, 16), (1, 2, 1, 1), (4,), promote_shared=True), (2, 2, 1), (16, 8, 4)),
        (GpuConfig((1, 16, 4, 8), (1, 4, 2, 2), (2, 3, 1), promote_shared=True, vector_width=2), (2, 4, 1), (4, 2, 4)),
        (GpuConfig((1, 4, 16, 16), (1, 1, 2, 4)), (4, 1, 1), (4, 8, 4)),
    ],
    "conv1x1_strided": [(GpuConfig((1, 8, 4, 8), (1, 2, 1, 1), (4,), promote_shared=True), (2, 2, 2), (8, 4, 4))],
    "depthwise": [(GpuConfig((1, 4, 8, 8), (1, 1, 2, 2), promote_shared=True), (2, 1, 1), (4, 4, 4))],
    "max_pool": [(GpuConfig((1, 2, 4, 8), (1, 1, 1, 2)), (2, 4, 1), (4, 4, 2))],
    "elementwise": [(GpuConfig((2, 4, 32), (1, 1, 4), vector_width=4), (4, 2, 1), (8, 4, 2))],
    "reduction": [(GpuConfig((16,), (2,), (25,)), (4, 1, 1), (8, 1, 1))],
    "fill": [(GpuConfig((8, 64), (1, 2)), (4, 1, 1), (32, 8, 1))],
}


def compile_text(text: str, arch: str = "sm_90", configs=None, **kwargs) -> GpuProgram:
    with ir.Context(), ir.Location.unknown():
        return compile_gpu(ir.Module.parse(text), arch, configs, **kwargs)


def check_ptx(kernel: GpuKernel, arch: str) -> None:
    """PTX has the entry, the target, one `.u64 .ptr` parameter per argument and the block size."""
    ptx = kernel.ptx
    assert f".target {arch}\n" in ptx
    assert re.search(rf"\.visible \.entry {kernel.name}\(", ptx)
    params = re.findall(r"\.param (.+?) (\w+)_param_(\d+)", ptx)
    assert [p[0] for p in params] == [".u64 .ptr .align 1"] * len(kernel.args)
    assert {p[1] for p in params} == {kernel.name}
    maxntid = re.search(r"\.maxntid (\d+), (\d+), (\d+)", ptx)
    assert maxntid is not None and tuple(map(int, maxntid.groups())) == kernel.block
    assert ("__dynamic_shmem__" in ptx) == (kernel.shared_bytes > 0)
    assert [a.access for a in kernel.args].count("write") == 1
    assert "ret;" in ptx


def check_assembled(kernel: GpuKernel) -> None:
    if not HAVE_PTXAS:
        assert kernel.cubin is None and kernel.resources is None
        return
    assert kernel.cubin is not None and kernel.cubin[:4] == b"\x7fELF"
    assert kernel.resources is not None and kernel.resources.registers > 0
    assert kernel.resources.spill_stores == 0 and kernel.resources.static_shared == 0


# -- every kind, both archs --------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_default_config_ptx(case: str, arch: str) -> None:
    text, kinds = CASES[case]
    program = compile_text(text, arch)
    assert program.arch == arch
    assert [k.kind for k in program.kernels] == kinds
    for kernel in program.kernels:
        check_ptx(kernel, arch)
        check_assembled(kernel)
        assert kernel.config.notes == "default"
        grid = kernel.config.launch_shape(kernel.problem, arch).grid
        assert kernel.grid == grid


@pytest.mark.parametrize(("case", "index"), [(case, i) for case in sorted(CONFIGS) for i in range(len(CONFIGS[case]))])
def test_explicit_config_ptx(case: str, index: int) -> None:
    text, kinds = CASES[case]
    config, grid, block = CONFIGS[case][index]
    program = compile_text(text, "sm_90", {kinds[-1]: config})
    kernel = program.kernels[-1]
    assert kernel.config == config
    assert (kernel.grid, kernel.block) == (grid, block)
    check_ptx(kernel, "sm_90")
    check_assembled(kernel)
    expected_shared = config.launch_shape(kernel.problem, "sm_90").shared_bytes
    assert kernel.shared_bytes == expected_shared
    assert (kernel.shared_bytes > 0) == config.promote_shared
    if config.promote_shared:
        assert kernel.ptx.count("bar.sync") >= 2
        assert "st.shared" in kernel.ptx and "ld.shared" in kernel.ptx


def test_kernel_config_by_name_beats_kind() -> None:
    by_kind = GpuConfig((32, 16), (4, 2))
    by_name = GpuConfig((16, 16), (2, 2))
    program = compile_text(MATMUL, configs={"matmul": by_kind, "k0_matmul": by_name}, assemble=False)
    assert program.kernels[0].config == by_name
    assert program.kernels[0].block == (8, 8, 1)


def test_promoted_matmul_ptx_sm90() -> None:
    config = GpuConfig((32, 16), (4, 2), (8,), promote_shared=True, vector_width=2)
    (kernel,) = compile_text(MATMUL, "sm_90", {"matmul": config}).kernels
    # A tile 32x8 + B tile 8x16, f32.
    assert kernel.shared_bytes == (32 * 8 + 8 * 16) * 4
    assert ".extern .shared .align 16 .b8 __dynamic_shmem__0[];" in kernel.ptx
    assert "fma.rn.f32" in kernel.ptx
    assert "ld.global.nc" in kernel.ptx  # read-only inputs: parameters are noalias


@pytest.mark.skipif(not HAVE_PTXAS, reason="ptxas is not installed")
def test_cubin_through_mlir_gpu_module_to_binary() -> None:
    program = compile_text(CONV3X3, "sm_90", assembler="mlir")
    for kernel in program.kernels:
        assert kernel.cubin is not None and kernel.cubin[:4] == b"\x7fELF"
        assert kernel.resources is not None


DENSE_CONSTANT = """
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %c = arith.constant dense<[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]> : tensor<2x4xf32>
  %e = tensor.empty() : tensor<2x4xf32>
  %r = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x, %c : tensor<2x4xf32>, tensor<2x4xf32>) outs(%e : tensor<2x4xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.divf %a, %b : f32
    linalg.yield %s : f32
  } -> tensor<2x4xf32>
  return %r : tensor<2x4xf32>
}
"""


def test_dense_constants_live_in_the_kernel_ptx() -> None:
    (kernel,) = compile_text(DENSE_CONSTANT, assemble=False).kernels
    assert [str(a.buffer) for a in kernel.args] == ["input[0]", "output[0]"]
    assert re.search(r"\.global \.align \d+ \.b8 __constant_2x4xf32\[32\] = \{0, 0, 128, 63,", kernel.ptx)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    got = _run(DENSE_CONSTANT, [x], None)
    np.testing.assert_allclose(got, x / np.arange(1, 9, dtype=np.float32).reshape(2, 4), rtol=1e-6)


def test_input_module_is_not_modified() -> None:
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(CONV3X3)
        before = str(module)
        compile_gpu(module, "sm_90", assemble=False)
        assert str(module) == before


def test_parse_ptxas_report() -> None:
    log = (
        "ptxas info    : 0 bytes gmem\n"
        "ptxas info    : Compiling entry function 'k1_conv_kernel' for 'sm_90'\n"
        "ptxas info    : Function properties for k1_conv_kernel\n"
        "    16 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads\n"
        "ptxas info    : Used 40 registers, used 1 barriers, 12 bytes smem, 368 bytes cmem[0]\n"
    )
    r = parse_resources(log, "k1_conv_kernel")
    assert (r.registers, r.spill_stores, r.spill_loads, r.stack_frame) == (40, 8, 4, 16)
    assert (r.static_shared, r.constant, r.barriers) == (12, 368, 1)


# -- validation --------------------------------------------------------------------------------

MATMUL_PROBLEM = KernelProblem(
    kind="matmul",
    output_shape=(64, 48),
    loop_extents=(64, 48, 32),
    output_loops=(0, 1),
    reduction_loops=(2,),
    operands=(
        OperandAccess((64, 32), (((0, 1),), ((2, 1),)), True, 0),
        OperandAccess((32, 48), (((2, 1),), ((1, 1),)), True, 1),
    ),
)
BIG_MATMUL_PROBLEM = KernelProblem(
    kind="matmul",
    output_shape=(256, 256),
    loop_extents=(256, 256, 256),
    output_loops=(0, 1),
    reduction_loops=(2,),
    operands=(
        OperandAccess((256, 256), (((0, 1),), ((2, 1),)), True, 0),
        OperandAccess((256, 256), (((2, 1),), ((1, 1),)), True, 1),
    ),
)
CONV_PROBLEM = KernelProblem(
    kind="conv",
    output_shape=(2, 16, 8, 8),
    loop_extents=(2, 16, 8, 8, 8, 1, 1),
    output_loops=(0, 1, 2, 3),
    reduction_loops=(4, 5, 6),
)
ELEMENTWISE_PROBLEM = KernelProblem(kind="elementwise", output_shape=(4, 16, 32), loop_extents=(4, 16, 32))


@pytest.mark.parametrize(
    ("config", "problem", "arch", "knob", "reason"),
    [
        (GpuConfig((32, 16), (3, 2)), MATMUL_PROBLEM, "sm_90", "thread_tile", "does not divide"),
        (GpuConfig((64, 48), (1, 1)), MATMUL_PROBLEM, "sm_90", "thread_tile", "3072 threads per block"),
        (GpuConfig((1, 1, 1, 1), (1, 1, 1, 1)), CONV_PROBLEM, "sm_90", "block_tile", "at most 3"),
        (GpuConfig((1, 16, 8, 8), (1, 16, 8, 8), (2, 1, 1, 1)), CONV_PROBLEM, "sm_90", "reduction_tile", "4 entries"),
        (GpuConfig((24, 16), (4, 4), (8,), True), MATMUL_PROBLEM, "sm_90", "block_tile", "must divide"),
        (GpuConfig((32, 16), (4, 4), (5,), True), MATMUL_PROBLEM, "sm_90", "reduction_tile", "must divide"),
        (GpuConfig((128, 128), (8, 8), (64,), True), BIG_MATMUL_PROBLEM, "sm_90", "promote_shared", "shared_opt_in"),
        (
            GpuConfig((128, 128), (8, 8), (256,), True, shared_opt_in=True),
            BIG_MATMUL_PROBLEM,
            "sm_90",
            "promote_shared",
            "262144 bytes",
        ),
        (
            GpuConfig((128, 256), (8, 16), (128,), True, shared_opt_in=True),
            BIG_MATMUL_PROBLEM,
            "sm_80",
            "promote_shared",
            "166912 bytes",
        ),
        (GpuConfig((2, 4, 32), (1, 1, 2), vector_width=4), ELEMENTWISE_PROBLEM, "sm_90", "vector_width", "divide"),
        (GpuConfig((2, 4, 32), (1, 1, 4), vector_width=3), ELEMENTWISE_PROBLEM, "sm_90", "vector_width", "one of"),
        (GpuConfig((2, 4, 32), (1, 1, 1), promote_shared=True), ELEMENTWISE_PROBLEM, "sm_90", "promote_shared", ""),
        (GpuConfig((1, 2, 4, 32), (1, 1, 1, 1)), ELEMENTWISE_PROBLEM, "sm_90", "block_tile", "rank 3"),
        (GpuConfig((-1, 4, 32), (1, 1, 1)), ELEMENTWISE_PROBLEM, "sm_90", "block_tile", "non-negative"),
        (GpuConfig((1, 4, 32), (1, 1, 1)), ELEMENTWISE_PROBLEM, "sm_70", "", "unsupported GPU architecture"),
    ],
)
def test_invalid_configs_name_the_knob(config: GpuConfig, problem: KernelProblem, arch: str, knob: str, reason: str):
    with pytest.raises(ValueError, match=re.escape(f"GpuConfig.{knob}") if knob else re.escape(reason)) as err:
        config.validate(problem, arch)
    assert reason in str(err.value)


def test_shared_opt_in_allows_more_than_48k_on_sm90() -> None:
    config = GpuConfig((128, 128), (8, 8), (64,), True, shared_opt_in=True)
    shape = config.launch_shape(BIG_MATMUL_PROBLEM, "sm_90")
    assert shape.shared_bytes == (128 * 64 + 64 * 128) * 4 == 65536
    assert shape.threads == 256 and shape.grid == (2, 2, 1)
    # 192 KiB: past sm_80's 163 KiB opt-in limit, within sm_90's 227 KiB.
    config = GpuConfig((128, 256), (8, 16), (128,), True, shared_opt_in=True)
    assert config.launch_shape(BIG_MATMUL_PROBLEM, "sm_90").shared_bytes == 196608


def test_intrinsic_validation_without_a_problem() -> None:
    GpuConfig((32, 32), (2, 2)).validate()
    with pytest.raises(ValueError, match=r"GpuConfig\.thread_tile: 2048 threads"):
        GpuConfig((64, 32), (1, 1)).validate()
    with pytest.raises(ValueError, match=r"GpuConfig\.thread_tile: thread_tile\[0\]=3"):
        GpuConfig((32, 32), (3, 2)).validate()


def test_invalid_config_rejected_by_compile_gpu() -> None:
    with pytest.raises(ValueError, match=r"kernel k0_matmul \(matmul.*GpuConfig\.thread_tile"):
        compile_text(MATMUL, configs={"matmul": GpuConfig((64, 48), (1, 1))})
    with pytest.raises(ValueError, match="configs name no kernel of this model and no kernel kind"):
        compile_text(MATMUL, configs={"matmull": GpuConfig()})


def test_default_configs_are_valid_and_use_shared_memory_for_large_contractions() -> None:
    config = default_config(BIG_MATMUL_PROBLEM, "sm_90")
    shape = config.launch_shape(BIG_MATMUL_PROBLEM, "sm_90")
    assert config.promote_shared and shape.block_tile == (64, 64) and shape.threads == 256
    assert shape.grid == (4, 4, 1)
    assert not default_config(MATMUL_PROBLEM, "sm_80").promote_shared or MATMUL_PROBLEM.reduction_extents[0] >= 32


# -- CPU numerics of GPU schedules -------------------------------------------------------------


def _run(text: str, inputs: list[np.ndarray], configs) -> np.ndarray:
    with ir.Context(), ir.Location.unknown():
        (result,) = run_on_cpu(ir.Module.parse(text), inputs, configs=configs)
    return result


def _conv_nchw(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, f, oh, ow), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
    return out


@pytest.mark.parametrize(
    "config",
    [
        None,
        GpuConfig((32, 16), (4, 2), (8,), promote_shared=True),
        GpuConfig((16, 48), (2, 4), (8,), promote_shared=True, vector_width=4),
        GpuConfig((64, 16), (8, 1), (4,)),
        GpuConfig((8, 8), (1, 1)),
    ],
)
def test_matmul_schedule_numerics_on_cpu(config: GpuConfig | None) -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((64, 32)).astype(np.float32)
    b = rng.standard_normal((32, 48)).astype(np.float32)
    got = _run(MATMUL, [a, b], {"matmul": config} if config else None)
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("index", range(len(CONFIGS["conv3x3"])))
def test_conv3x3_schedule_numerics_on_cpu(index: int) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 8, 16, 16)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(16).astype(np.float32)
    got = _run(CONV3X3, [x, w, bias], {"conv": CONFIGS["conv3x3"][index][0]})
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.maximum(_conv_nchw(padded, w, 1) + bias[None, :, None, None], 0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_strided_1x1_conv_and_depthwise_schedule_numerics_on_cpu() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 16, 16)).astype(np.float32)
    w = rng.standard_normal((16, 8, 1, 1)).astype(np.float32)
    got = _run(CONV1X1_STRIDED, [x, w], {"conv": CONFIGS["conv1x1_strided"][0][0]})
    np.testing.assert_allclose(got, _conv_nchw(x.astype(np.float64), w, 2), rtol=1e-4, atol=1e-4)

    x = rng.standard_normal((1, 8, 10, 10)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3)).astype(np.float32)
    got = _run(DEPTHWISE, [x, w], {"depthwise_conv": CONFIGS["depthwise"][0][0]})
    expected = np.zeros((1, 8, 8, 8))
    for i in range(3):
        for j in range(3):
            expected += x[:, :, i : i + 8, j : j + 8] * w[None, :, i, j, None, None]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_pool_reduction_elementwise_fill_numerics_on_cpu() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 8, 16, 16)).astype(np.float32)
    got = _run(MAX_POOL, [x], {"pool": CONFIGS["max_pool"][0][0]})
    np.testing.assert_array_equal(got, x.reshape(1, 8, 8, 2, 8, 2).max(axis=(3, 5)))
    x = rng.standard_normal((64, 100)).astype(np.float32)
    got = _run(REDUCTION, [x], {"reduction": CONFIGS["reduction"][0][0]})
    np.testing.assert_allclose(got, x.astype(np.float64).sum(axis=1), rtol=1e-4, atol=1e-4)
    x = rng.standard_normal((4, 16, 32)).astype(np.float32)
    y = rng.standard_normal(32).astype(np.float32)
    got = _run(ELEMENTWISE, [x, y], {"elementwise": CONFIGS["elementwise"][0][0]})
    np.testing.assert_allclose(got, np.tanh(x * y), rtol=1e-5, atol=1e-6)
    got = _run(FILL, [np.zeros(8, np.float32)], {"fill": CONFIGS["fill"][0][0]})
    np.testing.assert_array_equal(got, np.full((32, 64), 1.5, np.float32))


# -- the whole tiny ResNet ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet() -> tuple[onnx.ModelProto, ir.Module, list[np.ndarray]]:
    model = tiny_resnet()
    imported = import_onnx_with_weights(model)
    with imported.context, ir.Location.unknown():
        outlined = outline_weights(imported.module)
        weights = [imported.weights.arrays[w.resource] for w in outlined]
        lower_to_linalg(imported.module.operation)
    return model, imported.module, weights


def check_buffer_plan(program: GpuProgram) -> None:
    """Kernels in order read only buffers already written (or graph inputs/weights) and each
    output and intermediate buffer is written by exactly one kernel; views keep element counts."""
    written = {BufferRef("input", i) for i in range(len(program.inputs))}
    written |= {BufferRef("weight", i) for i in range(len(program.weights))}
    read: set[BufferRef] = set()
    for kernel in program.kernels:
        for arg in kernel.args:
            assert math.prod(arg.shape) == math.prod(program.shape_of(arg.buffer)), (kernel.name, arg)
            if arg.access == "read":
                assert arg.buffer in written, f"{kernel.name} reads {arg.buffer} before it is written"
                read.add(arg.buffer)
        (out,) = [a.buffer for a in kernel.args if a.access == "write"]
        assert out.kind in ("output", "intermediate") and out not in written, f"{out} written twice"
        written.add(out)
    assert {BufferRef("output", i) for i in range(len(program.outputs))} <= written
    intermediates = {BufferRef("intermediate", i) for i, _ in program.intermediates}
    assert intermediates <= written and intermediates <= read
    assert {BufferRef("weight", i) for i in range(len(program.weights))} <= read
    assert [i for i, _ in program.intermediates] == list(range(len(program.intermediates)))


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_resnet_compiles_to_one_kernel_per_fused_op_chain(resnet, arch: str) -> None:
    model, module, weights = resnet
    with module.context:
        start = time.perf_counter()
        program = compile_gpu(module, arch, assemble=None if arch == "sm_90" else False)
        seconds = time.perf_counter() - start
    print(f"tiny_resnet -> {len(program.kernels)} PTX kernels for {arch} in {seconds:.2f} s {program.stage_seconds}")
    ops = [node.op_type for node in model.graph.node]
    kinds = [k.kind for k in program.kernels]
    assert kinds.count("conv") == ops.count("Conv")
    assert kinds.count("pool") == ops.count("MaxPool") + ops.count("AveragePool")
    assert kinds.count("matmul") == ops.count("Gemm")
    assert kinds.count("gather") == ops.count("Conv") - 1  # every 3x3 conv pads; the 1x1 does not
    assert {"reduction", "elementwise"} <= set(kinds)
    assert program.inputs == [(1, 3, 32, 32)]
    assert program.outputs == [(1, 10), (1, 10)]
    assert program.weights == [tuple(w.shape) for w in weights]
    assert len({k.name for k in program.kernels}) == len(program.kernels)
    check_buffer_plan(program)
    for kernel in program.kernels:
        check_ptx(kernel, arch)
        if arch == "sm_90":
            check_assembled(kernel)
    assert seconds < 30


def test_tiny_resnet_gpu_schedules_on_cpu_match_the_cpu_backend(resnet) -> None:
    _, module, weights = resnet
    x = np.random.default_rng(5).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with module.context:
        reference = compile_cpu(clone_module(module), CpuOptions(parallel=False))
        reference.bind_weights(weights)
        expected = reference([x])
        configs = {
            "conv": GpuConfig((1, 8, 8, 8), (1, 2, 2, 2), (), promote_shared=True),
            "pool": GpuConfig((1, 4, 4, 4), (1, 1, 2, 1)),
        }
        for chosen in (None, configs):
            got = run_on_cpu(module, [x], weights, configs=chosen)
            for g, e in zip(got, expected, strict=True):
                np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def test_small_mlp_concat_and_pads_compile_and_match_on_cpu() -> None:
    imported = import_onnx_with_weights(small_mlp())
    with imported.context, ir.Location.unknown():
        outlined = outline_weights(imported.module)
        weights = [imported.weights.arrays[w.resource] for w in outlined]
        lower_to_linalg(imported.module.operation)
        program = compile_gpu(imported.module, "sm_90", assemble=False)
        check_buffer_plan(program)
        assert "gather" in [k.kind for k in program.kernels]  # the Concat and the Pads
        rng = np.random.default_rng(6)
        inputs = [rng.standard_normal(shape).astype(np.float32) for shape in program.inputs]
        reference = compile_cpu(clone_module(imported.module), CpuOptions(parallel=False))
        reference.bind_weights(weights)
        for got, expected in zip(run_on_cpu(imported.module, inputs, weights), reference(inputs), strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
