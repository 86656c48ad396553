// Softmax (16x64, last axis) is four kernels: the row max (cpu.reduction), exp(x - max)
// (cpu.elementwise), the row sum (cpu.reduction) and the division (cpu.elementwise). By
// default each is vectorized by 16 (a reduction in pieces whose vector fits the registers:
// 16 rows x 8 columns on AVX2); the configuration names a kind (both reductions: 2 chunks of
// rows, vectors of 8 rows reduced lane by lane, 16 columns at a time) and one kernel by name
// (the division stays scalar).
//
// DEFINE: %{lower} = wpk-opt %s --wpk-lower-to-linalg --canonicalize --cse
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/avx2-2threads.json --wpk-print-schedules 2>&1 | FileCheck %s --check-prefix=DEFAULT
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/softmax.json | FileCheck %s --check-prefix=CONFIG

// DEFAULT: // kernel k0_reduction (linalg.generic + fill, loops [16, 64]): cpu.reduction
// DEFAULT: //   config (default): {"chunks": 1, "vector": 16}
// DEFAULT: // kernel k1_elementwise (linalg.generic, loops [16, 64]): cpu.elementwise
// DEFAULT: // kernel k2_reduction (linalg.generic + fill, loops [16, 64]): cpu.reduction
// DEFAULT: // kernel k3_elementwise (linalg.generic, loops [16, 64]): cpu.elementwise
// DEFAULT-LABEL: func.func @main
// DEFAULT:         scf.for {{.*}} to %c64 step %c8
// DEFAULT:           vector.transfer_read {{.*}} : tensor<16x8xf32>, vector<16x8xf32>
// DEFAULT:           arith.maximumf {{.*}} : vector<16xf32>
// DEFAULT:         math.exp {{.*}} : vector<1x16xf32>
// DEFAULT:         arith.addf {{.*}} : vector<16xf32>
// DEFAULT:         arith.divf {{.*}} : vector<1x16xf32>

// CONFIG-LABEL: func.func @main
// CONFIG:         scf.forall (%{{.*}}) in (2)
// CONFIG:           scf.for {{.*}} to %c64 step %c16
// CONFIG:             vector.transfer_read {{.*}} : tensor<8x16xf32>, vector<8x16xf32>
// CONFIG-COUNT-16:    arith.maximumf {{.*}} : vector<8xf32>
// CONFIG:         math.exp {{.*}} : vector<1x16xf32>
// CONFIG:         scf.forall (%{{.*}}) in (2)
// CONFIG:           scf.for {{.*}} to %c64 step %c16
// CONFIG-COUNT-16:    arith.addf {{.*}} : vector<8xf32>
// CONFIG:         linalg.generic
// CONFIG:           arith.divf {{.*}} : f32

func.func @main(%x: tensor<16x64xf32>) -> tensor<16x64xf32> {
  %0 = "wpk.softmax"(%x) {axis = 1 : i64} : (tensor<16x64xf32>) -> tensor<16x64xf32>
  return %0 : tensor<16x64xf32>
}
