// cpu.elementwise on a broadcast add + ReLU (8x64): by default rows in vectors of 16 lanes
// (twice the AVX2 register); 2 chunks of rows in an scf.forall and vectors of 32 with a
// configuration.
//
// DEFINE: %{lower} = wpk-opt %s --wpk-lower-to-linalg --canonicalize --cse
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/avx2-2threads.json | FileCheck %s --check-prefix=DEFAULT
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/elementwise.json | FileCheck %s --check-prefix=CONFIG

// DEFAULT-DAG:   %[[C16:.*]] = arith.constant 16 : index
// DEFAULT-NOT:   scf.forall
// DEFAULT:       scf.for
// DEFAULT:         scf.for %{{.*}} step %[[C16]]
// DEFAULT:           vector.transfer_read {{.*}} : tensor<16xf32>, vector<16xf32>
// DEFAULT:           arith.addf {{.*}} : vector<1x16xf32>
// DEFAULT:           arith.maximumf {{.*}} : vector<1x16xf32>
// DEFAULT-NOT:   linalg.

// CONFIG-DAG:    %[[C32:.*]] = arith.constant 32 : index
// CONFIG:        scf.forall (%{{.*}}) in (2)
// CONFIG:          scf.for {{.*}} -> (tensor<4x64xf32>)
// CONFIG:            scf.for %{{.*}} step %[[C32]]
// CONFIG:              arith.addf {{.*}} : vector<1x32xf32>
// CONFIG:              arith.maximumf {{.*}} : vector<1x32xf32>
// CONFIG:          scf.forall.in_parallel
// CONFIG-NOT:    linalg.

func.func @main(%x: tensor<8x64xf32>, %y: tensor<64xf32>) -> tensor<8x64xf32> {
  %0 = "wpk.elementwise"(%x, %y) {steps = ["add", "relu"], params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}
