"""Putting library calls in place of kernels, before the other kernels are scheduled.

`replace_library_kernels` takes the `Library` decisions by model kernel name (or kind), finds
the model kernels of `@main` (the names the module was cut with: they are on its ops),
replaces each requested one by its library call (woodpecker.libs.emit) and erases what became
dead (the replaced ops, the kernel's padding copies, a weight transpose). The kernels left keep
their names: their ops carry them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from mlir import ir

from woodpecker.errors import CompilationError
from woodpecker.kernels.decision import Library
from woodpecker.libs.emit import LibraryKernel, build_call, call_spec, emit_call, implementation_name
from woodpecker.libs.match import NotApplicable, match_kernel
from woodpecker.schedule.kernels import KERNEL_ATTR, KINDS, ROLE_ATTR, erase_unused, find_kernels, model_kernels


def _main_block(module: ir.Module) -> ir.Block:
    from woodpecker.graph.outline_weights import main_func

    return main_func(module).regions[0].blocks[0]


def _strip(block: ir.Block, names: Sequence[str]) -> None:
    for op in block.operations:
        for name in names:
            if name in op.operation.attributes:
                del op.operation.attributes[name]


def replace_library_kernels(
    module: ir.Module,
    libraries: Mapping[str, Library],
    weights: Sequence[np.ndarray] | None,
    num_weights: int,
    threads: int,
) -> list[LibraryKernel]:
    """Replaces the model kernels named in `libraries` (by name or kind) by library calls, in
    place; returns the emitted calls (keep them alive as long as the code)."""
    block = _main_block(module)
    kernels = model_kernels(find_kernels(module))
    names = {kernel.name for kernel in kernels}
    unknown = sorted(set(libraries) - names - set(KINDS))
    if unknown:
        raise CompilationError(
            f"library implementation asked for '{unknown[0]}', which names no kernel "
            f"(kernels: {', '.join(sorted(names)) or 'none'})"
        )
    if weights is None or len(weights) != num_weights:
        raise CompilationError("library kernels need the model's weights at compile time")
    first_weight = len(block.arguments) - num_weights
    emitted: list[LibraryKernel] = []
    for kernel in kernels:
        choice = libraries.get(kernel.name, libraries.get(kernel.kind))
        if choice is None:
            continue
        library = choice.name
        unit = kernel.main
        try:
            plan = match_kernel(unit, library, first_weight)
        except NotApplicable as err:
            # The choice was made on the kernel cut out of the model; inside the model it can
            # differ (e.g. a pad the library cannot take): keep the generated kernel.
            warnings.warn(
                f"kernel {kernel.name} ({unit.named_op}) cannot use {library} in this model: {err}; "
                "using the generated kernel",
                stacklevel=3,
            )
            continue
        try:
            spec = call_spec(plan, first_weight)
            call = build_call(spec, weights, threads)
        except Exception as err:  # the library refused the parameters
            raise CompilationError(f"kernel {kernel.name}: {library} failed to build: {err}") from None
        with module.context:
            result = emit_call(module, plan, spec, call)
        plan.replaces.results[0].replace_all_uses_with(result)
        emitted.append(
            LibraryKernel(plan.description, kernel.name, library, implementation_name(plan, call), call, spec)
        )
    _strip(block, (KERNEL_ATTR, ROLE_ATTR))
    erase_unused(block)
    return emitted
