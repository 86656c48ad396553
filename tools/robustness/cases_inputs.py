# ruff: noqa: E501 - case data (IR, model and command lines) reads best one case a line
"""Inputs: constant folding without a size budget, `wpk run` comparing identical NaNs and
models ONNX Runtime refuses, and the feeds given to `CompiledModel.run`."""

from __future__ import annotations

from dataclasses import replace
from textwrap import dedent

from case import CORRECT, Case

K = "inputs"

FOLDS = {  # a tiny file whose constant fold makes a huge array (weights broadcast), then reduced
    "fold-broadcast-add-32gib": ("Add", [1 << 17, 1], [1, 1 << 16]),
    "fold-broadcast-add-10gib": ("Add", [5 << 14, 1], [1, 1 << 15]),
    "fold-broadcast-add-3gib": ("Add", [3 << 14, 1], [1, 1 << 14]),
    "fold-outer-product-16gib": ("MatMul", [1 << 16, 1], [1, 1 << 16]),
    "fold-broadcast-mul-1tib": ("Mul", [1 << 19, 1], [1, 1 << 19]),
}
CASES: list[Case] = []
for name, (op, a, b) in FOLDS.items():
    CASES.append(Case(K, name, dedent(f"""
        made = model([node({op!r}, ["wa", "wb"], ["big"]), node("ReduceMean", ["big"], ["s"], axes=[0, 1], keepdims=0),
                      node("Add", ["x", "s"], ["y"])], [vi("x", [1])], [vi("y", [1])],
                     [init("wa", np.ones({a}, np.float32)), init("wb", np.ones({b}, np.float32))], opset=13)
        check_model(made, opt_level=1)
    """), timeout_s=60.0, note=f"{op} of weights {a} and {b} folded at compile time"))  # fmt: skip

NAN_MODELS = {
    "wpk-run-identical-nans": '[node("Sub", ["x", "x"], ["z"]), node("Div", ["z", "z"], ["y"])]',
    "wpk-run-nan-zero-times-inf": '[node("Sub", ["x", "x"], ["z"]), node("Div", ["x", "z"], ["i"]), node("Mul", ["i", "z"], ["y"])]',
    "wpk-run-inf": '[node("Sub", ["x", "x"], ["z"]), node("Div", ["x", "z"], ["y"])]',
}  # fmt: skip
for name, nodes in NAN_MODELS.items():
    CASES.append(Case(K, name, dedent(f"""
        save(model({nodes}, [vi("x", [2, 3])], [vi("y", [2, 3])]))
        cli(["run", "model.onnx", "--no-records", "--repeat", "1"])
    """), timeout_s=60.0, on_success=CORRECT, note="both sides compute the same NaN/inf"))  # fmt: skip

REFUSED = {  # Woodpecker should refuse what ONNX's type rules forbid, not pass it to ONNX Runtime
    "wpk-run-fp16-weight-fp32-conv": ('[node("Conv", ["x", "w"], ["y"])]', '[vi("x", [1, 2, 4, 4])]',
                                      '[vi("y", [1, 2, 4, 4])]', '[init("w", np.ones((2, 2, 1, 1), np.float16))]'),
    "wpk-run-reflect-pad-too-wide": ('[node("Pad", ["x", "p"], ["y"], mode="reflect")]', '[vi("x", [1, 1, 3, 3])]',
                                     '[vi("y", [1, 1, 13, 13])]',
                                     '[init("p", np.array([0, 0, 5, 5, 0, 0, 5, 5], np.int64))]'),
    "wpk-run-add-f32-f64": ('[node("Add", ["x", "c"], ["y"])]', '[vi("x", [2, 3])]', '[vi("y", [2, 3])]',
                            '[init("c", np.ones((2, 3), np.float64))]'),
    "wpk-run-no-outputs": ('[node("Relu", ["x"], ["y"])]', '[vi("x", [2, 3])]', "[]", "[]"),
}  # fmt: skip
for name, (nodes, inputs, outputs, inits) in REFUSED.items():
    CASES.append(Case(K, name, dedent(f"""
        save(model({nodes}, {inputs}, {outputs}, {inits}))
        cli(["run", "model.onnx", "--no-records", "--repeat", "1"])
    """), timeout_s=60.0, note="ONNX Runtime refuses this model"))  # fmt: skip

# CompiledModel.run's feeds: one compiled Relu+Add on x (2, 3) float32.
PRELUDE = """
import woodpecker
made = model([node("Relu", ["x"], ["r"]), node("Add", ["r", "x"], ["y"])], [vi("x", [2, 3])], [vi("y", [2, 3])])
compiled = woodpecker.compile(save(made))
x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
def expect(feeds, reference=None):
    got = api(lambda: compiled.run(None, feeds))
    if reference is None:
        wrong(f"run() accepted {({k: type(v).__name__ for k, v in feeds.items()} if isinstance(feeds, dict) else feeds)!r}")
    difference = compare(got, [np.maximum(reference, 0) + reference])
    wrong(difference) if difference else correct("equal to numpy")
"""
FEEDS = {
    "feed-float64": ("{'x': x.astype(np.float64)}", None),
    "feed-int32": ("{'x': x.astype(np.int32)}", None),
    "feed-wrong-shape": ("{'x': np.zeros((3, 2), np.float32)}", None),
    "feed-wrong-rank": ("{'x': np.zeros((6,), np.float32)}", None),
    "feed-missing": ("{}", None),
    "feed-extra-name": ("{'x': x, 'z': x}", None),
    "feed-misspelled": ("{'X': x}", None),
    "feed-list-not-array": ("{'x': x.tolist()}", None),
    "feed-string": ("{'x': 'hello'}", None),
    "feed-none": ("{'x': None}", None),
    "feed-0d": ("{'x': np.float32(1.0)}", None),
    "feed-non-contiguous": ("{'x': np.ascontiguousarray(np.arange(12, dtype=np.float32).reshape(2, 6) - 2)[:, ::2]}",
                            "(np.arange(12, dtype=np.float64).reshape(2, 6) - 2)[:, ::2]"),
    "feed-fortran-order": ("{'x': np.asfortranarray(x)}", "x.astype(np.float64)"),
    "feed-readonly": ("{'x': (lambda a: (a.setflags(write=False), a)[1])(x.copy())}", "x.astype(np.float64)"),
    "feed-with-nan-inf": ("{'x': np.array([[np.nan, np.inf, -np.inf], [0, 1, -1]], np.float32)}",
                          "np.array([[np.nan, np.inf, -np.inf], [0, 1, -1]])"),
    "feed-big-endian": ("{'x': x.astype('>f4')}", "x.astype(np.float64)"),
}  # fmt: skip
for name, (feeds, reference) in FEEDS.items():
    call = f"expect({feeds}, {reference})" if reference else f"expect({feeds})"
    CASES.append(Case(K, name, dedent(PRELUDE) + call + "\n", timeout_s=60.0, note="a feed of CompiledModel.run"))

# Run with --all only: kept out of the default run so that it stays within ~12 minutes.
EXTENDED = {
    "feed-int32",
    "feed-0d",
    "fold-broadcast-mul-1tib",
    "feed-list-not-array",
    "feed-wrong-rank",
    "feed-fortran-order",
    "feed-readonly",
}
CASES = [replace(c, extended=True) if c.name in EXTENDED else c for c in CASES]
