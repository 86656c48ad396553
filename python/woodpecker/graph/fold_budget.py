"""How big a constant fold may get: `FoldOptions` (the limits) and `FoldBudget` (what one
import or pass pipeline has folded so far).

A fold is decided from the result's shape (the op's result type, or the shape rule) before
anything is evaluated: a tiny model can describe a tens-of-GiB constant (a pad or a broadcast
of a small weight), and evaluating it at compile time would exhaust memory. A fold over the
limits is not done; the op stays in the graph and computes its result at run time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

MIB = 1 << 20


@dataclass(frozen=True)
class FoldOptions:
    """Limits on constant folding, in bytes of the folded results (as stored: f32 for weights)."""

    max_tensor_bytes: int = 64 * MIB  # one folded tensor
    max_total_bytes: int = 1024 * MIB  # all the tensors folded in one import or pipeline run


@dataclass
class FoldBudget:
    """The bytes folded so far against `options`."""

    options: FoldOptions = field(default_factory=FoldOptions)
    used_bytes: int = 0

    def admits(self, shape: Sequence[int], itemsize: int = 4) -> bool:
        """Whether a result of `shape` (elements of `itemsize` bytes) may be folded; if so, it
        is counted as folded."""
        size = math.prod(int(d) for d in shape) * itemsize
        if size > self.options.max_tensor_bytes or self.used_bytes + size > self.options.max_total_bytes:
            return False
        self.used_bytes += size
        return True
