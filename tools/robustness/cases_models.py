"""Malformed and unusual ONNX models (onnx.helper): each is compiled and run for the CPU, and
is either a clean error or equal to ONNX Runtime (rtol 1e-4, atol 1e-5, float64)."""

from __future__ import annotations

from dataclasses import replace
from textwrap import dedent

from case import Case

K = "models"

X23 = '[vi("x", [2, 3])]'
Y23 = '[vi("y", [2, 3])]'
X4 = '[vi("x", [1, 2, 4, 4])]'

# name: (nodes, inputs, outputs, initializers, extra model keywords, note)
MODELS = {
    "no-outputs": ('[node("Relu", ["x"], ["y"])]', X23, "[]", "[]", "", "a graph without outputs"),
    "no-nodes-no-outputs": ("[]", X23, "[]", "[]", "", "an empty graph"),
    "unknown-op": ('[node("FrobnicateTensor", ["x"], ["y"])]', X23, Y23, "[]", "", "an op no opset has"),
    "op-in-unknown-domain": ('[helper.make_node("Relu", ["x"], ["y"], domain="com.example")]', X23, Y23, "[]", "",
                             "a custom domain"),
    "cyclic-graph": ('[node("Relu", ["x2"], ["y"]), node("Add", ["x", "y"], ["x2"])]', X23, Y23, "[]", "",
                     "a cycle through two nodes"),
    "self-loop": ('[node("Add", ["x", "y"], ["y"])]', X23, Y23, "[]", "", "a node reading its own output"),
    "undefined-input-tensor": ('[node("Add", ["x", "ghost"], ["y"])]', X23, Y23, "[]", "", "a node input nobody makes"),
    "duplicate-output-names": ('[node("Relu", ["x"], ["y"]), node("Sigmoid", ["x"], ["y"])]', X23, Y23, "[]", "",
                               "two nodes write one tensor"),
    "output-not-produced": ('[node("Relu", ["x"], ["y"])]', X23, '[vi("z", [2, 3])]', "[]", "",
                            "a graph output nothing computes"),
    "opset-7-add-relu": ('[node("Add", ["x", "x"], ["s"]), node("Relu", ["s"], ["y"])]', X23, Y23, "[]",
                         "opset=7, ir_version=3", "an old opset"),
    "opset-1-relu": ('[node("Relu", ["x"], ["y"])]', X23, Y23, "[]", "opset=1, ir_version=3", "opset 1"),
    "opset-99": ('[node("Relu", ["x"], ["y"])]', X23, Y23, "[]", "opset=99", "an opset from the future"),
    "undeclared-output-shape": ('[node("Relu", ["x"], ["y"])]', X23, '[vi("y", None)]', "[]", "",
                                "the output's shape is not declared"),
    "wrong-declared-output-shape": ('[node("Relu", ["x"], ["y"])]', X23, '[vi("y", [7, 7])]', "[]", "",
                                    "the declared output shape contradicts the op"),
    "untyped-output": ('[node("Relu", ["x"], ["y"])]', X23, '[helper.make_empty_tensor_value_info("y")]', "[]", "",
                       "an output without a type"),
    "symbolic-input-dim": ('[node("Relu", ["x"], ["y"])]', '[vi("x", ["N", 3])]', '[vi("y", ["N", 3])]', "[]", "",
                           "a symbolic dimension and no input_shapes"),
    "zero-size-input": ('[node("Relu", ["x"], ["y"])]', '[vi("x", [0, 3])]', '[vi("y", [0, 3])]', "[]", "",
                        "an empty tensor"),
    "scalar-input": ('[node("Relu", ["x"], ["y"])]', '[vi("x", [])]', '[vi("y", [])]', "[]", "", "rank 0"),
    "rank-7-input": ('[node("Relu", ["x"], ["y"])]', '[vi("x", [1, 2, 1, 2, 1, 2, 1])]',
                     '[vi("y", [1, 2, 1, 2, 1, 2, 1])]', "[]", "", "a high rank"),
    "int64-model": ('[node("Add", ["x", "x"], ["y"])]', '[vi("x", [2, 3], I64)]', '[vi("y", [2, 3], I64)]', "[]", "",
                    "integer arithmetic"),
    "float64-model": ('[node("Relu", ["x"], ["y"])]', '[vi("x", [2, 3], F64)]', '[vi("y", [2, 3], F64)]', "[]", "",
                      "double precision"),
    "float16-model": ('[node("Relu", ["x"], ["y"])]', '[vi("x", [2, 3], F16)]', '[vi("y", [2, 3], F16)]', "[]", "",
                      "half precision"),
    "bool-output": ('[node("Greater", ["x", "x"], ["y"])]', X23, '[vi("y", [2, 3], onnx.TensorProto.BOOL)]', "[]", "",
                    "a bool result"),
    "fp16-weight-on-fp32-conv": ('[node("Conv", ["x", "w"], ["y"])]', X4, '[vi("y", [1, 2, 4, 4])]',
                                 '[init("w", np.ones((2, 2, 1, 1), np.float16))]', "",
                                 "ONNX's type rules forbid it"),
    "int64-weight-on-fp32-matmul": ('[node("MatMul", ["x", "w"], ["y"])]', X23, '[vi("y", [2, 2])]',
                                    '[init("w", np.ones((3, 2), np.int64))]', "", "mixed element types"),
    "add-f32-f64": ('[node("Add", ["x", "c"], ["y"])]', X23, Y23, '[init("c", np.ones((2, 3), np.float64))]', "",
                    "a model ONNX Runtime refuses"),
    "reflect-pad-larger-than-axis": (
        '[node("Pad", ["x", "p"], ["y"], mode="reflect")]', '[vi("x", [1, 1, 3, 3])]', '[vi("y", [1, 1, 13, 13])]',
        '[init("p", np.array([0, 0, 5, 5, 0, 0, 5, 5], np.int64))]', "", "reflect padding wider than the axis"),
    "edge-pad": ('[node("Pad", ["x", "p"], ["y"], mode="edge")]', '[vi("x", [1, 1, 3, 3])]',
                 '[vi("y", [1, 1, 5, 5])]', '[init("p", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))]', "",
                 "a valid edge pad"),
    "negative-pad": ('[node("Pad", ["x", "p"], ["y"])]', '[vi("x", [1, 1, 4, 4])]', '[vi("y", [1, 1, 2, 2])]',
                     '[init("p", np.array([0, 0, -1, -1, 0, 0, -1, -1], np.int64))]', "", "a crop as a pad"),
    "conv-wrong-attr-type": ('[node("Conv", ["x", "w"], ["y"], kernel_shape=[1.0, 1.0])]', X4,
                             '[vi("y", [1, 2, 4, 4])]', '[init("w", np.ones((2, 2, 1, 1), np.float32))]', "",
                             "kernel_shape given as floats"),
    "transpose-perm-string": ('[node("Transpose", ["x"], ["y"], perm="1,0")]', X23, '[vi("y", [3, 2])]', "[]", "",
                              "perm given as a string"),
    "transpose-perm-wrong-length": ('[node("Transpose", ["x"], ["y"], perm=[2, 0, 1])]', X23, '[vi("y", [3, 2])]',
                                    "[]", "", "a permutation of the wrong rank"),
    "softmax-axis-out-of-range": ('[node("Softmax", ["x"], ["y"], axis=5)]', X23, Y23, "[]", "", "axis 5 of rank 2"),
    "concat-axis-out-of-range": ('[node("Concat", ["x", "x"], ["y"], axis=3)]', X23, '[vi("y", [4, 3])]', "[]", "",
                                 "axis 3 of rank 2"),
    "matmul-shape-mismatch": ('[node("MatMul", ["x", "x"], ["y"])]', X23, '[vi("y", [2, 3])]', "[]", "",
                              "(2,3) x (2,3)"),
    "add-not-broadcastable": ('[node("Add", ["x", "c"], ["y"])]', X23, Y23, '[init("c", np.ones((4,), np.float32))]',
                              "", "shapes (2,3) and (4,)"),
    "reshape-wrong-count": ('[node("Reshape", ["x", "s"], ["y"])]', X23, '[vi("y", [4, 2])]',
                            '[init("s", np.array([4, 2], np.int64))]', "", "6 elements into 8"),
    "reshape-minus-one-and-zero": ('[node("Reshape", ["x", "s"], ["y"])]', X23, '[vi("y", [2, 3])]',
                                   '[init("s", np.array([0, -1], np.int64))]', "", "0 and -1 in the shape"),
    "reshape-two-minus-ones": ('[node("Reshape", ["x", "s"], ["y"])]', X23, '[vi("y", [6])]',
                               '[init("s", np.array([-1, -1], np.int64))]', "", "two inferred dimensions"),
    "conv-groups-not-dividing": ('[node("Conv", ["x", "w"], ["y"], group=3)]', X4, '[vi("y", [1, 3, 4, 4])]',
                                 '[init("w", np.ones((3, 1, 1, 1), np.float32))]', "", "group 3 on 2 channels"),
    "conv-missing-weight": ('[node("Conv", ["x"], ["y"])]', X4, '[vi("y", [1, 2, 4, 4])]', "[]", "",
                            "a Conv with one input"),
    "conv-weight-wrong-rank": ('[node("Conv", ["x", "w"], ["y"])]', X4, '[vi("y", [1, 2, 4, 4])]',
                               '[init("w", np.ones((2, 2), np.float32))]', "", "a 2-D weight"),
    "conv-kernel-larger-than-input": ('[node("Conv", ["x", "w"], ["y"])]', X4, '[vi("y", [1, 2, 1, 1])]',
                                      '[init("w", np.ones((2, 2, 9, 9), np.float32))]', "", "a 9x9 kernel on 4x4"),
    "conv-zero-stride": ('[node("Conv", ["x", "w"], ["y"], strides=[0, 0])]', X4, '[vi("y", [1, 2, 4, 4])]',
                         '[init("w", np.ones((2, 2, 1, 1), np.float32))]', "", "stride 0"),
    "maxpool-negative-pads": ('[node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[-1, -1, -1, -1])]', X4,
                              '[vi("y", [1, 2, 1, 1])]', "[]", "", "negative pads"),
    "gather-index-out-of-range": ('[node("Gather", ["x", "i"], ["y"])]', X23, '[vi("y", [1, 3])]',
                                  '[init("i", np.array([7], np.int64))]', "", "a constant index past the axis"),
    "batchnorm-wrong-scale-size": ('[node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])]', X4,
                                   '[vi("y", [1, 2, 4, 4])]',
                                   '[init(n, np.ones(5, np.float32)) for n in ("s", "b", "m", "v")]', "",
                                   "5 scales for 2 channels"),
    "split-uneven": ('[node("Split", ["x", "s"], ["a", "b"], axis=1)]', X23, '[vi("a", [2, 1]), vi("b", [2, 2])]',
                     '[init("s", np.array([1, 2], np.int64))]', "opset=13", "a valid uneven split"),
    "slice-huge-ends": ('[node("Slice", ["x", "st", "en"], ["y"])]', X23, '[vi("y", [2, 3])]',
                        '[init("st", np.array([0], np.int64)), init("en", np.array([2**62], np.int64))]', "",
                        "ends past the axis clamp"),
    "resize-unsupported-mode": ('[node("Resize", ["x", "", "sc"], ["y"], mode="cubic")]', X4, '[vi("y", [1, 2, 8, 8])]',
                                '[init("sc", np.array([1, 1, 2, 2], np.float32))]', "", "a cubic Resize"),
    "missing-initializer-data": ('[node("Add", ["x", "c"], ["y"])]', X23, Y23,
                                 '[bare_tensor("c", F32, [2, 3])]', "", "an initializer without its data"),
    "initializer-raw-data-short": ('[node("Add", ["x", "c"], ["y"])]', X23, Y23,
                                   '[bare_tensor("c", F32, [2, 3], b"\\x00" * 7)]', "",
                                   "raw_data of 7 bytes for 6 floats"),
    "initializer-huge-dims-no-data": ('[node("Add", ["x", "c"], ["y"])]', X23, Y23,
                                      '[bare_tensor("c", F32, [1 << 20, 1 << 20])]', "",
                                      "an initializer claiming 4 TiB"),
    "initializer-negative-dim": ('[node("Add", ["x", "c"], ["y"])]', X23, Y23,
                                 '[bare_tensor("c", F32, [-2, 3])]', "", "a negative dimension"),
    "input-shadows-initializer": ('[node("Add", ["x", "c"], ["y"])]', '[vi("x", [2, 3]), vi("c", [2, 3])]', Y23,
                                  '[init("c", np.ones((2, 3), np.float32))]', "", "an input with a default"),
    "constant-value-float": ('[node("Constant", [], ["c"], value_float=2.5), node("Mul", ["x", "c"], ["y"])]', X23,
                             Y23, "[]", "", "a scalar Constant"),
    "constant-sparse-value": ('[helper.make_node("Constant", [], ["c"], sparse_value=helper.make_sparse_tensor('
                              'helper.make_tensor("v", F32, [1], [1.0]), helper.make_tensor("i", I64, [1], [0]), '
                              '[2, 3])), node("Add", ["x", "c"], ["y"])]', X23, Y23, "[]", "",
                              "a sparse Constant"),
    "long-node-name": ('[helper.make_node("Relu", ["x"], ["y"], name="n" * 100000)]', X23, Y23, "[]", "",
                       "a 100 000-character node name"),
    "odd-tensor-names": ('[node("Relu", ["../x y/\\n"], ["../../etc/passwd"])]', '[vi("../x y/\\n", [2, 3])]',
                         '[vi("../../etc/passwd", [2, 3])]', "[]", "", "names with slashes, dots, newlines"),
    "unicode-names": ('[node("Relu", ["вход"], ["выход✓"])]', '[vi("вход", [2, 3])]', '[vi("выход✓", [2, 3])]', "[]",
                      "", "non-ASCII names"),
    "relu-chain-2000": ('[node("Relu", ["x" if i == 0 else f"t{i}"], [f"t{i + 1}" if i < 1999 else "y"]) '
                        'for i in range(2000)]', X23, Y23, "[]", "", "2000 nodes"),
    "nan-propagation": ('[node("Div", ["z", "z"], ["q"]), node("Add", ["x", "q"], ["y"])]', X23, Y23,
                        '[init("z", np.zeros((2, 3), np.float32))]', "", "0/0 folded to NaN"),
    "inf-propagation": ('[node("Div", ["x", "z"], ["y"])]', X23, Y23, '[init("z", np.zeros((2, 3), np.float32))]',
                        "", "x/0 at run time"),
    "if-node": ('[helper.make_node("If", ["c"], ["y"], then_branch=helper.make_graph([node("Identity", ["x"], '
                '["t"])], "t", [], [vi("t", [2, 3])]), else_branch=helper.make_graph([node("Neg", ["x"], ["e"])], '
                '"e", [], [vi("e", [2, 3])]))]', '[vi("x", [2, 3]), vi("c", [], onnx.TensorProto.BOOL)]', Y23, "[]",
                "", "control flow"),
}  # fmt: skip

CASES: list[Case] = []
for name, (nodes, inputs, outputs, inits, extra, note) in MODELS.items():
    keywords = f", {extra}" if extra else ""
    CASES.append(Case(K, name, f"check_model(model({nodes}, {inputs}, {outputs}, {inits}{keywords}))\n",
                      timeout_s=60.0, note=note))  # fmt: skip

FILES = {
    "empty-file": 'Path("model.onnx").write_bytes(b"")',
    "random-bytes": 'Path("model.onnx").write_bytes(np.random.default_rng(0).bytes(4096))',
    "truncated-model": 'Path("model.onnx").write_bytes(model([node("Relu", ["x"], ["y"])], [vi("x", [2, 3])], '
                       '[vi("y", [2, 3])], [init("c", np.ones((64, 64), np.float32))]).SerializeToString()[:-300])',
    "a-tensor-not-a-model": 'Path("model.onnx").write_bytes(init("c", np.ones(3, np.float32)).SerializeToString())',
    "text-file": 'Path("model.onnx").write_text("ir_version: 8\\ngraph { }\\n")',
    "missing-file": "",
}  # fmt: skip
for name, setup in FILES.items():
    CASES.append(Case(K, f"file-{name}", f"{setup}\nimport woodpecker\napi(lambda: woodpecker.compile('model.onnx'))\n"
                      "wrong('compiled it')\n", note="not a readable ONNX model"))  # fmt: skip

EXTERNAL = {
    "missing-file": "w.bin",
    "absolute-path": "/etc/passwd",
    "dotdot-path": "../../../../etc/passwd",
    "dev-zero": "/dev/zero",
}
for name, location in EXTERNAL.items():
    CASES.append(Case(K, f"external-data-{name}", dedent(f"""
        made = model([node("Add", ["x", "c"], ["y"])], [vi("x", [2, 3])], [vi("y", [2, 3])],
                     [init("c", np.ones((2, 3), np.float32))])
        tensor = made.graph.initializer[0]
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", {location!r}), ("length", "24")):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        import woodpecker
        path = save(made)
        api(lambda: woodpecker.compile(path))
        wrong("read external data at {location}")
    """), note=f"external data at {location}"))  # fmt: skip

# Run with --all only: kept out of the default run so that it stays within ~12 minutes.
EXTENDED = {
    "opset-1-relu",
    "float16-model",
    "zero-size-input",
    "bool-output",
    "edge-pad",
    "conv-kernel-larger-than-input",
    "no-nodes-no-outputs",
    "long-node-name",
    "split-uneven",
    "slice-huge-ends",
    "gather-index-out-of-range",
    "maxpool-negative-pads",
    "conv-zero-stride",
    "reshape-two-minus-ones",
    "opset-99",
    "file-text-file",
    "inf-propagation",
    "self-loop",
    "if-node",
    "unicode-names",
    "concat-axis-out-of-range",
    "initializer-negative-dim",
    "float64-model",
    "constant-value-float",
    "scalar-input",
    "untyped-output",
    "rank-7-input",
    "negative-pad",
    "int64-weight-on-fp32-matmul",
}
CASES = [replace(c, extended=True) if c.name in EXTENDED else c for c in CASES]
