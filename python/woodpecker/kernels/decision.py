"""What code generation is told for one kernel: `Generated(config) | Library(name, spec)`.

The selection (`woodpecker.select`) decides per model kernel, by name (`k3_conv`), and a target
generates code from those decisions (`woodpecker.kernels.target.Target.codegen`). A user may
also configure kernels by name or by kind (`CpuOptions.schedules`, `CompileOptions.gpu_configs`):
a dict of knob values is `Generated(dict)`; `{"impl": "onednn"}` is accepted there as the
spelling of `Library("onednn")` (`decision_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Config = dict[str, Any]

GENERATED = "generated"  # our generated kernel (its tuning record, or the default schedule)
DEFAULT = "default"  # the generated kernel with its default schedule, next to a tuned one
IMPL_KNOB = "impl"  # the user-facing spelling of a library choice in a configuration


@dataclass(frozen=True)
class Generated:
    """Our generated kernel with these knob values (missing knobs: the template's default)."""

    config: Config = field(default_factory=dict)

    def describe(self) -> str:
        return f"generated {self.config}" if self.config else "generated (default schedule)"


@dataclass(frozen=True)
class Library:
    """A vendor library call computing the kernel; `spec` is the target's description of the
    call (the CUDA libraries' graph spec; empty on the CPU, where code generation reads the
    call's parameters from the kernel itself)."""

    name: str
    spec: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return self.name


Decision = Generated | Library


def decision_of(value: Decision | Mapping[str, Any] | None, libraries: tuple[str, ...] = ()) -> Decision:
    """A decision from a user configuration: a `Decision` as is, `{"impl": name}` a `Library`
    (`{"impl": "generated", ...}` the rest of the dict as knobs), any other dict `Generated`.
    `libraries`, when given, are the names a `Library` may have (else a ValueError)."""
    if isinstance(value, Generated | Library):
        return value
    config = dict(value or {})
    impl = config.pop(IMPL_KNOB, GENERATED)
    if impl == GENERATED:
        return Generated(config)
    if libraries and impl not in libraries:
        raise ValueError(f"unknown implementation '{impl}' (known: {', '.join((GENERATED, *libraries))})")
    if config:
        raise ValueError(f"a library choice ({impl}) takes no knobs, got {sorted(config)}")
    return Library(str(impl))


def split_decisions(
    decisions: Mapping[str, Decision | Mapping[str, Any]] | None, libraries: tuple[str, ...] = ()
) -> tuple[dict[str, Library], dict[str, Config]]:
    """(kernel name or kind -> library call, kernel name or kind -> generated configuration)."""
    calls: dict[str, Library] = {}
    configs: dict[str, Config] = {}
    for name, value in (decisions or {}).items():
        decision = decision_of(value, libraries)
        if isinstance(decision, Library):
            calls[name] = decision
        else:
            configs[name] = dict(decision.config)
    return calls, configs


def config_of(decision: Decision) -> Config:
    """The decision as a runner's JSON configuration: the knobs, or `{"impl": name}`."""
    if isinstance(decision, Library):
        return {IMPL_KNOB: decision.name}
    return dict(decision.config)
