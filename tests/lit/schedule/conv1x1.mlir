// cpu.conv on a 1x1 convolution (16 -> 32 channels, 16x16): the default schedule for a fixed
// AVX2 machine with 2 threads, and a configuration in the flat file form (only kernels, this
// host's registers): 2x2 outer tiles in an scf.forall, a 4x1x16 register tile, 2 input
// channels per step (no kh/kw loops).
//
// DEFINE: %{lower} = wpk-opt %s --wpk-lower-to-linalg --canonicalize --cse
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/avx2-2threads.json | FileCheck %s --check-prefix=DEFAULT
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/conv1x1.json | FileCheck %s --check-prefix=CONFIG

// DEFAULT-LABEL: func.func @main
// DEFAULT:         scf.forall (%{{.*}}, %{{.*}}) in (2, 4)
// DEFAULT:           vector.fma {{.*}} : vector<8xf32>
// DEFAULT:           scf.forall.in_parallel
// DEFAULT-NOT:   linalg.

// CONFIG-LABEL: func.func @main
// CONFIG-DAG:     %[[C2:.*]] = arith.constant 2 : index
// CONFIG-DAG:     %[[C16:.*]] = arith.constant 16 : index
// CONFIG:         scf.forall (%{{.*}}, %{{.*}}) in (2, 2)
// CONFIG:           %[[ACC:.*]] = vector.transfer_read {{.*}} : tensor<4x16xf32>, vector<4x16xf32>
// CONFIG:           scf.for %{{.*}} = %{{.*}} to %[[C16]] step %[[C2]] iter_args(%{{.*}} = %[[ACC]]) -> (vector<4x16xf32>)
// CONFIG-NOT:         scf.for
// CONFIG:             vector.transfer_read {{.*}} : tensor<2x16xf32>, vector<2x16xf32>
// CONFIG:             vector.transfer_read {{.*}} : tensor<4x2xf32>, vector<4x2xf32>
// CONFIG-COUNT-8:     vector.fma {{.*}} : vector<16xf32>
// CONFIG-NOT:         vector.fma
// CONFIG:             vector.transfer_write {{.*}} : vector<4x16xf32>, tensor<4x16xf32>
// CONFIG:           scf.forall.in_parallel
// CONFIG-NOT:     linalg.

func.func @main(%x: tensor<1x16x16x16xf32>, %w: tensor<32x16x1x1xf32>) -> tensor<1x32x16x16xf32> {
  %0 = "wpk.conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x16x16x16xf32>, tensor<32x16x1x1xf32>) -> tensor<1x32x16x16xf32>
  return %0 : tensor<1x32x16x16xf32>
}
