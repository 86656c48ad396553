// A stride-2 3x3 convolution (8 -> 16 channels, 17x17 -> 8x8): the window map 2*oh+kh is not
// vectorized along ow, so it gets cpu.conv_strided (vectors along the output channels). The
// default for a fixed AVX2 machine with 2 threads splits it in an scf.forall; the
// configuration: serial 16x2 outer tiles, vectors of 8 output channels, kh and kw one by one
// with 8 input channels (8 FMAs) per step.
//
// DEFINE: %{lower} = wpk-opt %s --wpk-lower-to-linalg --canonicalize --cse
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/avx2-2threads.json | FileCheck %s --check-prefix=DEFAULT
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/strided-conv.json | FileCheck %s --check-prefix=CONFIG
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/strided-conv.json --wpk-print-schedules 2>&1 >/dev/null | FileCheck %s --check-prefix=PRINT

// DEFAULT:       scf.forall (%{{.*}}) in (2)
// DEFAULT:         vector.fma {{.*}} : vector<{{[0-9]+}}xf32>
// DEFAULT-NOT:   linalg.conv

// CONFIG-DAG:    %[[C1:.*]] = arith.constant 1 : index
// CONFIG-DAG:    %[[C2:.*]] = arith.constant 2 : index
// CONFIG-DAG:    %[[C3:.*]] = arith.constant 3 : index
// CONFIG-NOT:    scf.forall
// CONFIG:        scf.for %{{.*}} step %[[C2]] {{.*}} -> (tensor<1x16x8x8xf32>)
// CONFIG:          scf.for %{{.*}} = %{{.*}} to %[[C3]] step %[[C1]]
// CONFIG:            scf.for %{{.*}} = %{{.*}} to %[[C3]] step %[[C1]]
// CONFIG:              vector.transfer_read {{.*}} : tensor<8x8xf32>, vector<8x8xf32>
// CONFIG-COUNT-8:      vector.fma {{.*}} : vector<8xf32>
// CONFIG-NOT:          vector.fma
// CONFIG-NOT:    linalg.conv

// PRINT:      // kernel k0_conv (linalg.conv_2d_nchw_fchw + fill, loops [1, 16, 8, 8, 8, 3, 3]): cpu.conv_strided
// PRINT-NEXT: //   config (requested): {"tile_f": 16, "tile_oh": 2, {{.*}}"reg_f": 8, {{.*}}"parallel": false}

func.func @main(%x: tensor<1x8x17x17xf32>, %w: tensor<16x8x3x3xf32>) -> tensor<1x16x8x8xf32> {
  %0 = "wpk.conv2d"(%x, %w) {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x8x17x17xf32>, tensor<16x8x3x3xf32>) -> tensor<1x16x8x8xf32>
  return %0 : tensor<1x16x8x8xf32>
}
