// An average pool (pooling_nchw_sum and a scaling epilogue in one kernel) under a
// search-space configuration: 4x4x8 outputs per block, 2 per thread; the default on sm_90.
//
// RUN: %python -m woodpecker.gpu %s --arch sm_80 --no-assemble --print-ir-after-schedule --print-nvvm --print-ptx \
// RUN:   --knobs 'pool={"block_tile": [1, 4, 4, 8], "thread_tile": [1, 1, 1, 2], "vector_width": 2}' \
// RUN:   | FileCheck %s
// RUN: %python -m woodpecker.gpu %s --no-assemble --print-nvvm --print-ptx | FileCheck %s --check-prefix=SM90

// CHECK-LABEL: IR after schedule
// CHECK:       func.func @k0_pool(
// CHECK:         scf.forall ({{.*}}) in (2, 2)
// CHECK:           scf.forall ({{.*}}) in (4, 4, 4)
// CHECK:             linalg.fill
// CHECK:             linalg.pooling_nchw_sum {{.*}} outs({{.*}} : tensor<1x1x1x2xf32>)
// CHECK:             linalg.generic
// CHECK:           {mapping = [#gpu.thread<z>, #gpu.thread<y>, #gpu.thread<x>]}
// CHECK:         {mapping = [#gpu.block<y>, #gpu.block<x>]}
// CHECK-NOT:   workgroup

// CHECK-LABEL: IR after nvvm
// CHECK:       gpu.module @k0_pool_kernel [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">]
// CHECK-SAME:    wpk.gpu.block = array<i32: 4, 4, 4>, wpk.gpu.grid = array<i32: 2, 2, 1>, wpk.gpu.shared_bytes = 0 : i64
// CHECK:         llvm.func @k0_pool_kernel(
// CHECK-SAME:    nvvm.kernel, nvvm.maxntid = array<i32: 4, 4, 4>
// CHECK-DAG:     nvvm.read.ptx.sreg.ctaid.y range <i32, 0, 2>
// CHECK-DAG:     nvvm.read.ptx.sreg.tid.z range <i32, 0, 4>

// CHECK-LABEL: PTX of k0_pool_kernel
// CHECK:       .target sm_80
// CHECK:       .maxntid 4, 4, 4

// SM90:  gpu.module @k0_pool_kernel [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// SM90-SAME: wpk.gpu.block = array<i32: 8, 8, 4>, wpk.gpu.grid = array<i32: 2, 1, 1>, wpk.gpu.shared_bytes = 0 : i64
// SM90:  .target sm_90

#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @main(%x: tensor<1x8x10x10xf32>) -> tensor<1x8x8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %ninth = arith.constant 0.111111112 : f32
  %window = tensor.empty() : tensor<3x3xf32>
  %e = tensor.empty() : tensor<1x8x8x8xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  %s = linalg.pooling_nchw_sum {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %window : tensor<1x8x10x10xf32>, tensor<3x3xf32>) outs(%f : tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s : tensor<1x8x8x8xf32>) outs(%e : tensor<1x8x8x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.mulf %a, %ninth : f32
    linalg.yield %m : f32
  } -> tensor<1x8x8x8xf32>
  return %r : tensor<1x8x8x8xf32>
}
