"""Running `mlir.rewrite` patterns over `wpk` IR, and the IR queries the patterns share.

IRDL-defined ops have no side-effect interface, so the greedy driver (and
upstream canonicalize/cse) never erases a dead `wpk` op; `erase_dead_ops` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mlir import ir
from mlir.rewrite import (
    GreedyRewriteConfig,
    GreedySimplifyRegionLevel,
    PatternRewriter,
    RewritePatternSet,
    apply_patterns_and_fold_greedily,
)

MatchAndRewrite = Callable[[ir.Operation, PatternRewriter], Any]
"""A pattern body: returns a false value (None) when it rewrote `op`, a true one when it did not match."""

NO_MATCH = True


@dataclass(frozen=True)
class Pattern:
    """A rewrite pattern on ops named `root`."""

    root: str
    rewrite: MatchAndRewrite
    benefit: int = 1


def apply_patterns(root: ir.Operation, patterns: Sequence[Pattern]) -> None:
    """Applies `patterns` to everything under `root` with the greedy driver until nothing matches."""
    if not patterns:
        return
    pattern_set = RewritePatternSet(root.context)
    for pattern in patterns:
        pattern_set.add(pattern.root, _operation_view(pattern.rewrite), pattern.benefit)
    config = GreedyRewriteConfig()
    config.max_iterations = -1  # every pattern removes an op or a match, so this terminates
    config.region_simplification_level = GreedySimplifyRegionLevel.DISABLED
    apply_patterns_and_fold_greedily(root, pattern_set.freeze(), config)


def _operation_view(rewrite: MatchAndRewrite) -> MatchAndRewrite:
    """Calls `rewrite` with the Operation (not an OpView) and its location as the default one."""

    def call(op: ir.Operation | ir.OpView, rewriter: PatternRewriter) -> Any:
        with op.location:
            return rewrite(op.operation, rewriter)

    call.__name__ = getattr(rewrite, "__name__", "pattern")
    return call


# ----------------------------------------------------------------------------
# Queries.


def producer(value: ir.Value) -> ir.Operation | None:
    """The op defining `value`, None for a block argument."""
    owner = value.owner
    if isinstance(owner, ir.Block):
        return None
    return owner.operation


def producer_named(value: ir.Value, names: Sequence[str] | str) -> ir.Operation | None:
    """The op defining `value` when its name is in `names`."""
    op = producer(value)
    if op is None:
        return None
    allowed = (names,) if isinstance(names, str) else tuple(names)
    return op if op.name in allowed else None


def use_count(value: ir.Value) -> int:
    return sum(1 for _ in value.uses)


def only_user(value: ir.Value) -> ir.Operation | None:
    """The op using `value` when it has exactly one use (one operand of one op), else None."""
    uses = list(value.uses)
    return uses[0].owner.operation if len(uses) == 1 else None


def used_only_by(value: ir.Value, op: ir.Operation) -> bool:
    """Whether `value` has exactly one use, as an operand of `op`."""
    user = only_user(value)
    return user is not None and user == op


def shape(value: ir.Value) -> list[int]:
    return list(ir.RankedTensorType(value.type).shape)


# ----------------------------------------------------------------------------
# Dead code.


def erase_dead_ops(root: ir.Operation) -> int:
    """Erases `wpk` ops whose results are all unused, anywhere under `root`; returns how many."""
    erased = 0
    for block in _blocks(root):
        changed = True
        while changed:
            changed = False
            for op in reversed(list(block.operations)):
                op = op.operation
                if op.name.startswith("wpk.") and all(use_count(r) == 0 for r in op.results):
                    op.erase()
                    erased += 1
                    changed = True
    return erased


def _blocks(root: ir.Operation) -> list[ir.Block]:
    found: list[ir.Block] = []
    for region in root.regions:
        for block in region.blocks:
            found.append(block)
            for op in block.operations:
                found.extend(_blocks(op.operation))
    return found


# ----------------------------------------------------------------------------
# Locations and names.


def fused_location(*ops: ir.Operation) -> ir.Location:
    """One location naming every op a rewrite merged (`loc(fused["conv1", "bn1"])`)."""
    locations = [op.location for op in ops]
    if len(locations) == 1:
        return locations[0]
    return ir.Location.fused(locations, context=locations[0].context)


def location_name(op: ir.Operation) -> str:
    """A name for values derived from `op`: its (first) name location, else its op name."""
    stack = [op.location]
    while stack:
        loc = stack.pop(0)
        if loc.is_a_name():
            return loc.name_str
        if loc.is_a_fused():
            stack.extend(loc.locations)
    return op.name.removeprefix("wpk.")
