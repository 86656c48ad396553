// The schedule shape woodpecker.gpu generates, written out with upstream transform ops only:
// a matmul whose bias+ReLU epilogue updates the accumulator in place is tiled to blocks,
// fused, tiled to threads (num_threads), bufferized, mapped to gpu.launch, then outlined and
// lowered to NVVM with bare-pointer kernel arguments.
//
// DEFINE: %{schedule} = builtin.module(transform-interpreter{entry-point=tile},canonicalize,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},canonicalize,cse,transform-interpreter{entry-point=map},canonicalize,cse)
//
// RUN: mlir-opt %s --pass-pipeline='%{schedule}' | FileCheck %s
// RUN: mlir-opt %s --pass-pipeline='%{schedule}' \
// RUN:   | mlir-opt --pass-pipeline='builtin.module(func.func(convert-linalg-to-loops),gpu-launch-sink-index-computations,gpu-kernel-outlining,nvvm-attach-target{chip=sm_90 features=+ptx80},gpu.module(convert-gpu-to-nvvm{use-bare-ptr-memref-call-conv=1}))' \
// RUN:   | FileCheck %s --check-prefix=NVVM

#id = affine_map<(d0, d1) -> (d0, d1)>
#col = affine_map<(d0, d1) -> (d1)>

// CHECK-LABEL: func.func @matmul_bias_relu
// CHECK-SAME:    %[[A:.*]]: memref<64x32xf32>, %[[B:.*]]: memref<32x48xf32>, %[[BIAS:.*]]: memref<48xf32>, %[[OUT:.*]]: memref<64x48xf32>
// CHECK-DAG:     %[[C2:.*]] = arith.constant 2 : index
// CHECK-DAG:     %[[C3:.*]] = arith.constant 3 : index
// CHECK-DAG:     %[[C8:.*]] = arith.constant 8 : index
// CHECK-DAG:     %[[C16:.*]] = arith.constant 16 : index
// CHECK:         gpu.launch blocks({{.*}}) in ({{.*}} = %[[C3]], {{.*}} = %[[C2]], {{.*}}) threads({{.*}}) in ({{.*}} = %[[C16]], {{.*}} = %[[C8]], {{.*}})
// CHECK:           gpu.block_id x
// CHECK:           gpu.block_id y
// CHECK:           memref.subview %[[OUT]]
// CHECK:           gpu.thread_id x
// CHECK:           gpu.thread_id y
// CHECK:           linalg.fill
// CHECK:           linalg.matmul
// CHECK:           linalg.generic
// CHECK:             arith.addf
// CHECK:             arith.maximumf
// CHECK:           gpu.barrier
// CHECK:           gpu.terminator

// NVVM:      gpu.launch_func @matmul_bias_relu_kernel::@matmul_bias_relu_kernel
// NVVM:      gpu.module @matmul_bias_relu_kernel [#nvvm.target<chip = "sm_90", features = "+ptx80">]
// NVVM:        llvm.func @matmul_bias_relu_kernel(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr)
// NVVM-SAME:     gpu.kernel
// NVVM-SAME:     nvvm.kernel
// NVVM-SAME:     nvvm.maxntid = array<i32: 16, 8, 1>
// NVVM-DAG:      nvvm.read.ptx.sreg.ctaid.x
// NVVM-DAG:      nvvm.read.ptx.sreg.tid.x
// NVVM:          llvm.fmul
// NVVM:          nvvm.barrier0
func.func @matmul_bias_relu(%a: tensor<64x32xf32>, %b: tensor<32x48xf32>, %bias: tensor<48xf32>,
                            %out: tensor<64x48xf32>) -> tensor<64x48xf32> {
  %zero = arith.constant 0.0 : f32
  %init = linalg.fill ins(%zero : f32) outs(%out : tensor<64x48xf32>) -> tensor<64x48xf32>
  %acc = linalg.matmul ins(%a, %b : tensor<64x32xf32>, tensor<32x48xf32>)
                       outs(%init : tensor<64x48xf32>) -> tensor<64x48xf32>
  %res = linalg.generic {indexing_maps = [#col, #id], iterator_types = ["parallel", "parallel"]}
      ins(%bias : tensor<48xf32>) outs(%acc : tensor<64x48xf32>) {
  ^bb0(%x: f32, %y: f32):
    %s = arith.addf %y, %x : f32
    %r = arith.maximumf %s, %zero : f32
    linalg.yield %r : f32
  } -> tensor<64x48xf32>
  return %res : tensor<64x48xf32>
}

module attributes {transform.with_named_sequence} {
  transform.named_sequence @tile(%root: !transform.any_op {transform.readonly}) {
    %epilogue = transform.structured.match ops{["linalg.generic"]} in %root : (!transform.any_op) -> !transform.any_op
    %matmul = transform.structured.match ops{["linalg.matmul"]} in %root : (!transform.any_op) -> !transform.any_op
    %fill = transform.structured.match ops{["linalg.fill"]} in %root : (!transform.any_op) -> !transform.any_op
    // Blocks: 32x16 output tiles.
    %tiled, %blocks = transform.structured.tile_using_forall %epilogue tile_sizes [32, 16]
        (mapping = [#gpu.block<y>, #gpu.block<x>]) : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    %mm_b, %blocks1 = transform.structured.fuse_into_containing_op %matmul into %blocks
        : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op)
    %fill_b, %blocks2 = transform.structured.fuse_into_containing_op %fill into %blocks1
        : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op)
    // Threads: 8x16 per block, 4x1 outputs each.
    %tiled_t, %threads = transform.structured.tile_using_forall %tiled num_threads [8, 16]
        (mapping = [#gpu.thread<y>, #gpu.thread<x>]) : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    %mm_t, %threads1 = transform.structured.fuse_into_containing_op %mm_b into %threads
        : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op)
    %fill_t, %threads2 = transform.structured.fuse_into_containing_op %fill_b into %threads1
        : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
  transform.named_sequence @map(%root: !transform.any_op {transform.readonly}) {
    %func = transform.structured.match ops{["func.func"]} in %root : (!transform.any_op) -> !transform.any_op
    %launch = transform.gpu.map_forall_to_blocks %func generate_gpu_launch : (!transform.any_op) -> !transform.any_op
    transform.gpu.map_nested_forall_to_threads %launch block_dims = [16, 8, 1] : (!transform.any_op) -> !transform.any_op
    transform.yield
  }
}
