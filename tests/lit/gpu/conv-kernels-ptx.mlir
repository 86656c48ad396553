// woodpecker.gpu on a padded 3x3 conv with a bias+ReLU epilogue: the pad becomes a gather
// kernel, the conv, its fill and epilogue one kernel whose input tiles are staged in dynamic
// shared memory; PTX for sm_80 with bare-pointer parameters.
//
// RUN: %python -m woodpecker.gpu %s --arch sm_80 --no-assemble --print-ptx \
// RUN:   --config 'conv={"block_tile": [1, 8, 8, 16], "thread_tile": [1, 2, 1, 1], "reduction_tile": [4], "promote_shared": true}' \
// RUN:   | FileCheck %s
// RUN: not %python -m woodpecker.gpu %s --no-assemble --config 'conv={"block_tile": [1, 16, 16, 16], "thread_tile": [1, 1, 1, 1]}' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=INVALID

// CHECK: program arch=sm_80 kernels=2
// CHECK: kernel k0_gather_kernel kind=gather grid=(2, 8, 1) block=(18, 9, 1) shared=0 args=[intermediate[0]:1x8x18x18(w), input[0]:1x8x16x16] ops=[linalg.generic]
// CHECK: kernel k1_conv_kernel kind=conv grid=(2, 2, 1) block=(16, 8, 4) shared=4032
// CHECK-SAME: intermediate[0]:1x8x18x18
// CHECK-SAME: output[0]:1x16x16x16(w)
// CHECK-SAME: ops=[linalg.conv_2d_nchw_fchw, linalg.generic]
// CHECK: inputs 1x8x16x16 16x8x3x3 16
// CHECK: outputs 1x16x16x16
// CHECK: intermediates 0:1x8x18x18

// CHECK-LABEL: PTX of k0_gather_kernel
// CHECK: .target sm_80
// CHECK: .visible .entry k0_gather_kernel(
// CHECK-NEXT: .param .u64 .ptr .align 1 k0_gather_kernel_param_0,
// CHECK-NEXT: .param .u64 .ptr .align 1 k0_gather_kernel_param_1
// CHECK-NEXT: )
// CHECK-NEXT: .maxntid 18, 9, 1

// CHECK-LABEL: PTX of k1_conv_kernel
// CHECK: .target sm_80
// CHECK: .extern .shared .align 16 .b8 __dynamic_shmem__0[];
// CHECK: .visible .entry k1_conv_kernel(
// CHECK-COUNT-4: .param .u64 .ptr
// CHECK: .maxntid 16, 8, 4
// CHECK-DAG: bar.sync
// CHECK-DAG: st.shared
// CHECK-DAG: ld.shared
// CHECK-DAG: fma.rn.f32
// CHECK: ret;

// INVALID: error: kernel k1_conv (conv, output (1, 16, 16, 16)): GpuConfig.thread_tile: 4096 threads per block

#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#ch = affine_map<(d0, d1, d2, d3) -> (d1)>
func.func @main(%x: tensor<1x8x16x16xf32>, %w: tensor<16x8x3x3xf32>, %bias: tensor<16xf32>) -> tensor<1x16x16x16xf32> {
  %zero = arith.constant 0.0 : f32
  %padded = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %zero : f32
  } : tensor<1x8x16x16xf32> to tensor<1x8x18x18xf32>
  %empty = tensor.empty() : tensor<1x16x16x16xf32>
  %init = linalg.fill ins(%zero : f32) outs(%empty : tensor<1x16x16x16xf32>) -> tensor<1x16x16x16xf32>
  %conv = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%padded, %w : tensor<1x8x18x18xf32>, tensor<16x8x3x3xf32>) outs(%init : tensor<1x16x16x16xf32>) -> tensor<1x16x16x16xf32>
  %res = linalg.generic {indexing_maps = [#id, #ch, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%conv, %bias : tensor<1x16x16x16xf32>, tensor<16xf32>) outs(%empty : tensor<1x16x16x16xf32>) {
  ^bb0(%c: f32, %b: f32, %o: f32):
    %s = arith.addf %c, %b : f32
    %r = arith.maximumf %s, %zero : f32
    linalg.yield %r : f32
  } -> tensor<1x16x16x16xf32>
  return %res : tensor<1x16x16x16xf32>
}
