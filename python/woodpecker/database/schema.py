"""The tuning database's schema: what is stored, as dataclasses (version `SCHEMA_VERSION`).

* `Workload`: one kernel signature (the standalone kernel module and what describes it).
* `Trial`: one configuration of a workload, claimed by a worker (`running`) and then measured
  (`complete`, with its time) or not (`failed`, with the error). Its `number` (0, 1, 2, ... per
  workload, never reused) is assigned when it is claimed; `seq` (1, 2, ... per workload) when it
  finishes, the cursor of `TuningDatabase.trials(since=...)`.
* confirmations: per workload {trial number: confirmed seconds, or None when the re-measurement
  failed}; two workers' confirmations merge (the lower value is kept).
* `Record`: what a compile reads, the chosen configuration of a workload (`woodpecker.database.choice`).
* `Selection`: the implementation-selection timings of a workload (`woodpecker.select`).

Configurations are JSON objects of knob values; tuples (GPU tile shapes) are stored as lists
and read back as tuples, so a configuration read back compares equal to the one written.
`config_key` is its canonical text (sorted keys): two trials of one workload with the same
`config_key` are the same trial.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SCHEMA_VERSION = 1  # of the tables, the journal and the export files

RUNNING = "running"
COMPLETE = "complete"
FAILED = "failed"
STATES = (RUNNING, COMPLETE, FAILED)
FINISHED = (COMPLETE, FAILED)
TARGETS = ("cpu", "cuda")
MAX_ERROR_CHARS = 2000

Config = dict[str, Any]


def config_to_json(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with tuples as lists (what JSON holds)."""
    return {str(name): _to_json_value(value) for name, value in config.items()}


def _to_json_value(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_to_json_value(v) for v in value]
    return value


def config_from_json(data: Mapping[str, Any]) -> Config:
    """A configuration read back from JSON: lists become tuples again."""
    return {name: _from_json_value(value) for name, value in data.items()}


def _from_json_value(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_from_json_value(v) for v in value)
    return value


def config_key(config: Mapping[str, Any]) -> str:
    """The canonical text of a configuration: sorted-keys compact JSON."""
    return json.dumps(config_to_json(config), sort_keys=True, separators=(",", ":"))


def finite_or_none(value: float | None) -> float | None:
    """`value` as a float, None when it is None, NaN or infinite."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Workload:
    """One kernel signature to tune: a standalone kernel module and what describes it."""

    key: str  # unique, e.g. "cpu.conv.1x64x56x56.ab12cd34ef56"
    target: str  # "cpu" | "cuda"
    device: str  # the hardware its times belong to, e.g. "AMD EPYC avx512 2t", "sm_90"
    kind: str  # matmul, conv, depthwise_conv, pool, reduction, elementwise
    template: str  # the schedule template, e.g. "cpu.conv"
    description: str
    flops: int
    arg_shapes: tuple[tuple[int, ...], ...]  # every argument of @main, in order
    output_shape: tuple[int, ...]
    num_weights: int  # the last `num_weights` arguments of @main are weights
    kernel_name: str  # the kernel's name inside module_text
    module_text: str  # the standalone kernel module (linalg on tensors)

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a workload needs a non-empty key")
        if self.target not in TARGETS:
            raise ValueError(f"workload {self.key}: target must be one of {', '.join(TARGETS)}, got '{self.target}'")
        object.__setattr__(self, "arg_shapes", tuple(tuple(int(d) for d in s) for s in self.arg_shapes))
        object.__setattr__(self, "output_shape", tuple(int(d) for d in self.output_shape))
        object.__setattr__(self, "flops", int(self.flops))
        object.__setattr__(self, "num_weights", int(self.num_weights))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["arg_shapes"] = [list(s) for s in self.arg_shapes]
        data["output_shape"] = list(self.output_shape)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Workload:
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    @classmethod
    def of_task(cls, task: Any) -> Workload:
        """The workload of a kernel task: a `woodpecker.kernels.task.KernelTask`, or anything with
        its fields. The model kernels a task stands for are left out: they belong to one model,
        and a signature is shared by every model that has it."""
        return cls(**{f.name: getattr(task, f.name) for f in fields(cls)})

    @property
    def digest(self) -> str:
        """A hash of every field: an upsert with the same digest changes nothing."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Trial:
    """One configuration of a workload: claimed (running), then complete (timed) or failed."""

    key: str  # the workload's
    number: int  # 0, 1, 2, ... per workload, assigned at claim, never reused
    config: Config
    config_key: str
    state: str  # RUNNING, COMPLETE or FAILED
    strategy: str  # ga, tpe, random, rl, default, import, ...
    is_default: bool = False
    seconds: float | None = None  # the recorded time (complete trials only)
    times: tuple[float, ...] = ()  # every repeat's seconds
    relative: float | None = None  # time / the default's, measured alternately with it
    error: str | None = None  # why it failed (at most MAX_ERROR_CHARS)
    compile_seconds: float = 0.0
    worker: str = ""  # who claimed it, "host:pid"
    claimed_at: float = 0.0  # Unix time
    finished_at: float | None = None
    lease_expires: float | None = None  # Unix time; None: the claim never expires
    seq: int | None = None  # finish order within the workload (1, 2, ...); None while running
    token: str | None = None  # the claim's identity (None for imported trials)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["config"] = config_to_json(self.config)
        data["times"] = list(self.times)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Trial:
        values = {name: data[name] for name in _TRIAL_FIELDS if name in data}
        values["config"] = config_from_json(values["config"])
        values["times"] = tuple(float(t) for t in values.get("times") or ())
        return cls(**values)


_TRIAL_FIELDS = tuple(f.name for f in fields(Trial))


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one configuration of a workload, until `finish` or `release`."""

    key: str
    number: int  # the trial's
    config: Config
    config_key: str
    token: str  # tells this claim from a later claim of the same trial number
    worker: str
    strategy: str
    is_default: bool
    budget: int  # the workload's trial budget it was claimed under
    claimed_at: float
    lease_expires: float | None

    @classmethod
    def of_trial(cls, trial: Trial, budget: int) -> Claim:
        """The claim of a running trial, for finishing it from another process (a batch exported
        with `lease_s=None` whose results came back)."""
        if trial.state != RUNNING or trial.token is None:
            raise ValueError(f"trial {trial.number} of {trial.key} is {trial.state}, not a running claim")
        return cls(
            key=trial.key,
            number=trial.number,
            config=trial.config,
            config_key=trial.config_key,
            token=trial.token,
            worker=trial.worker,
            strategy=trial.strategy,
            is_default=trial.is_default,
            budget=budget,
            claimed_at=trial.claimed_at,
            lease_expires=trial.lease_expires,
        )


@dataclass(frozen=True)
class Counts:
    """How many trials a workload has, by state (running: live claims only)."""

    running: int = 0
    complete: int = 0
    failed: int = 0

    @property
    def finished(self) -> int:
        return self.complete + self.failed

    @property
    def total(self) -> int:
        """What counts towards a budget."""
        return self.running + self.complete + self.failed


@dataclass(frozen=True)
class Record:
    """The configuration a compile uses for a workload, and what it is measured against."""

    key: str
    number: int  # the chosen trial
    config: Config
    seconds: float  # confirmed, if the trial was confirmed
    confirmed: bool
    strategy: str
    default_number: int | None  # the default configuration's complete trial
    default_seconds: float | None  # confirmed, if confirmed
    trials: int  # finished trials (complete + failed)
    failures: int

    @property
    def speedup(self) -> float | None:
        """default seconds / chosen seconds, when both are known."""
        if not self.default_seconds or not self.seconds:
            return None
        return self.default_seconds / self.seconds


@dataclass(frozen=True)
class CandidateTiming:
    """How one implementation (generated, onednn, blas, ...) of a workload measured."""

    seconds: float | None = None  # best round, relative to the default's time
    error: str | None = None  # measured and failed


@dataclass(frozen=True)
class Selection:
    """The implementation-selection measurements of a workload."""

    key: str
    generated_config: Config  # the generated kernel's configuration they were measured with
    default_seconds: float | None
    candidates: Mapping[str, CandidateTiming] = field(default_factory=dict)  # implementation -> timing
    updated_at: float = 0.0  # Unix time; an import keeps the newer of two

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "generated_config": config_to_json(self.generated_config),
            "default_seconds": self.default_seconds,
            "candidates": {name: asdict(timing) for name, timing in self.candidates.items()},
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Selection:
        return cls(
            key=data["key"],
            generated_config=config_from_json(data.get("generated_config") or {}),
            default_seconds=finite_or_none(data.get("default_seconds")),
            candidates={
                name: CandidateTiming(finite_or_none(entry.get("seconds")), entry.get("error"))
                for name, entry in (data.get("candidates") or {}).items()
            },
            updated_at=float(data.get("updated_at") or 0.0),
        )
