// wpk-verify: element types of the integer, bool and indexing ops (ODS constraints through the
// generated ELEMENT_TYPES table, and each op's element rule).
// RUN: wpk-opt %s --split-input-file --verify-diagnostics --wpk-verify

func.func @gather_f64_indices(%d: tensor<10x4xf32>, %i: tensor<3xf32>) -> tensor<3x4xf32> {
  // expected-error @+1 {{'wpk.gather' op operand #1 must be a statically shaped i64 or i32 tensor, but got tensor<3xf32>}}
  %0 = "wpk.gather"(%d, %i) {axis = 0 : i64} : (tensor<10x4xf32>, tensor<3xf32>) -> tensor<3x4xf32>
  return %0 : tensor<3x4xf32>
}

// -----

func.func @gather_result_element(%d: tensor<10x4xf32>, %i: tensor<3xi64>) -> tensor<3x4xi64> {
  // expected-error @+1 {{'wpk.gather' op the result element type i64 differs from the data's f32}}
  %0 = "wpk.gather"(%d, %i) {axis = 0 : i64} : (tensor<10x4xf32>, tensor<3xi64>) -> tensor<3x4xi64>
  return %0 : tensor<3x4xi64>
}

// -----

func.func @gather_shape(%d: tensor<10x4xf32>, %i: tensor<2x3xi32>) -> tensor<3x4xf32> {
  // expected-error @+1 {{'wpk.gather' op result shape [3, 4] does not match the expected shape [2, 3, 4]}}
  %0 = "wpk.gather"(%d, %i) {axis = 0 : i64} : (tensor<10x4xf32>, tensor<2x3xi32>) -> tensor<3x4xf32>
  return %0 : tensor<3x4xf32>
}

// -----

func.func @compare_mixed(%a: tensor<4xf32>, %b: tensor<4xi64>) -> tensor<4xi1> {
  // expected-error @+1 {{'wpk.compare' op operands must have one element type, but have 'lhs' f32, 'rhs' i64}}
  %0 = "wpk.compare"(%a, %b) {predicate = "lt"} : (tensor<4xf32>, tensor<4xi64>) -> tensor<4xi1>
  return %0 : tensor<4xi1>
}

// -----

func.func @compare_result(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'wpk.compare' op result #0 must be a statically shaped i1 tensor, but got tensor<4xf32>}}
  %0 = "wpk.compare"(%a, %b) {predicate = "lt"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @compare_predicate(%a: tensor<4xi64>, %b: tensor<1xi64>) -> tensor<4xi1> {
  // expected-error @+1 {{'wpk.compare' op attribute 'predicate' is 'ne', expected one of eq, lt, le, gt, ge}}
  %0 = "wpk.compare"(%a, %b) {predicate = "ne"} : (tensor<4xi64>, tensor<1xi64>) -> tensor<4xi1>
  return %0 : tensor<4xi1>
}

// -----

func.func @relu_of_int(%a: tensor<4xi64>) -> tensor<4xi64> {
  // expected-error @+1 {{'wpk.relu' op operand #0 must be a statically shaped f32 tensor, but got tensor<4xi64>}}
  %0 = "wpk.relu"(%a) : (tensor<4xi64>) -> tensor<4xi64>
  return %0 : tensor<4xi64>
}

// -----

func.func @where_branches(%c: tensor<4xi1>, %a: tensor<4xf32>, %b: tensor<4xi32>) -> tensor<4xf32> {
  // expected-error @+1 {{'wpk.where' op operands must have one element type, but have 'lhs' f32, 'rhs' i32}}
  %0 = "wpk.where"(%c, %a, %b) : (tensor<4xi1>, tensor<4xf32>, tensor<4xi32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @not_of_float(%a: tensor<4xf32>) -> tensor<4xi1> {
  // expected-error @+1 {{'wpk.not' op operand #0 must be a statically shaped i1 tensor, but got tensor<4xf32>}}
  %0 = "wpk.not"(%a) : (tensor<4xf32>) -> tensor<4xi1>
  return %0 : tensor<4xi1>
}

// -----

func.func @constant_type(%a: tensor<2xi64>) -> tensor<2xi64> {
  // expected-error @+1 {{'wpk.constant' op 'value' has type tensor<2xi32>, but the result type is tensor<2xi64>}}
  %0 = "wpk.constant"() {value = dense<[1, 2]> : tensor<2xi32>} : () -> tensor<2xi64>
  return %0 : tensor<2xi64>
}
