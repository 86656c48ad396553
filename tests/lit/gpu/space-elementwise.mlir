// An elementwise chain (multiply by a broadcast row, tanh) and a fill, each under a
// search-space configuration on sm_80 and by default on sm_90.
//
// RUN: %python -m woodpecker.gpu %s --arch sm_80 --no-assemble --print-ir-after-schedule --print-nvvm --print-ptx \
// RUN:   --knobs 'elementwise={"block_tile": [2, 4, 32], "thread_tile": [1, 1, 4], "vector_width": 4}' \
// RUN:   --knobs 'fill={"block_tile": [16, 64], "thread_tile": [2, 2]}' \
// RUN:   | FileCheck %s
// RUN: %python -m woodpecker.gpu %s --no-assemble --print-nvvm --print-ptx | FileCheck %s --check-prefix=SM90

// CHECK-LABEL: IR after schedule
// CHECK:       func.func @k0_elementwise(
// CHECK:         scf.forall ({{.*}}) in (2, 4)
// CHECK:           scf.forall ({{.*}}) in (2, 4, 8)
// CHECK:             linalg.generic {{.*}} outs({{.*}} : tensor<1x1x4xf32>)
// CHECK:               math.tanh
// CHECK:           {mapping = [#gpu.thread<z>, #gpu.thread<y>, #gpu.thread<x>]}
// CHECK:         {mapping = [#gpu.block<y>, #gpu.block<x>]}
// CHECK:       func.func @k1_fill(
// CHECK:         scf.forall ({{.*}}) in (2)
// CHECK:           scf.forall ({{.*}}) in (8, 32)
// CHECK:             linalg.fill {{.*}} -> tensor<2x2xf32>
// CHECK:           {mapping = [#gpu.thread<y>, #gpu.thread<x>]}
// CHECK:         {mapping = [#gpu.block<x>]}

// CHECK-LABEL: IR after nvvm
// CHECK:       gpu.module @k0_elementwise_kernel [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">]
// CHECK-SAME:    wpk.gpu.block = array<i32: 8, 4, 2>, wpk.gpu.grid = array<i32: 4, 2, 1>, wpk.gpu.shared_bytes = 0 : i64
// CHECK:         llvm.func @k0_elementwise_kernel(
// CHECK-SAME:    nvvm.kernel, nvvm.maxntid = array<i32: 8, 4, 2>
// CHECK:       gpu.module @k1_fill_kernel [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">]
// CHECK-SAME:    wpk.gpu.block = array<i32: 32, 8, 1>, wpk.gpu.grid = array<i32: 2, 1, 1>, wpk.gpu.shared_bytes = 0 : i64
// CHECK:         nvvm.read.ptx.sreg.ctaid.x range <i32, 0, 2>

// CHECK-LABEL: PTX of k0_elementwise_kernel
// CHECK:       .target sm_80
// CHECK:       .maxntid 8, 4, 2
// CHECK-LABEL: PTX of k1_fill_kernel
// CHECK:       .target sm_80
// CHECK:       .maxntid 32, 8, 1

// SM90:  gpu.module @k0_elementwise_kernel [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// SM90-SAME: wpk.gpu.block = array<i32: 32, 8, 1>, wpk.gpu.grid = array<i32: 2, 4, 1>
// SM90:  gpu.module @k1_fill_kernel [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// SM90:  .target sm_90
// SM90:  .target sm_90

#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#row = affine_map<(d0, d1, d2) -> (d2)>
func.func @main(%x: tensor<4x16x32xf32>, %y: tensor<32xf32>) -> (tensor<4x16x32xf32>, tensor<32x64xf32>) {
  %c = arith.constant 1.5 : f32
  %e = tensor.empty() : tensor<4x16x32xf32>
  %r = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x, %y : tensor<4x16x32xf32>, tensor<32xf32>) outs(%e : tensor<4x16x32xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.mulf %a, %b : f32
    %t = math.tanh %s : f32
    linalg.yield %t : f32
  } -> tensor<4x16x32xf32>
  %e2 = tensor.empty() : tensor<32x64xf32>
  %f = linalg.fill ins(%c : f32) outs(%e2 : tensor<32x64xf32>) -> tensor<32x64xf32>
  return %r, %f : tensor<4x16x32xf32>, tensor<32x64xf32>
}
