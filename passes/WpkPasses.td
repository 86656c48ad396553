//===- WpkPasses.td - Woodpecker pass declarations ---------*- tablegen -*-===//
//
// Declarations of Woodpecker's passes in MLIR's pass ODS format. The passes
// themselves are Python callables (python/woodpecker/passes.py registers them);
// this file is the reference for their names, summaries and options:
// `mlir-tblgen -gen-pass-doc` renders docs/WpkPasses.md, and
// tests/py/test_pass_declarations.py checks that the Python registry and these
// declarations name the same passes with the same summaries.
//===----------------------------------------------------------------------===//

include "mlir/Pass/PassBase.td"

def WpkVerify : Pass<"wpk-verify", "::mlir::ModuleOp"> {
  let summary = "Check what IRDL cannot: static f32 tensors, ranks and attribute lengths";
  let description = [{
    IRDL checks operand counts and attribute kinds. This pass checks the rest of
    the `wpk` contract: every operand and result is a statically shaped f32
    ranked tensor, and op-specific ranks and attribute lengths hold (conv2d and
    pooling take 4-D tensors, two strides, four pads, and so on).
  }];
}

def WpkLowerToLinalg : Pass<"wpk-lower-to-linalg", "::mlir::ModuleOp"> {
  let summary = "Lower every wpk op to linalg, tensor, arith and math on tensors";
  let description = [{
    Convolutions, matmuls and pools become named linalg ops
    (`linalg.conv_2d_nchw_fchw`, `linalg.depthwise_conv_2d_nchw_chw`,
    `linalg.matmul`, `linalg.batch_matmul`, `linalg.pooling_nchw_max`, ...) so
    that schedules can match them; elementwise ops become `linalg.generic` with
    numpy-broadcasting indexing maps; weights become `arith.constant`.
  }];
}

def WpkOutlineWeights : Pass<"wpk-outline-weights", "::mlir::ModuleOp"> {
  let summary = "Turn the wpk.weight ops of @main into trailing function arguments";
  let description = [{
    The CPU runtime passes the weight arrays as memrefs at call time, so the
    JIT never compiles megabytes of constants.
  }];
}
