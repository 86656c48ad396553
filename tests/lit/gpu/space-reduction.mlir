// A row mean (a sum reduction and a division epilogue in one kernel) under a search-space
// configuration: 16 rows per block, 2 per thread, the reduction loop in steps of 32; the
// default on sm_90.
//
// RUN: %python -m woodpecker.gpu %s --arch sm_80 --no-assemble --print-ir-after-schedule --print-nvvm --print-ptx \
// RUN:   --knobs 'reduction={"block_tile": [16], "thread_tile": [2], "reduction_tile": [32]}' \
// RUN:   | FileCheck %s
// RUN: %python -m woodpecker.gpu %s --no-assemble --print-nvvm --print-ptx | FileCheck %s --check-prefix=SM90

// CHECK-LABEL: IR after schedule
// CHECK:       func.func @k0_reduction(
// CHECK:         scf.forall ({{.*}}) in (4)
// CHECK:           scf.forall ({{.*}}) in (8)
// CHECK:             linalg.fill {{.*}} -> tensor<2xf32>
// CHECK:             scf.for {{.*}} = %c0 to %c96 step %c32
// CHECK:               linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]{{.*}} ins({{.*}} : tensor<2x32xf32>)
// CHECK:             linalg.generic
// CHECK:           {mapping = [#gpu.thread<x>]}
// CHECK:         {mapping = [#gpu.block<x>]}

// CHECK-LABEL: IR after nvvm
// CHECK:       gpu.module @k0_reduction_kernel [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">]
// CHECK-SAME:    wpk.gpu.block = array<i32: 8, 1, 1>, wpk.gpu.grid = array<i32: 4, 1, 1>, wpk.gpu.shared_bytes = 0 : i64
// CHECK:         llvm.func @k0_reduction_kernel(
// CHECK-SAME:    nvvm.kernel, nvvm.maxntid = array<i32: 8, 1, 1>
// CHECK-DAG:     nvvm.read.ptx.sreg.ctaid.x range <i32, 0, 4>
// CHECK-DAG:     nvvm.read.ptx.sreg.tid.x range <i32, 0, 8>

// CHECK-LABEL: PTX of k0_reduction_kernel
// CHECK:       .target sm_80
// CHECK:       .maxntid 8, 1, 1
// CHECK:       div.rn.f32

// SM90:  gpu.module @k0_reduction_kernel [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// SM90-SAME: wpk.gpu.block = array<i32: 32, 1, 1>, wpk.gpu.grid = array<i32: 2, 1, 1>, wpk.gpu.shared_bytes = 0 : i64
// SM90:  .target sm_90

#id = affine_map<(d0, d1) -> (d0, d1)>
#rows = affine_map<(d0, d1) -> (d0)>
#vec = affine_map<(d0) -> (d0)>
func.func @main(%x: tensor<64x96xf32>) -> tensor<64xf32> {
  %zero = arith.constant 0.0 : f32
  %n = arith.constant 96.0 : f32
  %e = tensor.empty() : tensor<64xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<64xf32>) -> tensor<64xf32>
  %s = linalg.generic {indexing_maps = [#id, #rows], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<64x96xf32>) outs(%f : tensor<64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %t = arith.addf %a, %o : f32
    linalg.yield %t : f32
  } -> tensor<64xf32>
  %m = linalg.generic {indexing_maps = [#vec, #vec], iterator_types = ["parallel"]}
      ins(%s : tensor<64xf32>) outs(%e : tensor<64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %d = arith.divf %a, %n : f32
    linalg.yield %d : f32
  } -> tensor<64xf32>
  return %m : tensor<64xf32>
}
