// A matmul with a bias+ReLU epilogue under a search-space configuration (--knobs): the IR
// after the transform schedule (block and thread foralls, A/B tiles in workgroup memory,
// cooperative copies), the NVVM gpu.module with its launch, the PTX for sm_80; the default
// schedule on sm_90; a configuration the search space rejects.
//
// RUN: %python -m woodpecker.gpu %s --arch sm_80 --no-assemble --print-ir-after-schedule --print-nvvm --print-ptx \
// RUN:   --knobs 'matmul={"block_tile": [32, 16], "thread_tile": [4, 2], "reduction_tile": [8], "promote_shared": true, "vector_width": 2}' \
// RUN:   | FileCheck %s
// RUN: %python -m woodpecker.gpu %s --no-assemble --print-nvvm --print-ptx | FileCheck %s --check-prefix=SM90
// RUN: not %python -m woodpecker.gpu %s --no-assemble --knobs 'matmul={"block_tile": [64, 48], "thread_tile": [1, 1], "promote_shared": false}' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=INVALID

// CHECK-LABEL: IR after schedule
// CHECK:       func.func @k0_matmul(
// 32x16 output tiles over 64x48: a 2x3 grid.
// CHECK:         scf.forall ({{.*}}) in (2, 3)
// CHECK-DAG:       bufferization.alloc_tensor() {memory_space = #gpu.address_space<workgroup>} : tensor<8x16xf32>
// CHECK-DAG:       bufferization.alloc_tensor() {memory_space = #gpu.address_space<workgroup>} : tensor<32x8xf32>
// CHECK:           scf.forall ({{.*}}) in (8, 8)
// CHECK:             linalg.fill
// CHECK:           scf.for {{.*}} step %c8
// CHECK:             linalg.copy {{.*}}wpk.gpu.copy = 0
// CHECK:             {mapping = [#gpu.thread<linear_dim_1>, #gpu.thread<linear_dim_0>]}
// CHECK:             linalg.copy {{.*}}wpk.gpu.copy = 1
// CHECK:             linalg.matmul {{.*}} ins({{.*}} : tensor<4x8xf32>, tensor<8x2xf32>) outs({{.*}} : tensor<4x2xf32>)
// CHECK:             {mapping = [#gpu.thread<y>, #gpu.thread<x>]}
// CHECK:           linalg.generic
// CHECK:         {mapping = [#gpu.block<y>, #gpu.block<x>]}

// CHECK-LABEL: IR after nvvm
// CHECK:       gpu.module @k0_matmul_kernel [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">]
// CHECK-SAME:    wpk.gpu.block = array<i32: 8, 8, 1>, wpk.gpu.grid = array<i32: 3, 2, 1>, wpk.gpu.shared_bytes = 1536 : i64
// CHECK:         llvm.mlir.global external @__dynamic_shmem__0() {addr_space = 3 : i32, alignment = 16 : i64}
// CHECK:         llvm.func @k0_matmul_kernel(%{{.*}}: !llvm.ptr {llvm.noalias}, %{{.*}}: !llvm.ptr {llvm.noalias}, %{{.*}}: !llvm.ptr {llvm.noalias}, %{{.*}}: !llvm.ptr {llvm.noalias})
// CHECK-SAME:    nvvm.kernel, nvvm.maxntid = array<i32: 8, 8, 1>
// CHECK-DAG:     nvvm.read.ptx.sreg.ctaid.x range <i32, 0, 3>
// CHECK-DAG:     nvvm.read.ptx.sreg.tid.y range <i32, 0, 8>
// CHECK:         nvvm.barrier0

// CHECK: kernel k0_matmul_kernel kind=matmul grid=(3, 2, 1) block=(8, 8, 1) shared=1536
// CHECK-LABEL: PTX of k0_matmul_kernel
// CHECK:       .target sm_80
// CHECK:       .extern .shared .align 16 .b8 __dynamic_shmem__0[];
// CHECK:       .maxntid 8, 8, 1
// CHECK-DAG:   bar.sync
// CHECK-DAG:   ld.shared
// CHECK-DAG:   fma.rn.f32

// SM90:       gpu.module @k0_matmul_kernel [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// SM90-SAME:    wpk.gpu.block = array<i32: 12, 16, 1>, wpk.gpu.grid = array<i32: 1, 1, 1>, wpk.gpu.shared_bytes = 7168 : i64
// SM90:       kernel k0_matmul_kernel kind=matmul grid=(1, 1, 1) block=(12, 16, 1) shared=7168
// SM90:       .target sm_90
// SM90:       .maxntid 12, 16, 1

// INVALID: error: kernel k0_matmul: knob 'thread_tile': 3072 threads per block (block_tile (64, 48) / thread_tile (1, 1)) exceed 1024 on sm_90

#id = affine_map<(d0, d1) -> (d0, d1)>
#col = affine_map<(d0, d1) -> (d1)>
func.func @main(%a: tensor<64x32xf32>, %b: tensor<32x48xf32>, %bias: tensor<48xf32>) -> tensor<64x48xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64x48xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<64x48xf32>) -> tensor<64x48xf32>
  %m = linalg.matmul ins(%a, %b : tensor<64x32xf32>, tensor<32x48xf32>) outs(%f : tensor<64x48xf32>) -> tensor<64x48xf32>
  %r = linalg.generic {indexing_maps = [#id, #col, #id], iterator_types = ["parallel", "parallel"]}
      ins(%m, %bias : tensor<64x48xf32>, tensor<48xf32>) outs(%e : tensor<64x48xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    %t = arith.maximumf %s, %zero : f32
    linalg.yield %t : f32
  } -> tensor<64x48xf32>
  return %r : tensor<64x48xf32>
}
