// A depthwise 3x3 conv under a search-space configuration: 2 channels per block, 2x2 outputs
// per thread, the input and filter tiles staged in workgroup memory; the default on sm_90.
//
// RUN: %python -m woodpecker.gpu %s --arch sm_80 --no-assemble --print-ir-after-schedule --print-nvvm --print-ptx \
// RUN:   --knobs 'depthwise_conv={"block_tile": [1, 2, 8, 8], "thread_tile": [1, 1, 2, 2], "promote_shared": true}' \
// RUN:   | FileCheck %s
// RUN: %python -m woodpecker.gpu %s --no-assemble --print-nvvm --print-ptx | FileCheck %s --check-prefix=SM90

// CHECK-LABEL: IR after schedule
// CHECK:       func.func @k0_depthwise_conv(
// CHECK:         scf.forall ({{.*}}) in (4)
// CHECK-DAG:       bufferization.alloc_tensor() {memory_space = #gpu.address_space<workgroup>} : tensor<2x3x3xf32>
// CHECK-DAG:       bufferization.alloc_tensor() {memory_space = #gpu.address_space<workgroup>} : tensor<1x2x10x10xf32>
// CHECK:           scf.forall ({{.*}}) in (2, 4, 4)
// CHECK:           linalg.copy {{.*}}wpk.gpu.copy = 0
// CHECK:           linalg.copy {{.*}}wpk.gpu.copy = 1
// CHECK:           linalg.depthwise_conv_2d_nchw_chw {{.*}} outs({{.*}} : tensor<1x1x2x2xf32>)
// The depthwise op's loops are (n, oh, ow, c, kh, kw): the channel is thread z.
// CHECK:           {mapping = [#gpu.thread<y>, #gpu.thread<x>, #gpu.thread<z>]}
// CHECK:         {mapping = [#gpu.block<x>]}

// CHECK-LABEL: IR after nvvm
// CHECK:       gpu.module @k0_depthwise_conv_kernel [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">]
// CHECK-SAME:    wpk.gpu.block = array<i32: 4, 4, 2>, wpk.gpu.grid = array<i32: 4, 1, 1>, wpk.gpu.shared_bytes = 880 : i64
// CHECK:         llvm.func @k0_depthwise_conv_kernel(
// CHECK-SAME:    nvvm.kernel, nvvm.maxntid = array<i32: 4, 4, 2>
// CHECK:         nvvm.read.ptx.sreg.ctaid.x range <i32, 0, 4>
// CHECK:         nvvm.barrier0

// CHECK-LABEL: PTX of k0_depthwise_conv_kernel
// CHECK:       .target sm_80
// CHECK:       .maxntid 4, 4, 2
// CHECK:       bar.sync

// SM90:  gpu.module @k0_depthwise_conv_kernel [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// SM90-SAME: wpk.gpu.block = array<i32: 8, 8, 4>, wpk.gpu.grid = array<i32: 2, 1, 1>, wpk.gpu.shared_bytes = 0 : i64
// SM90:  .target sm_90

func.func @main(%x: tensor<1x8x10x10xf32>, %w: tensor<8x3x3xf32>) -> tensor<1x8x8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x8x8x8xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  %c = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %w : tensor<1x8x10x10xf32>, tensor<8x3x3xf32>) outs(%f : tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  return %c : tensor<1x8x8x8xf32>
}
