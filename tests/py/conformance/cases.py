"""Selection, loading and checking of ONNX backend node tests against Woodpecker.

Rules (shared by tests/py/test_node_conformance.py and tools/conformance_report.py):

* Selection: a node test is selected when every op type used by its graph (subgraphs included,
  non-default domains never match) is in the supported set, i.e. by the ops present in
  model.onnx, not by the test name. Function-expanded tests (`*_expanded`) are selected the
  same way when their expansion only uses supported ops.
* Frozen inputs (FROZEN_INPUTS): ONNX passes some operands as tensors that Woodpecker needs at
  compile time (they become `wpk` attributes or static result shapes, see dialects/WpkOps.td):
  Reshape `shape`, Pad `pads`/`constant_value`/`axes`, Clip `min`/`max`, Reduce* `axes`,
  Dropout `ratio`/`training_mode`, Squeeze/Unsqueeze `axes`, Slice `starts`/`ends`/`axes`/`steps`,
  Split `split`, Expand `shape`, Tile `repeats`, GatherElements `indices`, Resize `roi`/`scales`/`sizes`,
  ConstantOfShape's shape, Range's operands, LSTM/GRU `W`/`R`/`B`, CumSum `axis`, Trilu `k`,
  OneHot `depth`/`values`. When such an operand is a graph
  input in a node test, it is moved into an initializer holding the test's value before
  compiling (as onnx-simplifier or `freeze_params` would). The operation and data are unchanged;
  every other input is fed at run time.
* Lifted opsets (lift_opset): a test model of an opset older than Woodpecker's oldest
  (importer.loader.MIN_OPSET, 11) imports that opset instead when every op of its graph has
  the same schema there (And, Or, Xor since opset 7, Not since 1): the same model, declared
  in an opset Woodpecker reads.
* Skip rule 1 (dtype): after freezing, an input or output that is not a float32 tensor skips
  the test, unless it is an int64, int32 or bool tensor that only ops taking that dtype
  (DTYPE_OPS: the integer, bool and indexing ops) read or write; the reason names the tensor,
  its dtype and the op that does not take it.
* Skip rule 2 (known limitation): `woodpecker.compile` raises UnsupportedOperatorError and the
  test is listed in the caller's KNOWN_LIMITATIONS {test_name: reason}.
* Everything else fails: any other exception (another UnsupportedOperatorError included),
  a wrong output count/shape/dtype, or values outside rtol=RTOL, atol=ATOL (TOLERANCE_OVERRIDES
  loosens them only where the ONNX expected data is itself rounded).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from .data import ensure_node_test_data, load_index

# Tolerances of the node conformance tests (all ops, exp/softmax-based ones included):
# |got - expected| <= ATOL + RTOL * |expected|, elementwise.
RTOL = 1e-4
ATOL = 1e-5

# Per-test tolerances where the ONNX test data itself is imprecise: test_name -> (rtol, atol, why).
TOLERANCE_OVERRIDES: dict[str, tuple[float, float, str]] = {
    "test_averagepool_2d_ceil_last_window_starts_on_pad": (
        1e-3,
        1e-4,
        "the expected output is hand-written with 4 decimals (0.2841 for 0.28404...)",
    ),
}

# op type -> positions of the inputs frozen into initializers (see the module docstring).
FROZEN_INPUTS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,),  # shape
    "Pad": (1, 2, 3),  # pads, constant_value, axes
    "Clip": (1, 2),  # min, max
    **{
        op: (1,)  # axes (ReduceSum opset >= 13, the others opset >= 18)
        for op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                   "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp")
    },
    "Dropout": (1, 2),  # ratio, training_mode
    "Squeeze": (1,),  # axes (opset >= 13)
    "Unsqueeze": (1,),  # axes (opset >= 13)
    "Slice": (1, 2, 3, 4),  # starts, ends, axes, steps
    "Split": (1,),  # split (opset >= 13)
    "Expand": (1,),  # shape
    "Tile": (1,),  # repeats
    "GatherElements": (1,),  # indices
    "GatherND": (1,),  # indices
    "ScatterND": (1,),  # indices
    "Resize": (1, 2, 3),  # roi, scales, sizes
    "ConstantOfShape": (0,),  # the shape
    "Range": (0, 1, 2),  # start, limit, delta (the result folds to a constant)
    "LSTM": (1, 2, 3),  # W, R, B (split per gate and transposed at import)
    "GRU": (1, 2, 3),  # W, R, B
    "CumSum": (1,),  # axis
    "Trilu": (1,),  # k
    "OneHot": (1, 2),  # depth, values
}

_EXPANDED = re.compile(r"_expanded(_ver\d+)?$")


class SkipCase(Exception):
    """The test is skipped by one of the documented rules; the message is the reason."""


@dataclass(frozen=True)
class NodeCase:
    name: str
    directory: Path
    ops: frozenset[str]
    primary_op: str
    opset: int

    def __str__(self) -> str:
        return self.name


@dataclass
class DataSet:
    inputs: dict[str, Any]  # graph input name -> np.ndarray (or list/None/dict for non-tensors)
    outputs: list[Any]  # in graph output order


@dataclass
class CaseResult:
    case: NodeCase
    status: str  # "passed" | "failed" | "skipped"
    reason: str = ""
    frozen: list[str] = field(default_factory=list)


def primary_op(name: str, ops: Iterable[str], tests: Mapping[str, Any]) -> str:
    """The op a test is about: its only op, or for `*_expanded` tests the op of the base test."""
    ops = sorted(ops)
    base = _EXPANDED.sub("", name)
    if base != name and base in tests and len(tests[base]["ops"]) == 1:
        return tests[base]["ops"][0]
    return ops[0] if len(ops) == 1 else "+".join(ops)


def select_cases(supported_ops: Iterable[str], cache_dir: Path | None = None) -> list[NodeCase]:
    """Every node test whose graph only uses `supported_ops`, sorted by name."""
    cache_dir = ensure_node_test_data(cache_dir)
    tests = load_index(cache_dir)["tests"]
    supported = set(supported_ops)
    cases = []
    for name, entry in sorted(tests.items()):
        ops = frozenset(entry["ops"])
        if not ops or not ops <= supported:
            continue
        cases.append(
            NodeCase(
                name=name,
                directory=cache_dir / "node" / name,
                ops=ops,
                primary_op=primary_op(name, ops, tests),
                opset=int(entry["opset"].get("ai.onnx", 0)),
            )
        )
    return cases


def _read_value(path: Path, value_info: onnx.ValueInfoProto) -> Any:
    t = value_info.type
    data = path.read_bytes()
    if t.HasField("sequence_type"):
        seq = onnx.SequenceProto()
        seq.ParseFromString(data)
        return numpy_helper.to_list(seq)
    if t.HasField("optional_type"):
        opt = onnx.OptionalProto()
        opt.ParseFromString(data)
        return numpy_helper.to_optional(opt)
    if t.HasField("map_type"):
        m = onnx.MapProto()
        m.ParseFromString(data)
        return numpy_helper.to_dict(m)
    tensor = onnx.TensorProto()
    tensor.ParseFromString(data)
    return numpy_helper.to_array(tensor)


def load_case(case: NodeCase) -> tuple[onnx.ModelProto, list[DataSet]]:
    model = onnx.load(str(case.directory / "model.onnx"))
    data_sets = []
    for ds in sorted(case.directory.glob("test_data_set_*")):
        n_in = len(list(ds.glob("input_*.pb")))
        n_out = len(list(ds.glob("output_*.pb")))
        inputs = {
            model.graph.input[j].name: _read_value(ds / f"input_{j}.pb", model.graph.input[j]) for j in range(n_in)
        }
        outputs = [_read_value(ds / f"output_{j}.pb", model.graph.output[j]) for j in range(n_out)]
        data_sets.append(DataSet(inputs, outputs))
    return model, data_sets


def freeze_inputs(model: onnx.ModelProto, feeds: Mapping[str, Any]) -> tuple[onnx.ModelProto, list[str]]:
    """Moves the FROZEN_INPUTS operands that are graph inputs into initializers."""
    graph_inputs = {vi.name for vi in model.graph.input}
    to_freeze: list[str] = []
    for node in model.graph.node:
        for pos in FROZEN_INPUTS.get(node.op_type, ()):
            name = node.input[pos] if pos < len(node.input) else ""
            if name in graph_inputs and name in feeds and name not in to_freeze:
                to_freeze.append(name)
    if not to_freeze:
        return model, []
    frozen = onnx.ModelProto()
    frozen.CopyFrom(model)
    kept = [vi for vi in frozen.graph.input if vi.name not in to_freeze]
    del frozen.graph.input[:]
    frozen.graph.input.extend(kept)
    for name in to_freeze:
        frozen.graph.initializer.append(numpy_helper.from_array(np.asarray(feeds[name]), name))
    return frozen, to_freeze


def _describe_type(value_info: onnx.ValueInfoProto) -> str | None:
    """None for a float32 tensor, else a short description of the type."""
    t = value_info.type
    kind = t.WhichOneof("value")
    if kind != "tensor_type":
        return kind or "untyped"
    elem = t.tensor_type.elem_type
    if elem == onnx.TensorProto.FLOAT:
        return None
    return onnx.TensorProto.DataType.Name(elem).lower()


# Op type -> the non-f32 dtypes its inputs and outputs may have at run time (onnx names).
_INT_BOOL = frozenset({"int64", "int32", "bool"})
_INTS = frozenset({"int64", "int32"})
DTYPE_OPS: dict[str, frozenset[str]] = {
    "Cast": _INT_BOOL,
    "Gather": _INT_BOOL,
    "Where": _INT_BOOL,
    "Equal": _INT_BOOL,
    "Less": _INT_BOOL,
    "LessOrEqual": _INT_BOOL,
    "Greater": _INT_BOOL,
    "GreaterOrEqual": _INT_BOOL,
    "Not": frozenset({"bool"}),
    "And": frozenset({"bool"}),
    "Or": frozenset({"bool"}),
    "Xor": frozenset({"bool"}),
    "IsNaN": frozenset({"bool"}),
    "IsInf": frozenset({"bool"}),
    "Identity": _INT_BOOL,
    **dict.fromkeys(("Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs", "Max", "Min"), _INTS),
    "ArgMax": _INTS,
    "ArgMin": _INTS,
    "CumSum": _INTS,
    "Trilu": _INT_BOOL,
    "OneHot": _INTS,
    "Reshape": _INT_BOOL,
    "Squeeze": _INT_BOOL,
    "Unsqueeze": _INT_BOOL,
}


def _op_refusing(model: onnx.ModelProto, name: str, dtype: str) -> str | None:
    """The first op type reading or writing `name` that does not take `dtype`, else None."""
    for node in model.graph.node:
        touches = name in node.input or name in node.output
        if touches and dtype not in DTYPE_OPS.get(node.op_type, frozenset()):
            return node.op_type
    return None


def lift_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` importing MIN_OPSET instead of an older default-domain opset when all its ops
    keep their schema from the one to the other (else `model` itself, which the loader refuses)."""
    from onnx import defs

    from woodpecker.importer.loader import MIN_OPSET

    entries = [entry for entry in model.opset_import if entry.domain in ("", "ai.onnx")]
    if not entries or entries[0].version >= MIN_OPSET:
        return model
    old = entries[0].version
    for node in model.graph.node:
        try:
            same = (
                defs.get_schema(node.op_type, old).since_version
                == defs.get_schema(node.op_type, MIN_OPSET).since_version
            )
        except defs.SchemaError:
            return model
        if not same:
            return model
    lifted = onnx.ModelProto()
    lifted.CopyFrom(model)
    for entry in lifted.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = MIN_OPSET
    return lifted


def check_dtypes(model: onnx.ModelProto) -> None:
    """Skip rule 1: raises SkipCase naming the first input or output of a dtype Woodpecker does
    not compile there (not float32, or int64/int32/bool read or written by an op without it)."""
    for kind, values in (("input", model.graph.input), ("output", model.graph.output)):
        for vi in values:
            desc = _describe_type(vi)
            if desc is None:
                continue
            if desc not in _INT_BOOL:
                raise SkipCase(
                    f"non-f32 dtype: {kind} '{vi.name}' is {desc} "
                    "(Woodpecker compiles float32, int64, int32 and bool tensors)"
                )
            refusing = _op_refusing(model, vi.name, desc)
            if refusing is not None:
                raise SkipCase(
                    f"non-f32 dtype: {kind} '{vi.name}' is {desc}, which {refusing} does not take in Woodpecker"
                )


def tolerances(name: str) -> tuple[float, float]:
    rtol, atol, _ = TOLERANCE_OVERRIDES.get(name, (RTOL, ATOL, ""))
    return rtol, atol


def compare_outputs(
    names: list[str], got: list[Any], expected: list[Any], rtol: float = RTOL, atol: float = ATOL
) -> None:
    """Raises AssertionError on an output count, shape, dtype or value mismatch."""
    assert len(got) == len(expected), f"{len(got)} outputs, expected {len(expected)}"
    for name, g, e in zip(names, got, expected, strict=True):
        g = np.asarray(g)
        e = np.asarray(e)
        assert g.dtype == e.dtype, f"output '{name}': dtype {g.dtype}, expected {e.dtype}"
        assert g.shape == e.shape, f"output '{name}': shape {g.shape}, expected {e.shape}"
        if e.dtype.kind in "biu":
            bad = g != e
            assert not bad.any(), (
                f"output '{name}': {int(bad.sum())}/{g.size} {e.dtype} values differ (exact comparison); "
                f"first at {tuple(int(i) for i in np.argwhere(bad)[0])}"
            )
            continue
        if not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True):
            err = np.abs(g.astype(np.float64) - e.astype(np.float64))
            bad = ~np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
            idx = np.unravel_index(int(np.argmax(np.where(bad, err, -1.0))), g.shape) if g.ndim else ()
            raise AssertionError(
                f"output '{name}': {int(bad.sum())}/{g.size} values differ beyond rtol={rtol}, atol={atol}; "
                f"max abs err {float(np.nanmax(err)):.3g}; at {tuple(int(i) for i in idx)}: "
                f"got {g[idx]!r}, expected {e[idx]!r}"
            )


def check_node_case(
    case: NodeCase,
    compile_fn: Callable[[onnx.ModelProto], Any],
    known_limitations: Mapping[str, str],
    unsupported_error: type[BaseException] | tuple[type[BaseException], ...],
) -> list[str]:
    """Runs one node test; returns the frozen input names.

    Raises SkipCase for a documented skip, anything else for a failure.
    """
    model, data_sets = load_case(case)
    model = lift_opset(model)
    frozen_all: list[str] = []
    for ds in data_sets:
        frozen_model, frozen = freeze_inputs(model, ds.inputs)
        frozen_all = frozen
        check_dtypes(frozen_model)
        try:
            compiled = compile_fn(frozen_model)
        except unsupported_error as exc:
            if case.name in known_limitations:
                detail = getattr(exc, "reason", None) or first_line(str(exc))
                raise SkipCase(f"known limitation: {known_limitations[case.name]} ({detail})") from exc
            raise
        feeds = {k: v for k, v in ds.inputs.items() if k not in frozen}
        got = compiled.run(None, feeds)
        names = [o.name for o in frozen_model.graph.output]
        compare_outputs(names, got, ds.outputs, *tolerances(case.name))
    return frozen_all


def run_case(
    case: NodeCase,
    compile_fn: Callable[[onnx.ModelProto], Any],
    known_limitations: Mapping[str, str],
    unsupported_error: type[BaseException] | tuple[type[BaseException], ...],
) -> CaseResult:
    """check_node_case, with the outcome as a value (for the report script)."""
    try:
        frozen = check_node_case(case, compile_fn, known_limitations, unsupported_error)
    except SkipCase as exc:
        return CaseResult(case, "skipped", str(exc))
    except Exception as exc:
        return CaseResult(case, "failed", f"{type(exc).__name__}: {first_line(str(exc))}")
    return CaseResult(case, "passed", frozen=frozen)


def first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


STATUSES = ("passed", "failed", "skipped")


def format_table(outcomes: Iterable[tuple[str, str]]) -> str:
    """A per-op table (op, passed, failed, skipped, total) from (op, status) pairs."""
    counts: dict[str, dict[str, int]] = {}
    for op, status in outcomes:
        row = counts.setdefault(op, dict.fromkeys(STATUSES, 0))
        row[status] = row.get(status, 0) + 1
    header = ("op", *STATUSES, "total")
    rows = [(op, *(str(c[s]) for s in STATUSES), str(sum(c.values()))) for op, c in sorted(counts.items())]
    totals = {s: sum(c[s] for c in counts.values()) for s in STATUSES}
    rows.append(("TOTAL", *(str(totals[s]) for s in STATUSES), str(sum(totals.values()))))
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True)))

    sep = "-" * len(fmt(header))
    return "\n".join([fmt(header), sep, *(fmt(r) for r in rows[:-1]), sep, fmt(rows[-1])])
