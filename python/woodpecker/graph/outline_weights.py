"""`wpk-outline-weights`: turn `wpk.weight` ops of `@main` into trailing function arguments.

At run time the weights are passed as memrefs that point at the numpy arrays
already in memory, so the JIT never compiles megabytes of constants and a
compiled model shares its weights with the caller without copies.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlir import ir
from mlir.dialects import func

from woodpecker.dialect.weights import resource_name


@dataclass(frozen=True)
class OutlinedWeight:
    """One weight argument: its resource name and the argument position."""

    resource: str
    arg_index: int


def main_func(module: ir.Module | ir.Operation) -> func.FuncOp:
    op = module.operation if isinstance(module, ir.Module) else module
    for candidate in op.regions[0].blocks[0].operations:
        if candidate.operation.name == "func.func" and candidate.attributes["sym_name"].value == "main":
            return candidate
    raise ValueError("module has no func.func @main")


def outline_weights(module: ir.Module | ir.Operation) -> list[OutlinedWeight]:
    """Replaces every `wpk.weight` in @main by a new trailing argument, in order of appearance.

    Weights with the same resource share one argument.
    """
    fn = main_func(module)
    block = fn.regions[0].blocks[0]
    by_resource: dict[str, ir.Value] = {}
    outlined: list[OutlinedWeight] = []
    for op in list(block.operations):
        if op.operation.name != "wpk.weight":
            continue
        name = resource_name(op.attributes["value"])
        if name not in by_resource:
            by_resource[name] = block.add_argument(op.results[0].type, op.location)
            outlined.append(OutlinedWeight(name, len(block.arguments) - 1))
        op.results[0].replace_all_uses_with(by_resource[name])
        op.operation.erase()
    if outlined:
        fn_type = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
        new_inputs = [arg.type for arg in block.arguments]
        fn.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(new_inputs, list(fn_type.results)))
    return outlined
