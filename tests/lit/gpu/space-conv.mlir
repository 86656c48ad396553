// A strided, padded 3x3 conv: the pad is a gather kernel, the conv a kernel whose input and
// filter tiles (4 input channels per step) are staged in workgroup memory. Search-space
// configurations for both kinds on sm_80; the default schedules on sm_90.
//
// RUN: %python -m woodpecker.gpu %s --arch sm_80 --no-assemble --print-ir-after-schedule --print-nvvm --print-ptx \
// RUN:   --knobs 'gather={"block_tile": [1, 2, 18, 18], "thread_tile": [1, 1, 2, 2]}' \
// RUN:   --knobs 'conv={"block_tile": [1, 8, 4, 8], "thread_tile": [1, 2, 1, 2], "reduction_tile": [4], "promote_shared": true}' \
// RUN:   | FileCheck %s
// RUN: %python -m woodpecker.gpu %s --no-assemble --print-nvvm --print-ptx | FileCheck %s --check-prefix=SM90

// CHECK-LABEL: IR after schedule
// CHECK:       func.func @k0_gather(
// CHECK:         scf.forall ({{.*}}) in (2, 4)
// CHECK:           scf.forall ({{.*}}) in (2, 9, 9)
// CHECK:             linalg.generic {{.*}} outs({{.*}} : tensor<1x1x2x2xf32>) {{.*}}wpk.gpu.gather
// CHECK:           {mapping = [#gpu.thread<z>, #gpu.thread<y>, #gpu.thread<x>]}
// CHECK:         {mapping = [#gpu.block<y>, #gpu.block<x>]}
// CHECK:       func.func @k1_conv(
// CHECK:         scf.forall ({{.*}}) in (2, 2, 2)
// CHECK-DAG:       bufferization.alloc_tensor() {memory_space = #gpu.address_space<workgroup>} : tensor<8x4x3x3xf32>
// CHECK-DAG:       bufferization.alloc_tensor() {memory_space = #gpu.address_space<workgroup>} : tensor<1x4x9x17xf32>
// CHECK:           scf.forall ({{.*}}) in (4, 4, 4)
// CHECK:           scf.for {{.*}} step %c4
// CHECK:             linalg.copy {{.*}}wpk.gpu.copy = 0
// CHECK:             linalg.copy {{.*}}wpk.gpu.copy = 1
// CHECK:             linalg.conv_2d_nchw_fchw {{.*}} outs({{.*}} : tensor<1x2x1x2xf32>)
// CHECK:         {mapping = [#gpu.block<z>, #gpu.block<y>, #gpu.block<x>]}

// CHECK-LABEL: IR after nvvm
// CHECK:       gpu.module @k0_gather_kernel [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">]
// CHECK-SAME:    wpk.gpu.block = array<i32: 9, 9, 2>, wpk.gpu.grid = array<i32: 4, 2, 1>, wpk.gpu.shared_bytes = 0 : i64
// CHECK:       gpu.module @k1_conv_kernel [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">]
// CHECK-SAME:    wpk.gpu.block = array<i32: 4, 4, 4>, wpk.gpu.grid = array<i32: 2, 2, 2>, wpk.gpu.shared_bytes = 3600 : i64
// CHECK:         llvm.func @k1_conv_kernel(
// CHECK-SAME:    nvvm.kernel, nvvm.maxntid = array<i32: 4, 4, 4>
// CHECK-DAG:     nvvm.read.ptx.sreg.ctaid.z range <i32, 0, 2>
// CHECK-DAG:     nvvm.read.ptx.sreg.tid.z range <i32, 0, 4>
// CHECK:         nvvm.barrier0

// CHECK-LABEL: PTX of k0_gather_kernel
// CHECK:       .target sm_80
// CHECK:       .maxntid 9, 9, 2
// CHECK-LABEL: PTX of k1_conv_kernel
// CHECK:       .target sm_80
// CHECK:       .extern .shared .align 16 .b8 __dynamic_shmem__0[];
// CHECK:       .maxntid 4, 4, 4

// SM90:  gpu.module @k0_gather_kernel [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// SM90-SAME: wpk.gpu.block = array<i32: 18, 9, 1>, wpk.gpu.grid = array<i32: 2, 8, 2>
// SM90:  gpu.module @k1_conv_kernel [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// SM90-SAME: wpk.gpu.block = array<i32: 8, 8, 4>, wpk.gpu.grid = array<i32: 2, 1, 1>, wpk.gpu.shared_bytes = 0 : i64
// SM90:  .target sm_90
// SM90:  .target sm_90

func.func @main(%x: tensor<2x8x16x16xf32>, %w: tensor<16x8x3x3xf32>) -> tensor<2x16x8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %p = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %zero : f32
  } : tensor<2x8x16x16xf32> to tensor<2x8x18x18xf32>
  %e = tensor.empty() : tensor<2x16x8x8xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<2x16x8x8xf32>) -> tensor<2x16x8x8xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
      ins(%p, %w : tensor<2x8x18x18xf32>, tensor<16x8x3x3xf32>) outs(%f : tensor<2x16x8x8xf32>) -> tensor<2x16x8x8xf32>
  return %c : tensor<2x16x8x8xf32>
}
