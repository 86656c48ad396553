"""Search spaces of schedule knobs: discrete domains, constraints, a default, validation.

A `SearchSpace` describes the configurations of one kernel's schedule template: each `Knob`
has a finite domain of values (ints, bools or tuples of ints), and each `Constraint` checks a
whole configuration (divisibility, register or shared-memory budgets, thread limits) and
says why it fails. The template's heuristic picks `default`, which is always valid.

A configuration is a plain `dict[str, value]` (JSON-friendly, what the tuner and the
`--wpk-apply-schedule` file hold). `validate` fills knobs the caller left out from the
default and raises `InvalidConfigError` naming the kernel, the knob and the reason, before
anything is compiled.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from woodpecker.errors import WoodpeckerError

KnobValue = Any  # int | bool | tuple[int, ...]
Config = dict[str, KnobValue]


class InvalidConfigError(WoodpeckerError, ValueError):
    """A schedule configuration that cannot be used for a kernel, with the reason."""

    def __init__(self, kernel: str, knob: str | None, reason: str):
        self.kernel = kernel
        self.knob = knob
        self.reason = reason
        where = f"knob '{knob}'" if knob else "configuration"
        super().__init__(f"kernel {kernel}: {where}: {reason}")


@dataclass(frozen=True)
class Knob:
    """One tunable parameter: its name, finite domain, and what it does."""

    name: str
    domain: tuple[KnobValue, ...]
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.domain:
            raise ValueError(f"knob '{self.name}' has an empty domain")


@dataclass(frozen=True)
class Constraint:
    """A check over a whole configuration; `check` returns the reason it fails, or None."""

    name: str
    knobs: tuple[str, ...]  # the knobs it reads (the first is blamed in errors)
    check: Callable[[Mapping[str, KnobValue]], str | None]


def _normalize(value: KnobValue) -> KnobValue:
    """JSON lists become tuples, so configs read from files compare equal to domain values."""
    if isinstance(value, list):
        return tuple(_normalize(v) for v in value)
    return value


@dataclass
class SearchSpace:
    """The configurations of one kernel's schedule template."""

    kernel: str  # the kernel's name, used in error messages
    template: str  # e.g. "cpu.matmul", "cuda.conv"
    knobs: tuple[Knob, ...]
    default: Config
    constraints: tuple[Constraint, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.default = {k: _normalize(v) for k, v in self.default.items()}
        problems = self.violations(self.default)
        if problems:
            raise ValueError(f"{self.template} default configuration of {self.kernel} is invalid: {problems[0][1]}")

    # -- queries -------------------------------------------------------------------------------

    def knob(self, name: str) -> Knob:
        for knob in self.knobs:
            if knob.name == name:
                return knob
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.knobs)

    @property
    def size(self) -> int:
        """Configurations before constraints (the product of the domain sizes)."""
        return math.prod(len(k.domain) for k in self.knobs)

    def violations(self, config: Mapping[str, KnobValue]) -> list[tuple[str | None, str]]:
        """(knob, reason) for each problem of a complete configuration; empty when valid."""
        problems: list[tuple[str | None, str]] = []
        for knob in self.knobs:
            if knob.name not in config:
                problems.append((knob.name, "is missing"))
                continue
            value = _normalize(config[knob.name])
            if value not in knob.domain:
                problems.append((knob.name, f"value {value!r} is not in its domain {list(knob.domain)}"))
        unknown = sorted(set(config) - set(self.names))
        for name in unknown:
            problems.append((name, f"is not a knob of {self.template} (knobs: {', '.join(self.names)})"))
        if problems:
            return problems
        normalized = {k: _normalize(v) for k, v in config.items()}
        for constraint in self.constraints:
            reason = constraint.check(normalized)
            if reason:
                problems.append((constraint.knobs[0] if constraint.knobs else None, reason))
        return problems

    def is_valid(self, config: Mapping[str, KnobValue]) -> bool:
        return not self.violations(config)

    def complete(self, partial: Mapping[str, KnobValue] | None) -> Config:
        """`partial` with the default's value for every knob it leaves out."""
        config = dict(self.default)
        config.update({k: _normalize(v) for k, v in (partial or {}).items()})
        return config

    def validate(self, partial: Mapping[str, KnobValue] | None = None) -> Config:
        """The completed configuration; raises InvalidConfigError on the first problem."""
        config = self.complete(partial)
        problems = self.violations(config)
        if problems:
            knob, reason = problems[0]
            raise InvalidConfigError(self.kernel, knob, reason)
        return config

    # -- enumeration and sampling (used by tests and the tuner's repair step) --------------------

    def configs(self) -> Iterator[Config]:
        """Every valid configuration, in domain order (only for small spaces)."""
        for values in itertools.product(*(k.domain for k in self.knobs)):
            config = dict(zip(self.names, values, strict=True))
            if self.is_valid(config):
                yield config

    def sample(self, rng: random.Random, attempts: int = 1000) -> Config:
        """A uniformly drawn valid configuration (rejection sampling; the default as last resort)."""
        for _ in range(attempts):
            config = {k.name: rng.choice(k.domain) for k in self.knobs}
            if self.is_valid(config):
                return config
        return dict(self.default)

    def repair(self, config: Mapping[str, KnobValue], rng: random.Random | None = None) -> Config:
        """The valid configuration nearest to `config`: knobs are moved one at a time to the
        domain value closest to the requested one (for numbers) until every constraint holds."""
        current = self.complete({k: v for k, v in config.items() if k in self.names})
        for knob in self.knobs:
            if current[knob.name] not in knob.domain:
                current[knob.name] = _closest(knob.domain, current[knob.name])
        if self.is_valid(current):
            return current
        for _ in range(4 * len(self.knobs)):
            problems = self.violations(current)
            if not problems:
                return current
            blamed = problems[0][0] or self.knobs[0].name
            knob = self.knob(blamed)
            options = sorted(knob.domain, key=lambda v: _distance(v, current[blamed]))
            for value in options[1:]:
                trial = dict(current, **{blamed: value})
                if len(self.violations(trial)) < len(problems) or self.is_valid(trial):
                    current = trial
                    break
            else:
                current[blamed] = self.default[blamed]
        return current if self.is_valid(current) else dict(self.default)

    def describe(self) -> str:
        lines = [f"{self.template} schedule of {self.kernel}: {self.size} configurations before constraints"]
        for knob in self.knobs:
            lines.append(f"  {knob.name} = {self.default[knob.name]!r}  domain {list(knob.domain)}  {knob.doc}")
        for constraint in self.constraints:
            lines.append(f"  constraint {constraint.name} on {', '.join(constraint.knobs)}")
        return "\n".join(lines)


def _distance(a: KnobValue, b: KnobValue) -> float:
    if isinstance(a, bool) or isinstance(b, bool):
        return 0.0 if a == b else 1.0
    if isinstance(a, int) and isinstance(b, int):
        return abs(math.log2(max(a, 1)) - math.log2(max(b, 1)))
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return sum(_distance(x, y) for x, y in zip(a, b, strict=True))
    return 0.0 if a == b else 1.0


def _closest(domain: Sequence[KnobValue], value: KnobValue) -> KnobValue:
    return min(domain, key=lambda v: _distance(v, value))


def divisors(n: int, at_most: int | None = None, powers_of_two: bool = False) -> tuple[int, ...]:
    """Divisors of n (ascending), optionally capped and restricted to powers of two."""
    limit = n if at_most is None else min(n, at_most)
    found = [d for d in range(1, limit + 1) if n % d == 0]
    if powers_of_two:
        found = [d for d in found if d & (d - 1) == 0]
    return tuple(found)
