"""Schedule knobs as Optuna parameters: every knob is a categorical over its domain.

Optuna's categorical choices must be None, bool, int, float or str, so tuple values (GPU tile
shapes) become strings like "64x128" and are parsed back. `encode`/`decode` convert whole
configurations; a decoded configuration compares equal to the space's domain values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial

if TYPE_CHECKING:  # the report and the confirmation step read records without MLIR
    from woodpecker.kernels.space import Config, KnobValue, SearchSpace

_TUPLE_PREFIX = "t:"


def encode_value(value: KnobValue) -> bool | int | float | str:
    if isinstance(value, tuple | list):
        return _TUPLE_PREFIX + "x".join(str(int(v)) for v in value)
    return value


def decode_value(value: Any) -> KnobValue:
    if isinstance(value, str) and value.startswith(_TUPLE_PREFIX):
        body = value[len(_TUPLE_PREFIX) :]
        return tuple(int(v) for v in body.split("x")) if body else ()
    return value


def encode(config: Mapping[str, KnobValue]) -> dict[str, Any]:
    return {name: encode_value(value) for name, value in config.items()}


def decode(params: Mapping[str, Any]) -> Config:
    return {name: decode_value(value) for name, value in params.items()}


def distributions(space: SearchSpace) -> dict[str, CategoricalDistribution]:
    """One categorical distribution per knob, choices in domain order."""
    return {knob.name: CategoricalDistribution([encode_value(v) for v in knob.domain]) for knob in space.knobs}


def trial_config(trial: FrozenTrial) -> Config | None:
    """The configuration a trial measured (its `config` attribute, else its params)."""
    config = trial.user_attrs.get("config")
    if isinstance(config, str):
        config = json.loads(config)
    if config is not None:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    return decode(trial.params) if trial.params else None
