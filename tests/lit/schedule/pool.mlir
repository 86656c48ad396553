// cpu.pool on a 2x2/2 max pool (16 channels, 16x32 -> 8x16): too small to be split by
// default (scalar loops over the output, the window whole in each); 8 chunks of channels in
// an scf.forall with a configuration.
//
// DEFINE: %{lower} = wpk-opt %s --wpk-lower-to-linalg --canonicalize --cse
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/avx2-2threads.json | FileCheck %s --check-prefix=DEFAULT
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/pool.json | FileCheck %s --check-prefix=CONFIG

// DEFAULT-NOT:   scf.forall
// DEFAULT:       scf.for {{.*}} -> (tensor<1x16x8x16xf32>)
// DEFAULT:         linalg.generic {{.*}} outs(%{{.*}} : tensor<1x1x1x1xf32>)
// DEFAULT:           arith.maximumf {{.*}} : f32

// CONFIG:        scf.forall (%{{.*}}) in (8)
// CONFIG:          linalg.generic {{.*}} outs(%{{.*}} : tensor<1x2x8x16xf32>)
// CONFIG:          scf.for {{.*}} -> (tensor<1x2x8x16xf32>)
// CONFIG:            linalg.generic {{.*}} outs(%{{.*}} : tensor<1x1x1x1xf32>)
// CONFIG:              arith.maximumf {{.*}} : f32
// CONFIG:          scf.forall.in_parallel

func.func @main(%x: tensor<1x16x16x32xf32>) -> tensor<1x16x8x16xf32> {
  %0 = "wpk.max_pool"(%x) {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<1x16x16x32xf32>) -> tensor<1x16x8x16xf32>
  return %0 : tensor<1x16x8x16xf32>
}
