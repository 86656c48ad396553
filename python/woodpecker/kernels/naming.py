"""The one naming scheme of model kernels, shared by the CPU cutter and the GPU partition.

A model kernel is named `k<i>_<kind>` (`k3_conv`): `i` numbers the kernels in program order,
`kind` is the most significant kind among its parts (a convolution's padding copies and the
convolution: `conv`). A kernel cut before keeps the name its ops carry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# A kernel's kind is the first of these among its parts' kinds (the CPU's units use a subset).
KIND_PRIORITY = (
    "conv",
    "depthwise_conv",
    "blocked_conv",
    "blocked_depthwise_conv",
    "matmul",
    "batch_matmul",
    "pool",
    "reduction",
    "gather",
    "elementwise",
    "fill",
)


def kernel_name(index: int, kind: str) -> str:
    """The name of model kernel `index`: what --kernel, reports, tables and configs use."""
    return f"k{index}_{kind}"


def kernel_kind(kinds: Iterable[str]) -> str:
    """The kind of a kernel whose parts have `kinds`."""
    present = set(kinds)
    return next(kind for kind in KIND_PRIORITY if kind in present)


def assign_names(groups: Sequence[tuple[str | None, str]]) -> list[str]:
    """Names for kernels in program order, each given as (the name it was cut with, or None;
    its kind): cut-again kernels keep theirs, the others are numbered after the names taken."""
    taken = {name for name, _ in groups if name is not None}
    names = []
    index = 0
    for name, kind in groups:
        if name is None:
            while any(other.startswith(f"k{index}_") for other in taken):
                index += 1
            name = kernel_name(index, kind)
            taken.add(name)
            index += 1
        names.append(name)
    return names


# The tags that carry a kernel's identity on IR ops (discardable attributes, stripped before LLVM):
# the `wpk` op an op was lowered from (its position in @main; set by wpk-lower-to-linalg when
# the compile asks) and the name of the model kernel it belongs to (set by a cut, read back by
# the next cut of the same module).
GROUP_ATTR = "wpk.group"
MODEL_KERNEL_ATTR = "wpk.model_kernel"


def join_names(names: Sequence[str], limit: int = 3) -> str:
    """Model kernel names for one table cell: all of them up to `limit`, else the first
    `limit - 1` and how many more ('k3_conv,k7_conv,+4')."""
    if len(names) <= limit:
        return ",".join(names)
    return f"{','.join(names[: limit - 1])},+{len(names) - limit + 1}"
