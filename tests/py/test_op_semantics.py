"""The op semantics registry (woodpecker.ops) and its numpy semantics against ONNX, without codegen.

* Every `wpk` op class has exactly one semantics entry; lookups by class, name and op agree;
  the step vocabulary is the entries' steps.
* The numpy semantics are checked against the ONNX node tests directly: each selected node test
  (the cases of test_node_conformance.py) is imported, optionally optimized with the O2 graph
  passes (so the fused kernels' step semantics are exercised too), and its `@main` is run op by
  op with `graph.evaluate` (float64 numpy, no MLIR lowering). Constant folding and the tests'
  reference (numpy_reference.py) use these same semantics, so this is what keeps them honest
  independently of the lowering they are compared with elsewhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from conformance import NodeCase, SkipCase, check_node_case, select_cases
from mlir import ir
from test_node_conformance import KNOWN_LIMITATIONS, LIMITATION_ERRORS

from woodpecker.dialect import wpk
from woodpecker.graph import GraphContext
from woodpecker.graph.cleanup import cleanup
from woodpecker.graph.context import DATA_OPS
from woodpecker.graph.evaluate import evaluate
from woodpecker.graph.fold_batchnorm import fold_batchnorm
from woodpecker.graph.fold_constants import fold_constants
from woodpecker.graph.fuse import fuse
from woodpecker.importer import SUPPORTED_OPS, ImportedModel, import_onnx_with_weights
from woodpecker.ops import registered, semantics_of
from woodpecker.ops.registry import step_op_names
from woodpecker.ops.steps import STEP_KINDS

# ----------------------------------------------------------------------------
# The registry.


def test_every_op_class_has_one_semantics_entry() -> None:
    entries = [entry.op for entry in registered()]
    assert len(entries) == len(set(entries))
    assert set(entries) == set(wpk.OP_CLASSES.values())


def test_lookup_by_class_name_and_op_agree() -> None:
    entry = semantics_of(wpk.ReluOp)
    assert semantics_of("wpk.relu") is entry and semantics_of("relu") is entry
    with pytest.raises(KeyError, match=r"'wpk\.no_such_op' is not an op of the wpk dialect"):
        semantics_of("no_such_op")


def test_every_op_has_a_shape_rule_or_check() -> None:
    missing = [e.name for e in registered() if e.shape is None and e.check is None]
    assert not missing, f"ops without a result shape rule: {missing}"


def test_step_vocabulary_is_the_entries_steps() -> None:
    steps = {e.step.name for e in registered() if e.step}
    steps |= {e.swapped_step.name for e in registered() if e.swapped_step}
    assert steps <= set(STEP_KINDS)
    # silu is the one step that no op is (wpk-fuse makes it of x * sigmoid(x)).
    assert set(STEP_KINDS) - steps == {"silu"}
    assert {semantics_of(name).step.name for name in step_op_names()} == {
        e.step.name for e in registered() if e.step
    }


# ----------------------------------------------------------------------------
# Running the imported IR with numpy.


@dataclass
class NumpyModel:
    """An imported model run op by op with the ops' numpy semantics (CompiledModel.run's calling convention)."""

    imported: ImportedModel

    def run(self, output_names: Sequence[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        imported = self.imported
        with imported.context:
            main = imported.module.body.operations[0]
            block = main.regions[0].blocks[0]
            values: dict[ir.Value, np.ndarray] = {}
            for name, arg in zip(imported.input_names, block.arguments, strict=True):
                feed = np.asarray(feeds[name])  # integer and bool inputs keep their dtype
                values[arg] = feed if feed.dtype.kind in "biu" else feed.astype(np.float32)
            for child in block.operations:
                op = child.operation
                if op.name == "func.return":
                    outputs = dict(zip(imported.output_names, (values[v] for v in op.operands), strict=True))
                    return [outputs[n] for n in (output_names or imported.output_names)]
                if op.name in DATA_OPS:
                    values[op.results[0]] = imported.weights.value_of(op)
                else:
                    values[op.results[0]] = evaluate(op, [values[v] for v in op.operands])
        raise AssertionError("@main has no func.return")


def interpret(opt_level: int) -> Callable[[onnx.ModelProto], NumpyModel]:
    """What check_node_case compiles with: import, the O2 graph passes if asked, a NumpyModel."""

    def build(model: onnx.ModelProto) -> NumpyModel:
        imported = import_onnx_with_weights(model)
        if opt_level:
            graph = GraphContext(imported.weights)
            with imported.context, ir.Location.unknown():
                root = imported.module.operation
                fold_constants(root, graph)
                fold_batchnorm(root, graph)
                fuse(root)
                cleanup(root)
        return NumpyModel(imported)

    return build


CASES: list[NodeCase] = select_cases(SUPPORTED_OPS)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("opt_level", (0, 2), ids=("O0", "O2"))
def test_numpy_semantics_match_onnx(case: NodeCase, opt_level: int, node_test_dir: Path) -> None:
    case = dataclasses.replace(case, directory=node_test_dir / "node" / case.name)
    try:
        check_node_case(case, interpret(opt_level), KNOWN_LIMITATIONS, LIMITATION_ERRORS)
    except SkipCase as exc:
        pytest.skip(str(exc))
