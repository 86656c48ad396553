"""Bad IR and bad options for `wpk-opt`: invalid shapes, unknown ops and passes, wrong pass
options, ops the graph passes would carry through unverified, weights without data."""

from __future__ import annotations

from dataclasses import replace

from case import CORRECT, Case

K = "wpk-opt"

RELU_BAD_SHAPE = (
    "func.func @main(%x: tensor<2x3xf32>) -> tensor<5xf32> {\n"
    '  %0 = "wpk.relu"(%x) : (tensor<2x3xf32>) -> tensor<5xf32>\n  return %0 : tensor<5xf32>\n}\n'
)
CONV_BAD = ('func.func @main(%x: tensor<1x2x4x4xf32>, %w: tensor<3x2x3x3xf32>) -> tensor<1x3x9x9xf32> {\n'
            '  %c = "wpk.conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, '
            'dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>) -> '
            'tensor<1x3x9x9xf32>\n  %r = "wpk.relu"(%c) : (tensor<1x3x9x9xf32>) -> tensor<1x3x9x9xf32>\n'
            '  return %r : tensor<1x3x9x9xf32>\n}\n')  # fmt: skip
WEIGHT_NO_DATA = ('func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {\n'
                  '  %w = "wpk.weight"() {value = dense_resource<missing_blob> : tensor<4xf32>} : () -> tensor<4xf32>\n'
                  '  %n = "wpk.relu"(%w) : (tensor<4xf32>) -> tensor<4xf32>\n'
                  '  %y = "wpk.add"(%x, %n) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>\n'
                  '  return %y : tensor<4xf32>\n}\n')  # fmt: skip
GOOD = (
    "func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {\n"
    '  %0 = "wpk.relu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>\n  return %0 : tensor<2x3xf32>\n}\n'
)

IR = {  # name: (IR text, extra argv, outcome when it succeeds)
    "negative-dim": ("func.func @main(%x: tensor<-1xf32>) { return }\n", [], None),
    "unknown-wpk-op": ('func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = "wpk.bogus"(%x) : '
                       '(tensor<2xf32>) -> tensor<2xf32>\n  return %0 : tensor<2xf32>\n}\n', [], None),
    "unknown-dialect-op": ('func.func @main(%x: tensor<2xf32>) { "foo.bar"(%x) : (tensor<2xf32>) -> () return }\n',
                           [], None),
    "relu-bad-result-shape": (RELU_BAD_SHAPE, [], None),
    "relu-bad-shape-O2": (RELU_BAD_SHAPE, ["-O2"], None),
    "relu-bad-shape-fuse": (RELU_BAD_SHAPE, ["--wpk-fuse"], None),
    "relu-bad-shape-lower": (RELU_BAD_SHAPE, ["--wpk-lower-to-linalg"], None),
    "conv-bad-result-O2": (CONV_BAD, ["-O2"], None),
    "conv-bad-result-fuse": (CONV_BAD, ["--wpk-fuse"], None),
    "conv-bad-result-lower": (CONV_BAD, ["--wpk-lower-to-linalg"], None),
    "fold-weight-without-data": (WEIGHT_NO_DATA, ["--wpk-fold-constants"], None),
    "outline-weight-without-data": (WEIGHT_NO_DATA, ["--wpk-outline-weights"], None),
    "lower-weight-without-data": (WEIGHT_NO_DATA, ["-O2", "--wpk-lower-to-linalg"], None),
    "syntax-error": ("func.func @main( { return\n", [], None),
    "empty-input": ("", [], CORRECT),
    "binary-garbage": ("\x00\xff\xfe" * 1000, [], None),
    "no-main": ("func.func @other() { return }\n", ["-O2"], CORRECT),
    "good-ir-unknown-pass": (GOOD, ["--wpk-frobnicate"], None),
    "good-ir-pipeline-unknown-pass": (GOOD, ["--pass-pipeline=builtin.module(wpk-frobnicate)"], None),
    "good-ir-pipeline-unbalanced": (GOOD, ["--pass-pipeline=builtin.module(wpk-fuse"], None),
    "good-ir-pass-bad-option": (GOOD, ["--pass-pipeline=builtin.module(wpk-fuse{bogus=1})"], None),
    "good-ir-upstream-bad-option": (GOOD, ["--pass-pipeline=builtin.module(canonicalize{max-iterations=x})"], None),
    "good-ir-schedule-missing-file": (GOOD, ["--wpk-lower-to-linalg", "--wpk-apply-schedule=nope.json"], None),
    "good-ir-schedule-list-json": (GOOD, ["--wpk-lower-to-linalg", "--wpk-apply-schedule=list.json"], None),
    "good-ir-schedule-stage-bogus": (GOOD, ["--wpk-schedule-stage=ptx"], None),
    "good-ir-o-is-a-directory": (GOOD, ["-o", "outdir"], None),
    "good-ir-o-under-a-file": (GOOD, ["-o", "afile/out.mlir"], None),
    "good-ir-O7": (GOOD, ["-O7"], None),
    "split-input-bad-chunk": (GOOD + "// -----\nfunc.func @x( {\n", ["--split-input-file"], None),
    "verify-diagnostics-unexpected": (RELU_BAD_SHAPE, ["--verify-diagnostics"], None),
    "long-line-10mb": ("// " + "x" * 10_000_000 + "\n" + GOOD, [], CORRECT),
    "huge-dense-attr-shape": ('func.func @main() { %0 = arith.constant dense<1.0> : tensor<1048576x1048576xf32> '
                              "return }\n", ["-O2"], None),
    "import-onnx-not-onnx": (GOOD, ["--import-onnx"], None),
    "import-onnx-bad-input-shape": (GOOD, ["--import-onnx", "--input-shape", "x=axb"], None),
}  # fmt: skip

CASES: list[Case] = []
for name, (text, argv, on_success) in IR.items():
    setup = (f"Path('in.mlir').write_text({text!r})\nPath('outdir').mkdir()\nPath('afile').write_text('x')\n"
             "Path('list.json').write_text('[1]')\n")  # fmt: skip
    CASES.append(Case(K, name, f"{setup}wpk_opt(['in.mlir', *{argv!r}])\n", on_success=on_success or "wrong-answer",
                      note="wpk-opt in.mlir " + " ".join(argv)))  # fmt: skip
CASES.append(Case(K, "missing-input-file", "wpk_opt(['nope.mlir'])\n", note="no such file"))
CASES.append(Case(K, "input-is-a-directory", "Path('d').mkdir()\nwpk_opt(['d'])\n", note="a directory"))

# Run with --all only: kept out of the default run so that it stays within ~12 minutes.
EXTENDED = {
    "relu-bad-shape-lower",
    "binary-garbage",
    "import-onnx-bad-input-shape",
    "input-is-a-directory",
    "outline-weight-without-data",
    "good-ir-O7",
    "unknown-dialect-op",
    "no-main",
    "good-ir-upstream-bad-option",
    "good-ir-schedule-stage-bogus",
}
CASES = [replace(c, extended=True) if c.name in EXTENDED else c for c in CASES]
