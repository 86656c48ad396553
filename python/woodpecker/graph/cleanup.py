"""`wpk-cleanup`: dead code and duplicate removal for `wpk` ops.

Upstream `canonicalize` and `cse` skip IRDL-defined ops (they have no
side-effect interface, so they are neither trivially dead nor pure); this pass
does both for `wpk` ops: an op whose results are unused is erased, and an op
with the same name, operands, attributes and result types as an earlier op in
the same block is replaced by it (two `wpk.weight` ops of one resource become
one).
"""

from __future__ import annotations

from mlir import ir

from woodpecker.graph.rewrite import erase_dead_ops

PASS_NAME = "wpk-cleanup"

Key = tuple[str, tuple[ir.Value, ...], tuple[tuple[str, str], ...], tuple[str, ...]]


def _key(op: ir.Operation) -> Key:
    attrs = tuple(sorted((name, str(attr)) for name, attr in op.attributes.items()))
    return op.name, tuple(op.operands), attrs, tuple(str(r.type) for r in op.results)


def merge_duplicates(root: ir.Operation) -> int:
    """Replaces each `wpk` op that repeats an earlier one of its block; returns how many."""
    merged = 0
    for region in root.regions:
        for block in region.blocks:
            seen: dict[Key, ir.Operation] = {}
            for op in list(block.operations):
                op = op.operation
                merged += merge_duplicates(op)
                if not op.name.startswith("wpk.") or op.regions:
                    continue
                key = _key(op)
                earlier = seen.get(key)
                if earlier is None:
                    seen[key] = op
                    continue
                for old, new in zip(op.results, earlier.results, strict=True):
                    old.replace_all_uses_with(new)
                op.erase()
                merged += 1
    return merged


def cleanup(root: ir.Operation) -> None:
    """The pass: dead ops first (they may hide duplicates' users), duplicates, then dead ops again."""
    erase_dead_ops(root)
    if merge_duplicates(root):
        erase_dead_ops(root)
