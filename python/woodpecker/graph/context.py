"""`GraphContext`: what the graph passes need besides the IR, i.e. the weight arrays.

A `wpk.weight` holds a dense_resource blob the bindings cannot read back, so the
arrays live in a `WeightTable` that travels with the module. The compile API
hands over the importer's table; `wpk-opt` decodes one from the printed module
(`LazyGraphContext`, once per pipeline run). Folding passes read weights with
`array_of` and create new ones with `constant`, which registers them in the
table, so that the runtime finds them by resource name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from mlir import ir

from woodpecker.dialect.weights import WeightTable, materialize, resource_name
from woodpecker.graph.fold_budget import FoldBudget

DATA_OPS = ("wpk.weight", "wpk.constant")


@dataclass
class GraphContext:
    """The weight table of one module, shared by the graph passes run on it, and the budget
    of constant folding (fold_budget.py) of their run."""

    weights: WeightTable
    fold_budget: FoldBudget = field(default_factory=FoldBudget)

    def get(self, root: ir.Operation) -> GraphContext:
        """Itself (passes.GraphContextProvider: what the graph pass wrappers ask for)."""
        return self

    def array_of(self, value: ir.Value) -> np.ndarray | None:
        """The array of a value produced by `wpk.weight` or `wpk.constant`, else None."""
        owner = value.owner
        if not isinstance(owner, ir.OpView | ir.Operation) or owner.operation.name not in DATA_OPS:
            return None
        return self.weights.value_of(owner.operation)

    def constant(self, array: np.ndarray, name: str, loc: ir.Location | None = None) -> ir.Value:
        """A new `wpk.weight` (or tiny `wpk.constant`) holding `array`, at the current insertion
        point; an integer or bool array becomes a `wpk.constant` of its element type."""
        array = np.asarray(array)
        if array.dtype.kind not in "biu":
            array = array.astype(np.float32)
        return materialize(array, name, self.weights, loc)

    def used_resources(self, root: ir.Operation) -> set[str]:
        """Resource names of the `wpk.weight` ops under `root`."""
        names: set[str] = set()

        def visit(op: ir.Operation) -> ir.WalkResult:
            if op.name == "wpk.weight":
                names.add(resource_name(op.attributes["value"]))
            return ir.WalkResult.ADVANCE

        root.walk(visit)
        return names


@dataclass
class LazyGraphContext:
    """A GraphContext decoded from the module's printed resources on first use (for wpk-opt)."""

    context: GraphContext | None = None

    def get(self, root: ir.Operation) -> GraphContext:
        if self.context is None:
            self.context = GraphContext(WeightTable.from_module(root))
        return self.context
