// batch_matmul under a search-space configuration: 2 batches x 8x12 outputs per block, a
// 1x2x4 register tile per thread, K in steps of 4 staged in workgroup memory; NVVM and PTX
// for sm_80, and the default schedule (one block) on sm_90.
//
// RUN: %python -m woodpecker.gpu %s --arch sm_80 --no-assemble --print-ir-after-schedule --print-nvvm --print-ptx \
// RUN:   --knobs 'batch_matmul={"block_tile": [2, 8, 12], "thread_tile": [1, 2, 4], "reduction_tile": [4], "promote_shared": true}' \
// RUN:   | FileCheck %s
// RUN: %python -m woodpecker.gpu %s --no-assemble --print-nvvm --print-ptx | FileCheck %s --check-prefix=SM90

// CHECK-LABEL: IR after schedule
// CHECK:       func.func @k0_batch_matmul(
// CHECK:         scf.forall ({{.*}}) in (2, 2)
// CHECK-DAG:       bufferization.alloc_tensor() {memory_space = #gpu.address_space<workgroup>} : tensor<2x4x12xf32>
// CHECK-DAG:       bufferization.alloc_tensor() {memory_space = #gpu.address_space<workgroup>} : tensor<2x8x4xf32>
// CHECK:           scf.forall ({{.*}}) in (2, 4, 3)
// CHECK:           scf.for {{.*}} step %c4
// CHECK:             linalg.copy {{.*}}wpk.gpu.copy = 0
// CHECK:             linalg.copy {{.*}}wpk.gpu.copy = 1
// CHECK:             linalg.batch_matmul {{.*}} outs({{.*}} : tensor<1x2x4xf32>)
// CHECK:             {mapping = [#gpu.thread<z>, #gpu.thread<y>, #gpu.thread<x>]}
// CHECK:         {mapping = [#gpu.block<y>, #gpu.block<x>]}

// CHECK-LABEL: IR after nvvm
// CHECK:       gpu.module @k0_batch_matmul_kernel [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">]
// CHECK-SAME:    wpk.gpu.block = array<i32: 3, 4, 2>, wpk.gpu.grid = array<i32: 2, 2, 1>, wpk.gpu.shared_bytes = 640 : i64
// CHECK:         llvm.func @k0_batch_matmul_kernel(
// CHECK-SAME:    nvvm.kernel, nvvm.maxntid = array<i32: 3, 4, 2>
// CHECK-DAG:     nvvm.read.ptx.sreg.tid.z range <i32, 0, 2>
// CHECK-DAG:     nvvm.read.ptx.sreg.ctaid.y range <i32, 0, 2>
// CHECK:         nvvm.barrier0

// CHECK-LABEL: PTX of k0_batch_matmul_kernel
// CHECK:       .target sm_80
// CHECK:       .maxntid 3, 4, 2
// CHECK:       ld.shared

// SM90:  gpu.module @k0_batch_matmul_kernel [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// SM90-SAME: wpk.gpu.block = array<i32: 3, 4, 4>, wpk.gpu.grid = array<i32: 1, 1, 1>, wpk.gpu.shared_bytes = 0 : i64
// SM90:  .target sm_90

func.func @main(%a: tensor<4x16x8xf32>, %b: tensor<4x8x12xf32>) -> tensor<4x16x12xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16x12xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16x12xf32>) -> tensor<4x16x12xf32>
  %m = linalg.batch_matmul ins(%a, %b : tensor<4x16x8xf32>, tensor<4x8x12xf32>) outs(%f : tensor<4x16x12xf32>) -> tensor<4x16x12xf32>
  return %m : tensor<4x16x12xf32>
}
