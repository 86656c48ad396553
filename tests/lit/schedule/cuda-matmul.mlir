// target cuda: a matmul with a bias+ReLU epilogue under a search-space configuration
// (16x16 blocks, 2x2 per thread, k in slices of 16, sm_80): the device module right after the
// transform schedules (block and thread scf.foralls on tensors), then lowered to NVVM; the
// kernel's search space printed; a configuration the space rejects.
//
// DEFINE: %{lower} = wpk-opt %s --wpk-lower-to-linalg --canonicalize --cse
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/cuda-matmul.json | FileCheck %s
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/cuda-matmul.json --wpk-schedule-stage=nvvm | FileCheck %s --check-prefix=NVVM
// RUN: %{lower} --wpk-apply-schedule='%S/Inputs/cuda-matmul.json print-schedules' 2>&1 >/dev/null | FileCheck %s --check-prefix=PRINT
// RUN: echo '{"target": "cuda", "kernels": {"k0_matmul": {"block_tile": [16, 16], "thread_tile": [3, 3]}}}' > %t.json
// RUN: not %{lower} --wpk-apply-schedule=%t.json 2>&1 | FileCheck %s --check-prefix=INVALID

// CHECK-LABEL: func.func @k0_matmul(
// CHECK:         scf.forall ({{.*}}) in (2, 3)
// CHECK:           scf.forall ({{.*}}) in (8, 8)
// CHECK:             linalg.fill
// CHECK:             scf.for {{.*}} step %c16
// CHECK:               linalg.matmul {{.*}} ins({{.*}} : tensor<2x16xf32>, tensor<16x2xf32>) outs({{.*}} : tensor<2x2xf32>)
// CHECK:             linalg.generic
// CHECK:               arith.maximumf
// CHECK:           {mapping = [#gpu.thread<y>, #gpu.thread<x>]}
// CHECK:         {mapping = [#gpu.block<y>, #gpu.block<x>]}

// NVVM:      module attributes {gpu.container_module}
// NVVM:        gpu.module @k0_matmul_kernel [#nvvm.target<{{.*}}chip = "sm_80"{{.*}}>] attributes {wpk.gpu.block = array<i32: 8, 8, 1>, wpk.gpu.grid = array<i32: 3, 2, 1>
// NVVM:          llvm.func @k0_matmul_kernel(
// NVVM-SAME:       nvvm.kernel
// NVVM:            nvvm.read.ptx.sreg.ctaid.x
// NVVM:            nvvm.read.ptx.sreg.tid.x

// PRINT:      // target cuda sm_80: stage schedule; configurations from {{.*}}cuda-matmul.json
// PRINT-NEXT: // kernel k0_matmul (matmul): cuda.matmul
// PRINT-NEXT: //   config (search space): {"block_tile": [16, 16], "thread_tile": [2, 2], "reduction_tile": [16], "promote_shared": false
// PRINT-NEXT: //   launch grid (3, 2, 1) block (8, 8, 1)
// PRINT-NEXT: //   cuda.matmul schedule of k0_matmul: {{[0-9]+}} configurations before constraints
// PRINT-NEXT: //     block_tile = {{.*}}  domain {{.*}}

// INVALID: wpk-opt: error: wpk-apply-schedule ({{.*}}.json): kernel k0_matmul: knob 'thread_tile': value (3, 3) is not in its domain

func.func @main(%a: tensor<32x64xf32>, %b: tensor<64x48xf32>, %bias: tensor<48xf32>) -> tensor<32x48xf32> {
  %0 = "wpk.fused_matmul"(%a, %b, %bias) {epilogue = ["add", "relu"], epilogue_params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>} : (tensor<32x64xf32>, tensor<64x48xf32>, tensor<48xf32>) -> tensor<32x48xf32>
  return %0 : tensor<32x48xf32>
}
