# ruff: noqa: E501 - case data (IR, model and command lines) reads best one case a line
"""Crashes and hangs: aliased graph outputs, huge intermediates, GlobalAveragePool's compile
time, and unbounded reads (FIFOs, /dev/zero, deep nesting)."""

from __future__ import annotations

from dataclasses import replace
from textwrap import dedent

from case import Case

K = "crashes"
COMPILE_S = 60.0


def _model_case(name: str, body: str, note: str, timeout_s: float = COMPILE_S) -> Case:
    return Case(K, name, dedent(body), timeout_s=timeout_s, note=note)


ALIASES = {
    "output-listed-twice": ('[node("Relu", ["x"], ["y"])]', '[vi("y", [2, 3]), vi("y", [2, 3])]'),
    "outputs-alias-through-identity": ('[node("Relu", ["x"], ["y"]), node("Identity", ["y"], ["z"])]',
                                       '[vi("y", [2, 3]), vi("z", [2, 3])]'),
    "outputs-alias-through-dropout": ('[node("Relu", ["x"], ["y"]), node("Dropout", ["y"], ["z"])]',
                                      '[vi("y", [2, 3]), vi("z", [2, 3])]'),
    "two-identities-of-one-tensor": ('[node("Relu", ["x"], ["y"]), node("Identity", ["y"], ["a"]), '
                                     'node("Identity", ["y"], ["b"])]', '[vi("a", [2, 3]), vi("b", [2, 3])]'),
    "output-is-the-input": ("[]", '[vi("x", [2, 3])]'),
    "output-is-input-and-relu": ('[node("Relu", ["x"], ["y"])]', '[vi("x", [2, 3]), vi("y", [2, 3])]'),
    "output-is-an-initializer": ('[node("Relu", ["x"], ["y"])]', '[vi("y", [2, 3]), vi("c", [2, 3])]'),
    "identity-chain-output-twice": ('[node("Relu", ["x"], ["y"]), node("Identity", ["y"], ["z"]), '
                                    'node("Identity", ["z"], ["w"])]', '[vi("w", [2, 3]), vi("w", [2, 3]), vi("y", [2, 3])]'),
    "conv-output-aliased": ('[node("Conv", ["x4", "cw"], ["y"]), node("Identity", ["y"], ["z"])]',
                            '[vi("y", [1, 2, 4, 4]), vi("z", [1, 2, 4, 4])]'),
}  # fmt: skip

CASES: list[Case] = []
for name, (nodes, outputs) in ALIASES.items():
    conv = "conv" in name
    CASES.append(_model_case(name, f"""
        inputs = [vi("x4", [1, 1, 4, 4])] if {conv} else [vi("x", [2, 3])]
        inits = [init("cw", np.ones((2, 1, 1, 1), np.float32))] if {conv} else [init("c", np.full((2, 3), 2.0, np.float32))]
        check_model(model({nodes}, inputs, {outputs}, inits))
    """, "ONNX Runtime runs it; outputs that alias each other"))  # fmt: skip

# One small model, one huge intermediate (an Expand of the input): an error naming the buffer and
# its size before running, not a segfault of an unchecked malloc.
# Broadcast additions of small inputs: 4 GiB, 16 GiB, 1 TiB, and 1 PiB (2^48 elements).
BROADCASTS = {
    "4gib": [[1 << 15, 1], [1, 1 << 15]],
    "16gib": [[1 << 16, 1], [1, 1 << 16]],
    "1tib": [[1 << 19, 1], [1, 1 << 19]],
    "1pib": [[1 << 16, 1, 1], [1, 1 << 16, 1], [1, 1, 1 << 16]],
}
for size, shapes in BROADCASTS.items():
    names = [f"i{k}" for k in range(len(shapes))]
    axes = list(range(len(shapes)))
    CASES.append(_model_case(f"huge-intermediate-broadcast-add-{size}", f"""
        names, shapes = {names!r}, {shapes!r}
        nodes, last = [], names[0]
        for k, name in enumerate(names[1:]):
            nodes.append(node("Add", [last, name], [f"s{{k}}"]))
            last = f"s{{k}}"
        nodes.append(node("ReduceMean", [last], ["y"], axes={axes}, keepdims=0))
        check_model(model(nodes, [vi(n, s) for n, s in zip(names, shapes)], [vi("y", [])], opset=13))
    """, f"one {size} intermediate from small inputs"))  # fmt: skip
CASES.append(
    _model_case(
        "huge-intermediate-outer-product",
        """
    made = model([node("MatMul", ["a", "b"], ["big"]), node("ReduceMean", ["big"], ["y"], axes=[0, 1], keepdims=0)],
                 [vi("a", [1 << 16, 1]), vi("b", [1, 1 << 16])], [vi("y", [])], opset=13)
    check_model(made)
""",
        "16 GiB MatMul result of two 256 KiB inputs",
    )
)
CASES.append(
    _model_case(
        "huge-intermediate-stated-before-running",
        """
    import woodpecker
    made = model([node("Add", ["a", "b"], ["big"]), node("ReduceMean", ["big"], ["y"], axes=[0, 1], keepdims=0)],
                 [vi("a", [1 << 16, 1]), vi("b", [1, 1 << 16])], [vi("y", [])], opset=13)
    compiled = api(lambda: woodpecker.compile(save(made)))
    wrong("compile() accepted a model whose intermediate needs 16 GiB (peak activation memory not checked)")
""",
        "compile() refuses what cannot fit",
    )
)

for side in (16, 32, 64):
    CASES.append(_model_case(f"global-average-pool-1x64x{side}x{side}", f"""
        check_model(model([node("GlobalAveragePool", ["x"], ["y"])], [vi("x", [1, 64, {side}, {side}])],
                          [vi("y", [1, 64, 1, 1])]))
    """, "compile time of a plain GlobalAveragePool"))  # fmt: skip
CASES.append(
    _model_case(
        "global-average-pool-64-no-vector",
        """
    import woodpecker
    from woodpecker import CompileOptions, CpuOptions
    opts = CompileOptions(cpu=CpuOptions(schedules={"reduction": {"vector": 0}}))
    check_model(model([node("GlobalAveragePool", ["x"], ["y"])], [vi("x", [1, 64, 64, 64])], [vi("y", [1, 64, 1, 1])]),
                options=opts)
""",
        "the same with vectorization off",
    )
)
CASES.append(
    _model_case(
        "reduce-mean-1x64x4096",
        """
    check_model(model([node("ReduceMean", ["x"], ["y"], axes=[2], keepdims=1)], [vi("x", [1, 64, 4096])],
                      [vi("y", [1, 64, 1])], opset=13))
""",
        "a long reduction axis",
    )
)

# Unbounded reads: a FIFO nobody writes, an endless device, a directory.
for name, setup, path in (
    ("wpk-run-fifo", 'mkfifo("m.onnx")', "m.onnx"),
    ("wpk-run-dev-zero", "", "/dev/zero"),
    ("wpk-run-dev-urandom", "", "/dev/urandom"),
    ("wpk-run-dev-null", "", "/dev/null"),
    ("wpk-run-directory", 'Path("d.onnx").mkdir()', "d.onnx"),
    ("wpk-compile-fifo", 'mkfifo("m.onnx")', "m.onnx"),
    ("wpk-tune-dev-zero", "", "/dev/zero"),
):
    sub = name.split("-")[1]
    argv = [sub, path, "--no-records"] if sub != "tune" else [sub, path, "--trials", "1", "--in-process"]
    CASES.append(Case(K, name, f"{setup}\ncli({argv!r})\n", note=f"wpk {sub} reading {path}"))
for name, setup, path in (
    ("wpk-opt-fifo", 'mkfifo("in.mlir")', "in.mlir"),
    ("wpk-opt-dev-zero", "", "/dev/zero"),
    ("wpk-opt-import-onnx-fifo", 'mkfifo("m.onnx")', "m.onnx"),
    ("wpk-opt-import-onnx-dev-zero", "", "/dev/zero"),
):
    extra = ["--import-onnx"] if "onnx" in name else []
    CASES.append(Case(K, name, f"{setup}\nwpk_opt({[*extra, path]!r})\n", note=f"wpk-opt reading {path}"))

DEEP = {
    "wpk-opt-nested-regions-20000": "'func.func @main() {\\n' + 'scf.execute_region {\\n' * 20000 + '}\\n' * 20000 + 'return\\n}\\n'",
    "wpk-opt-nested-brackets-200000": "'func.func @main() attributes {a = ' + '[' * 200000 + ']' * 200000 + '} { return }'",
    "wpk-opt-nested-types-50000": "'func.func @main(%a: ' + 'tuple<' * 50000 + 'f32' + '>' * 50000 + ') { return }'",
    "wpk-opt-nested-parens-100000": "'func.func @main() { %0 = arith.constant ' + '(' * 100000 + ' : i32 return }'",
}  # fmt: skip
for name, text in DEEP.items():
    CASES.append(Case(K, name, f"Path('in.mlir').write_text({text})\nwpk_opt(['in.mlir'])\n", note="deeply nested IR"))
CASES.append(
    Case(
        K,
        "onnx-nested-if-20",
        dedent("""
    leaf = helper.make_graph([node("Identity", ["x"], ["leaf"])], "leaf", [], [vi("leaf", [1])])
    inner = leaf
    for d in range(20):
        inner = helper.make_graph([helper.make_node("If", ["c"], ["o%d" % d], then_branch=inner, else_branch=leaf)],
                                  "g%d" % d, [], [vi("o%d" % d, [1])])
    made = model([helper.make_node("If", ["c"], ["y"], then_branch=inner, else_branch=leaf)],
                 [vi("c", [], onnx.TensorProto.BOOL), vi("x", [1])], [vi("y", [1])])
    import woodpecker
    api(lambda: woodpecker.compile(save(made)))
    wrong("compiled a nested If")
"""),
        timeout_s=COMPILE_S,
        note="control flow nested deeply (an op Woodpecker does not support)",
    )
)

# Run with --all only: kept out of the default run so that it stays within ~12 minutes.
EXTENDED = {
    "identity-chain-output-twice",
    "wpk-opt-nested-parens-100000",
    "output-is-input-and-relu",
    "wpk-compile-fifo",
    "wpk-tune-dev-zero",
}
CASES = [replace(c, extended=True) if c.name in EXTENDED else c for c in CASES]
