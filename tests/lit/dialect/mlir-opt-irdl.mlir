// The committed IRDL file alone defines the dialect for upstream mlir-opt.
// RUN: mlir-opt --irdl-file=%irdl %s | FileCheck %s
// RUN: mlir-opt --irdl-file=%irdl %s | mlir-opt --irdl-file=%irdl | FileCheck %s
// RUN: not mlir-opt %s 2>&1 | FileCheck %s --check-prefix=NO-IRDL

// NO-IRDL: error: operation being parsed with an unregistered dialect

// CHECK-LABEL: func.func @f(
// CHECK:         %[[R:.*]] = "wpk.relu"(%{{.*}}) : (tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK:         %[[C:.*]] = "wpk.conv2d"(%{{.*}}, %{{.*}}) {dilations = array<i64: 1, 1>, groups = 1 : i64, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>}
// CHECK:         return %[[R]], %[[C]]
func.func @f(%a: tensor<2x3xf32>, %x: tensor<1x1x4x4xf32>, %w: tensor<1x1x1x1xf32>) -> (tensor<2x3xf32>, tensor<1x1x4x4xf32>) {
  %0 = "wpk.relu"(%a) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = "wpk.conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>) -> tensor<1x1x4x4xf32>
  return %0, %1 : tensor<2x3xf32>, tensor<1x1x4x4xf32>
}
