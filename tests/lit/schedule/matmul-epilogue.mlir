// cpu.matmul on a matmul with a bias+ReLU epilogue: the default schedule for a fixed AVX2
// machine with 2 threads (scf.forall across the cores), a serial configuration from a file
// (tile_k slices, a 2x16 register tile kept in a vector iter_arg of the k loop, broadcast+FMA
// per row), and the default of this host with the schedules printed.
//
// DEFINE: %{lower} = wpk-opt %s --wpk-lower-to-linalg --canonicalize --cse
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/avx2-2threads.json | FileCheck %s --check-prefix=DEFAULT
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/matmul.json | FileCheck %s --check-prefix=CONFIG
// RUN: %{lower} --wpk-apply-schedule --wpk-print-schedules 2>&1 >/dev/null | FileCheck %s --check-prefix=PRINT
// RUN: %{lower} --wpk-apply-schedule='%S/Inputs/matmul.json print-schedules' 2>&1 >/dev/null | FileCheck %s --check-prefix=PRINT-CONFIG

// DEFAULT-LABEL: func.func @main
// DEFAULT:         scf.forall
// DEFAULT:           vector.fma {{.*}} : vector<{{[0-9]+}}xf32>
// DEFAULT:           arith.maximumf {{.*}} : vector<
// DEFAULT:           scf.forall.in_parallel
// DEFAULT-NOT:   linalg.matmul

// CONFIG-LABEL: func.func @main
// CONFIG-NOT:     scf.forall
// CONFIG-DAG:     %[[C2:.*]] = arith.constant 2 : index
// CONFIG-DAG:     %[[C16:.*]] = arith.constant 16 : index
// CONFIG-DAG:     %[[C32:.*]] = arith.constant 32 : index
// CONFIG:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[C16]] iter_args(%{{.*}}) -> (tensor<32x48xf32>)
// The fill, in rows of 16.
// CONFIG:           vector.transfer_write {{.*}} : vector<1x16xf32>, tensor<1x16xf32>
// k in slices of 32, then the 2x16 register tiles.
// CONFIG:           scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[C32]]
// CONFIG:             scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[C2]]
// CONFIG:               scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[C16]]
// CONFIG:                 %[[ACC:.*]] = vector.transfer_read {{.*}} : tensor<2x16xf32>, vector<2x16xf32>
// CONFIG:                 scf.for {{.*}} iter_args(%{{.*}} = %[[ACC]]) -> (vector<2x16xf32>)
// CONFIG:                   vector.broadcast {{.*}} : f32 to vector<16xf32>
// CONFIG:                   vector.fma {{.*}} : vector<16xf32>
// CONFIG:                   vector.fma {{.*}} : vector<16xf32>
// CONFIG-NOT:               vector.fma
// CONFIG:                   scf.yield {{.*}} : vector<2x16xf32>
// CONFIG:                 vector.transfer_write {{.*}} : vector<2x16xf32>, tensor<2x16xf32>
// The epilogue, in rows of 16.
// CONFIG:           arith.addf {{.*}} : vector<1x16xf32>
// CONFIG:           arith.maximumf {{.*}} : vector<1x16xf32>
// CONFIG-NOT:     linalg.matmul

// PRINT:      // target cpu: {{[0-9]+}} threads, {{[0-9]+}} f32 lanes x {{[0-9]+}} vector registers; configurations from default schedules
// PRINT-NEXT: // kernel k0_matmul (linalg.matmul + fill + epilogue, loops [{{.*}}]): cpu.matmul
// PRINT-NEXT: //   config (default): {"tile_m": {{[0-9]+}}, "tile_n": {{.*}}}
// PRINT-NEXT: //   cpu.matmul schedule of k0_matmul: {{[0-9]+}} configurations before constraints
// PRINT-NEXT: //     tile_m = {{[0-9]+}}  domain [{{.*}}]  rows of the outer (per-thread) output tile
// PRINT:      //     reg_n = {{[0-9]+}}  domain [{{.*}}]
// PRINT:      //     constraint register budget on reg_m, reg_n

// PRINT-CONFIG: configurations from {{.*}}matmul.json
// PRINT-CONFIG: //   config (requested): {"tile_m": 16, "tile_n": 48, "tile_k": 32, "reg_m": 2, "reg_n": 16, "parallel": false

func.func @main(%a: tensor<32x64xf32>, %b: tensor<64x48xf32>, %bias: tensor<48xf32>) -> tensor<32x48xf32> {
  %0 = "wpk.fused_matmul"(%a, %b, %bias) {epilogue = ["add", "relu"], epilogue_params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>} : (tensor<32x64xf32>, tensor<64x48xf32>, tensor<48xf32>) -> tensor<32x48xf32>
  return %0 : tensor<32x48xf32>
}
