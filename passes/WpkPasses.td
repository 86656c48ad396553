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

def WpkFoldConstants : Pass<"wpk-fold-constants", "::mlir::ModuleOp"> {
  let summary = "Evaluate ops whose operands are all weights or constants, replacing them by new weights";
  let description = [{
    Every `wpk` op whose operands are all produced by `wpk.weight` or
    `wpk.constant` (transposes, reshapes, pads and arithmetic on weights, shape
    computations, even a convolution of two weights) is evaluated with numpy in
    float64 and replaced by a `wpk.weight` holding the f32 result (a
    `wpk.constant` when it has one element). New arrays are registered in the
    module's weight table, which the compile API hands over and `wpk-opt`
    decodes from the printed resources. Weights left unused are erased.
  }];
}

def WpkFoldBatchNorm : Pass<"wpk-fold-batchnorm", "::mlir::ModuleOp"> {
  let summary = "Fold inference batch_norm into its conv2d/gemm/matmul producer, else into a scale and shift";
  let description = [{
    A `wpk.batch_norm` with constant parameters computes `x * s + t` per channel
    with `s = scale / sqrt(variance + epsilon)` and `t = bias - mean * s`. When
    `x` has no other use and comes from a `wpk.conv2d` with a constant filter
    (and bias), the filter is scaled by `s` per output channel and the bias
    becomes `bias * s + t`; from a `wpk.gemm` with constant `b` (and `c`), the
    columns of `op(b)` are scaled and `c` becomes `beta * c * s + t`; from a 2-D
    `wpk.matmul` with a constant right operand, a `wpk.gemm` with the scaled
    operand and `c = t` replaces both. Any other such batch_norm becomes
    `wpk.elementwise(x, s, t) {steps = ["mul", "add"]}`.
  }];
}

def WpkFoldTranspose : Pass<"wpk-fold-transpose", "::mlir::ModuleOp"> {
  let summary = "Fold a transpose that swaps the last two dims of a matmul's right operand into the matmul";
  let description = [{
    `wpk.matmul(a, wpk.transpose(x, perm))`, the transpose used by that matmul
    only, both operands of rank >= 2 and `perm[-2]` the last dimension of `x`,
    becomes `wpk.matmul_transposed(a, y)` with `y = wpk.transpose(x, q)`, `q`
    being `perm` with its last two entries exchanged (`y = x` when `q` is the
    identity): K^T in attention (`perm = [0, 1, 3, 2]`, or `[0, 2, 3, 1]` on
    [B, S, H, D] keys) is read transposed by the matmul's indexing maps
    instead of materialized. Other transposes stay.
  }];
}

def WpkFuseAttention : Pass<"wpk-fuse-attention", "::mlir::ModuleOp"> {
  let summary = "Recognize softmax(q k^T * scale + mask) v as one attention kernel";
  let description = [{
    `wpk.matmul(wpk.softmax(s + mask, axis = 3), v)` with
    `s = wpk.matmul_transposed(q, k)` (or a `wpk.matmul` of `q` and a
    `wpk.transpose` whose perm moves the last dim of its input to dim 2, as
    wpk-fold-transpose folds it), optionally multiplied or divided by a
    one-element constant, the mask add optional (either operand order, any
    mask broadcasting to the scores), q, k, v of rank 4 sharing [B, H] and
    every intermediate used only by the next op, becomes
    `wpk.attention(q, k, v, mask) {scale}`. A constant factor on `q` or `k`
    (or on the transposed k) used only by the first product folds into `scale`. Runs at -O2 after
    `wpk-fold-transpose`. A Where-applied (causal) mask is not matched.
  }];
}

def WpkFuseLayerNorm : Pass<"wpk-fuse-layernorm", "::mlir::ModuleOp"> {
  let summary = "Recognize the decomposed LayerNorm of older exporters as one layer_norm kernel";
  let description = [{
    `d = x - reduce_mean(x)`, `v = reduce_mean(d * d)` (or `pow(d, 2)`) over the
    same trailing axes with keepdims, `y = d / sqrt(v + eps)` with a one-element
    constant `eps`, optionally then `y * scale` and `+ bias` broadcasting along
    the normalized dimensions, every intermediate used only in the pattern,
    becomes `wpk.layer_norm(x, scale, bias) {axis, epsilon}` (a scale of ones
    without the multiplication). Runs at -O2 before `wpk-fuse`.
  }];
}

def WpkFuse : Pass<"wpk-fuse", "::mlir::ModuleOp"> {
  let summary = "Fuse epilogues into conv2d/matmul/gemm, elementwise chains into one kernel, pads into conv/pool";
  let description = [{
    Anchor ops (`wpk.conv2d`, `wpk.matmul`, `wpk.gemm`) absorb the elementwise
    ops that follow their single-use result without changing its shape (bias
    add, residual add, relu, clip/relu6, leaky_relu, sigmoid, tanh, and
    `x * sigmoid(x)` as one `silu` step) into `wpk.fused_conv2d`,
    `wpk.fused_matmul` or `wpk.fused_gemm`, whose `epilogue` attribute lists
    the steps. Remaining chains of elementwise ops become one
    `wpk.elementwise`. A constant `wpk.pad` of the spatial dimensions folds
    into the pads of the following conv (pad value 0), max_pool (-inf) or
    avg_pool (0, counting pads; not in ceil_mode). A fused op has at most
    three side operands, so longer chains split into several kernels. After
    this pass every op of `@main` other than weights and constants is one
    kernel.
  }];
}

def WpkConvertLayout : Pass<"wpk-convert-layout", "::mlir::ModuleOp"> {
  let summary = "Run convolution regions in the blocked channel layout NCHW[b]c, filters packed at compile time";
  let description = [{
    After wpk-fuse: every conv2d / fused_conv2d with a constant filter whose
    channels fit the blocks becomes a `wpk.blocked_conv2d` with its filter and
    bias packed at compile time; `wpk.elementwise` ops (residual adds,
    per-channel scale and shift, repacked) and max/avg pooling whose operand
    is blocked follow it into the layout. `wpk.from_blocked` / `wpk.to_blocked`
    reorders sit only where a region begins or ends (graph inputs and results,
    flatten, gemm, softmax, reshape, global pooling, any op that is not
    layout-aware). `block` defaults to the host's vector width in f32 lanes
    (16 with AVX-512, 8 with AVX2). A first conv with fewer input channels
    than a block reads them in blocks of one channel (NCHW memory). Left NCHW: convs whose output
    channels would be padded by more than half (unless `force`), grouped convs whose group
    sizes are not block multiples, elementwise ops dividing by a tensor or
    broadcasting along channels.
  }];
  let options = [
    Option<"block", "block", "int64_t", /*default=*/"0",
           "channels per block (0: the host's vector width in f32 lanes)">,
    Option<"force", "force", "bool", /*default=*/"false",
           "also convert convs whose output channels would be padded by more than half">,
    Option<"regions", "regions", "std::string", /*default=*/"\"\"",
           "per-region choice name:nchw|name:<block>,... (a region: ops joined through blocked values, named by its first conv; unlisted: the rule)">,
  ];
}

def WpkCleanup : Pass<"wpk-cleanup", "::mlir::ModuleOp"> {
  let summary = "Erase dead wpk ops and merge duplicate ones";
  let description = [{
    Upstream `canonicalize` and `cse` do not touch IRDL-defined ops (they have
    no side-effect interface, so they are neither trivially dead nor pure).
    This pass erases `wpk` ops whose results are unused and replaces an op with
    the same name, operands, attributes and result types as an earlier op of
    its block by that op (e.g. two `wpk.weight` ops of one resource).
  }];
}

def WpkOutlineWeights : Pass<"wpk-outline-weights", "::mlir::ModuleOp"> {
  let summary = "Turn the wpk.weight ops of @main into trailing function arguments";
  let description = [{
    The CPU runtime passes the weight arrays as memrefs at call time, so the
    JIT never compiles megabytes of constants.
  }];
}

def WpkApplySchedule : Pass<"wpk-apply-schedule", "::mlir::ModuleOp"> {
  let summary = "Apply per-kernel schedule configurations (JSON) to linalg on tensors, for the CPU or CUDA";
  let description = [{
    Input: linalg on tensors with a `func.func @main` (what `wpk-lower-to-linalg`
    produces). The options name a JSON file, `{"target": "cpu" | "cuda", "arch":
    "sm_90", "cpu": {"threads": 2, "vector_lanes": 8, ...}, "kernels":
    {"k0_matmul": {...knobs...}, "conv": {...}}}` (every key optional; a file
    with none of them is the "kernels" object), by kernel name or kind; knobs
    left out take the template's default. Target cpu: every kernel is scheduled
    in place (tiles, `scf.forall` across the cores, vectorization, vector ops
    lowered), before bufferization. Target cuda: the module becomes the device
    module of the GPU backend after its transform schedules (`stage=schedule`)
    or lowered to NVVM (`stage=nvvm`). `print-schedules` prints each kernel's
    template, configuration and search space as `//` lines on stderr. An
    unknown kernel or knob, a value outside its domain or a violated constraint
    is an error naming the kernel, the knob and the reason. In wpk-opt:
    `--wpk-apply-schedule[=FILE]`, `--wpk-print-schedules`,
    `--wpk-schedule-stage=nvvm`.
  }];
  let options = [
    Option<"config", "config", "std::string", /*default=*/"\"\"",
           "JSON schedule file (also accepted as a bare first option)">,
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "cpu or cuda (overrides the file)">,
    Option<"arch", "arch", "std::string", /*default=*/"\"sm_90\"",
           "CUDA architecture (overrides the file)">,
    Option<"stage", "stage", "std::string", /*default=*/"\"schedule\"",
           "cuda: print after the schedules (schedule) or lowered to NVVM (nvvm)">,
    Option<"printSchedules", "print-schedules", "bool", /*default=*/"false",
           "print each kernel's template, configuration and search space (stderr)">,
  ];
}
