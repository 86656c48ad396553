"""A small builder of transform-dialect scripts (`transform.named_sequence @__transform_main`).

Templates call `tile_for`, `tile_forall`, `fuse_into`, `vectorize`, ... and get handle names
back; `text()` returns the whole module. Handles of one kernel's ops are matched by their
`wpk.kernel`/`wpk.role` tags (schedule/kernels.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from woodpecker.schedule.kernels import KERNEL_ATTR, ROLE_ATTR

ANY = "!transform.any_op"

# Lowering of vector ops after vectorization (broadcast lowering is left to the LLVM
# conversion: `lower_broadcast` here made the greedy driver loop forever on bias broadcasts).
VECTOR_LOWERING = (
    'transform.apply_patterns.vector.lower_contraction lowering_strategy = "outerproduct"',
    "transform.apply_patterns.vector.lower_outerproduct",
    'transform.apply_patterns.vector.lower_multi_reduction lowering_strategy = "innerparallel"',
    "transform.apply_patterns.vector.lower_transfer max_transfer_rank = 1",
    "transform.apply_patterns.vector.lower_shape_cast",
    "transform.apply_patterns.canonicalization",
)
VECTOR_CLEANUP = (
    "transform.apply_patterns.vector.reduction_to_contract",
    "transform.apply_patterns.vector.transfer_permutation_patterns",
    "transform.apply_patterns.canonicalization",
)


def _sizes(sizes: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(s)) for s in sizes) + "]"


@dataclass
class Script:
    """Transform ops of one kernel's schedule, applied to the module's root handle `%root`."""

    lines: list[str] = field(default_factory=list)
    counter: int = 0
    # Earlier phases: each is run by its own interpreter call, so no handle lives across a
    # phase boundary (rewrites that replace ops, like unit-dim folding, then cannot break one).
    done_phases: list[list[str]] = field(default_factory=list)

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"%{stem}{self.counter}"

    def add(self, line: str) -> None:
        self.lines.append("    " + line)

    def next_phase(self) -> None:
        self.done_phases.append(self.lines)
        self.lines = []

    def annotate(self, op: str, name: str, value: int) -> None:
        """Sets the integer attribute `name` on the payload of `op` (to find it in a later phase)."""
        param = self.fresh("param")
        self.add(f"{param} = transform.param.constant {value} : i64 -> !transform.param<i64>")
        self.add(f'transform.annotate {op} "{name}" = {param} : {ANY}, !transform.param<i64>')

    def match_attribute(self, name: str, value: int, within: str = "%root") -> str:
        handle = self.fresh("marked")
        self.add(
            f"{handle} = transform.structured.match attributes{{{name} = {value} : i64}} in {within} : ({ANY}) -> {ANY}"
        )
        return handle

    def match_ops(self, names: Sequence[str], within: str) -> str:
        handle = self.fresh("ops")
        quoted = ", ".join(f'"{n}"' for n in names)
        self.add(f"{handle} = transform.structured.match ops{{[{quoted}]}} in {within} : ({ANY}) -> {ANY}")
        return handle

    def comment(self, text: str) -> None:
        self.add(f"// {text}")

    # -- matching ------------------------------------------------------------------------------

    def match_role(self, kernel: int, role: str) -> str:
        handle = self.fresh(role)
        self.add(
            f"{handle} = transform.structured.match attributes{{{KERNEL_ATTR} = {kernel} : i64, "
            f'{ROLE_ATTR} = "{role}"}} in %root : ({ANY}) -> {ANY}'
        )
        return handle

    def func(self) -> str:
        handle = self.fresh("func")
        self.add(f'{handle} = transform.structured.match ops{{["func.func"]}} in %root : ({ANY}) -> {ANY}')
        return handle

    # -- loop transformations ------------------------------------------------------------------

    def tile_for(
        self, op: str, sizes: Sequence[int], interchange: Sequence[int] | None = None
    ) -> tuple[str, list[str]]:
        """`tile_using_for`; returns the tiled op and one loop handle per non-zero size (outer first)."""
        n_loops = sum(1 for s in sizes if s)
        if n_loops == 0:
            return op, []
        tiled = self.fresh("tiled")
        loops = [self.fresh("loop") for _ in range(n_loops)]
        order = f" interchange = {_sizes(interchange)}" if interchange else ""
        self.add(
            f"{tiled}, {', '.join(loops)} = transform.structured.tile_using_for {op} tile_sizes {_sizes(sizes)}{order}"
            f" : ({ANY}) -> ({', '.join([ANY] * (n_loops + 1))})"
        )
        return tiled, loops

    def tile_forall(self, op: str, sizes: Sequence[int]) -> tuple[str, str]:
        tiled, loop = self.fresh("tiled"), self.fresh("forall")
        self.add(
            f"{tiled}, {loop} = transform.structured.tile_using_forall {op} tile_sizes {_sizes(sizes)}"
            f" : ({ANY}) -> ({ANY}, {ANY})"
        )
        return tiled, loop

    def fuse_into(self, producer: str, loop: str) -> tuple[str, str]:
        fused, new_loop = self.fresh("fused"), self.fresh("into")
        self.add(
            f"{fused}, {new_loop} = transform.structured.fuse_into_containing_op {producer} into {loop}"
            f" : ({ANY}, {ANY}) -> ({ANY}, {ANY})"
        )
        return fused, new_loop

    def vectorize(self, op: str, vector_sizes: Sequence[int] | None = None) -> None:
        sizes = f" vector_sizes {_sizes(vector_sizes)}" if vector_sizes else ""
        self.add(f"transform.structured.vectorize {op}{sizes} : {ANY}")

    def hoist_subsets(self, loop: str) -> None:
        """Moves loop-invariant read/write pairs (an accumulator tile) out of `loop` into iter_args."""
        self.add(f"transform.loop.hoist_loop_invariant_subsets {loop} : {ANY}")

    def hoist_accumulator(self, mark: str, kernel: int) -> None:
        """Makes the accumulator tile updated in the loop marked `mark = kernel` a vector iter_arg.

        LICM first: constants the vectorizer leaves in the loop (transfer paddings) make the
        reads look loop-variant. Then two rounds of hoisting: the slices of the tile, then the
        vector read/write of them. The loop is found by its mark each time (hoisting replaces it;
        canonicalization may have rebuilt it before).
        """
        self.add(f"transform.apply_licm to {self.match_attribute(mark, kernel)} : {ANY}")
        for _ in range(2):
            self.hoist_subsets(self.match_attribute(mark, kernel))

    def patterns(self, target: str, patterns: Sequence[str]) -> None:
        body = "\n".join(f"      {p}" for p in patterns)
        self.add(f"transform.apply_patterns to {target} {{\n{body}\n    }} : {ANY}")

    def texts(self) -> list[str]:
        """One transform module per phase, to be applied in order."""
        head = [
            "module attributes {transform.with_named_sequence} {",
            f"  transform.named_sequence @__transform_main(%root: {ANY} {{transform.readonly}}) {{",
        ]
        phases = [p for p in [*self.done_phases, self.lines] if p]
        return ["\n".join(head + lines + ["    transform.yield", "  }", "}"]) for lines in phases]

    def text(self) -> str:
        """All phases, for reading (one module per phase, separated by `// -----`)."""
        return "\n// -----\n".join(self.texts())
