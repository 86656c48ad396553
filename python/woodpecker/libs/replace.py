"""Putting library calls in place of kernels, before the other kernels are scheduled.

A kernel's configuration `{"impl": "onednn"}` (or `"blas"`) asks for the library; any other
configuration (or `"impl": "generated"`) is a schedule of our own. `replace_library_kernels`
finds the kernels of `@main` (the same numbering as tuning and selection use), replaces each
requested one by its library call (woodpecker.libs.emit), erases what became dead (the
replaced ops, a pad only the library kernel read, a weight transpose), and tells how the
kernels left are named when the module's kernels are found again.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from mlir import ir

from woodpecker.errors import CompilationError
from woodpecker.libs.emit import LibraryKernel, build_call, emit_call, implementation_name
from woodpecker.libs.match import LIBRARIES, NotApplicable, match_kernel
from woodpecker.schedule.kernels import KERNEL_ATTR, KINDS, ROLE_ATTR, erase_unused, find_kernels

IMPL_KNOB = "impl"
GENERATED = "generated"
IMPLEMENTATIONS = (GENERATED, *LIBRARIES)
_FORMER_NAME = "wpk.former_kernel"


def implementation_of(config: Mapping | None) -> str:
    """The implementation a kernel configuration asks for."""
    impl = (config or {}).get(IMPL_KNOB, GENERATED)
    if impl not in IMPLEMENTATIONS:
        raise CompilationError(f"unknown implementation '{impl}' (known: {', '.join(IMPLEMENTATIONS)})")
    return impl


def split_configs(configs: Mapping[str, Mapping] | None) -> tuple[dict[str, str], dict[str, dict]]:
    """(kernel name -> library, the schedule configurations without the `impl` knob)."""
    libraries, schedules = {}, {}
    for name, config in (configs or {}).items():
        impl = implementation_of(config)
        if impl != GENERATED:
            libraries[name] = impl
            continue
        schedules[name] = {k: v for k, v in dict(config).items() if k != IMPL_KNOB}
    return libraries, schedules


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
    libraries: Mapping[str, str],
    weights: Sequence[np.ndarray] | None,
    num_weights: int,
    threads: int,
) -> tuple[list[LibraryKernel], dict[str, str]]:
    """Replaces the kernels named in `libraries` (by kernel name or kind) by library calls, in place.

    Returns the emitted calls (keep them alive as long as the code) and old name -> new name of
    every kernel left.
    """
    block = _main_block(module)
    kernels = find_kernels(module)
    by_name = {kernel.name: kernel for kernel in kernels}
    unknown = sorted(set(libraries) - set(by_name) - set(KINDS))
    if unknown:
        raise CompilationError(f"library implementation asked for '{unknown[0]}', which names no kernel")
    if weights is None or len(weights) != num_weights:
        raise CompilationError("library kernels need the model's weights at compile time")
    first_weight = len(block.arguments) - num_weights
    by_arg = {first_weight + i: w for i, w in enumerate(weights)}
    emitted: list[LibraryKernel] = []
    for kernel in kernels:
        library = libraries.get(kernel.name, libraries.get(kernel.kind))
        if library is None:
            kernel.main.attributes[_FORMER_NAME] = ir.StringAttr.get(kernel.name)
            continue
        try:
            plan = match_kernel(kernel, library, first_weight)
        except NotApplicable as err:
            # The choice was made on the kernel cut out of the model; inside the model it can
            # differ (e.g. a pad the library cannot take): keep the generated kernel.
            warnings.warn(f"kernel {kernel.name} ({kernel.named_op}) cannot use {library} in this model: {err}; "
                          "using the generated kernel", stacklevel=3)
            kernel.main.attributes[_FORMER_NAME] = ir.StringAttr.get(kernel.name)
            continue
        try:
            call = build_call(plan, by_arg, threads)
        except Exception as err:  # the library refused the parameters
            raise CompilationError(f"kernel {kernel.name}: {library} failed to build: {err}") from None
        with module.context:
            result = emit_call(module, plan, call)
        plan.replaces.results[0].replace_all_uses_with(result)
        emitted.append(LibraryKernel(plan.description, kernel.name, library, implementation_name(plan, call), call))
    _strip(block, (KERNEL_ATTR, ROLE_ATTR))
    erase_unused(block)
    renaming = {}
    for kernel in find_kernels(module):
        if _FORMER_NAME in kernel.main.attributes:
            renaming[ir.StringAttr(kernel.main.attributes[_FORMER_NAME]).value] = kernel.name
    _strip(block, (KERNEL_ATTR, ROLE_ATTR, _FORMER_NAME))
    return emitted, renaming


def rename_configs(configs: Mapping[str, dict], renaming: Mapping[str, str], kinds: Sequence[str]) -> dict[str, dict]:
    """Configurations by the kernels' new names; those of kernels that are gone are dropped."""
    renamed = {}
    for name, config in configs.items():
        if name in kinds:
            renamed[name] = config
        elif name in renaming:
            renamed[renaming[name]] = config
    return renamed
