"""The `Target` interface: what the CPU and CUDA back ends implement for every compile.

A compile is the same few steps for every target (`woodpecker.compile`):

    lowered = lower_model(...)                      # import -> optimize -> lower (woodpecker.frontend)
    cut = target.cut(lowered)                       # model kernels, each a KernelTask + SearchSpace
    plan = select.plan_kernels(target, cut, ...)    # per kernel: Generated(config) | Library(name, spec)
    model = target.codegen(lowered, cut, plan, stats)

and tuning (`wpk tune`) uses the same cut, search spaces and runners. A target says how to cut
kernels, which library calls can compute a kernel (and why not), how to choose without
measuring, how to measure (a `Runner`), and how to generate code from the decisions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from woodpecker.kernels.decision import Decision, Library
from woodpecker.kernels.space import SearchSpace
from woodpecker.kernels.task import KernelTask, Runner

if TYPE_CHECKING:
    from woodpecker.stats import CompileStats


@dataclass
class CutKernel:
    """One kernel of a model as a target cut it: its name (`k3_conv`, the same in every table,
    report, record and option), its kind, its standalone task and its search space."""

    name: str
    kind: str
    task: KernelTask
    space: SearchSpace


@dataclass
class Cut:
    """A model cut into kernels, in program order; `state` is what the target's code
    generation needs besides (the cut module, the partition)."""

    kernels: list[CutKernel]
    state: Any = None


@dataclass
class Candidate:
    """One way to implement a kernel: a label (`generated`, `default`, a library name), the
    decision it stands for, and why it cannot be used (None: it can)."""

    impl: str
    decision: Decision
    reason: str | None = None

    @property
    def applicable(self) -> bool:
        return self.reason is None

    @property
    def config(self) -> dict[str, Any]:
        """The generated kernel's knob values ({} for a library call)."""
        return dict(self.decision.config) if not isinstance(self.decision, Library) else {}


@dataclass
class Plan:
    """What the selection decided for a cut model (woodpecker.select.plan_kernels)."""

    decisions: dict[str, Decision] = field(default_factory=dict)  # kernel name -> decision
    choices: list = field(default_factory=list)  # KernelChoice per kernel signature
    tuned_kernels: int = 0  # kernels compiled with a tuning record
    library_kernels: int = 0  # kernels the selection gave to a library
    header: dict[str, Any] = field(default_factory=dict)  # the selection report's header
    unavailable: dict[str, str] = field(default_factory=dict)  # library -> why it was not used
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # task key -> its tuning record
    report: dict[str, Any] = field(default_factory=dict)  # the selection report (header + choices)


class Target(ABC):
    """A code generator the compile, the selection and the tuner drive the same way."""

    name: ClassVar[str]  # "cpu" | "cuda"
    libraries: ClassVar[tuple[str, ...]]  # the vendor libraries it can call
    heuristic_text: ClassVar[str]  # the stated rule `heuristic` follows

    @property
    @abstractmethod
    def device(self) -> str:
        """The hardware the timings of this target belong to (part of every task's signature)."""

    @abstractmethod
    def cut(self, lowered: Any) -> Cut:
        """The kernels of a `LoweredModel` (woodpecker.frontend), in program order."""

    @abstractmethod
    def library_options(self, task: KernelTask, libraries: Sequence[str]) -> dict[str, Library | str]:
        """Per library: the call that computes the task's kernel, or why there is none."""

    @abstractmethod
    def heuristic(self, task: KernelTask, candidates: Sequence[Candidate]) -> Candidate:
        """The candidate the stated heuristic picks (nothing measured)."""

    @abstractmethod
    def runner(self) -> Runner:
        """A runner measuring this target's candidates on this machine."""

    @abstractmethod
    def codegen(self, lowered: Any, cut: Cut | None, plan: Plan, stats: CompileStats) -> Any:
        """The compiled model, from the decisions (`cut` is None when nothing was cut)."""

    def library_unavailable(self, library: str) -> str | None:
        """Why `library` cannot be called from code compiled here (None: it can)."""
        return None

    def measure_unavailable(self) -> str | None:
        """Why candidates cannot be measured on this machine, as the error to show (None: they can)."""
        return None

    def needs_cut(self, libraries: Sequence[str], read_records: bool) -> bool:
        """Whether selecting needs the kernels cut out (else code generation cuts itself)."""
        return True

    def has_records(self, storage: str | None) -> bool:
        """Whether the tuning storage may hold records of this target."""
        return True

    def report_header(self, mode: str, libraries: Sequence[str]) -> dict[str, Any]:
        """The selection report's header: the target, how the choices were made."""
        return {"target": self.name, "libraries": list(libraries), "mode": mode, "heuristic": self.heuristic_text}
