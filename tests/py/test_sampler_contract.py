"""What both knob samplers (GeneticSampler, ReinforceSampler) guarantee, on the synthetic landscape
of sampler_landscape.py: every proposal is repaired into the space's constraint (and the checks can
fail: without repair the constraint breaks), an is_valid filter rejects what repair would fix, and
no configuration is proposed twice while unvisited ones remain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
import pytest
import sampler_landscape as landscape
from sampler_landscape import SPACE, cost, is_valid, objective_of, run_time

from woodpecker.tune import genetic, reinforce

optuna.logging.set_verbosity(optuna.logging.WARNING)

# (sampler class, its candidate attribute, the objective its own tests use)
SAMPLERS = {
    "genetic": (genetic.GeneticSampler, genetic.CANDIDATE_ATTR, objective_of(cost)),
    "reinforce": (reinforce.ReinforceSampler, reinforce.CANDIDATE_ATTR, objective_of(run_time)),
}


@pytest.fixture(params=sorted(SAMPLERS))
def sampler(request: pytest.FixtureRequest) -> tuple[Callable[..., optuna.Study], str]:
    cls, candidate_attr, objective = SAMPLERS[request.param]

    def run(seed: int | None, n_trials: int, **kwargs: Any) -> optuna.Study:
        return landscape.run(cls, seed, n_trials, objective, **kwargs)

    return run, candidate_attr


@pytest.mark.parametrize("given_space", [True, False])
def test_every_config_is_repaired(sampler, given_space: bool) -> None:
    run, candidate_attr = sampler
    study = run(0, 80, search_space=SPACE if given_space else None)
    landscape.check_every_config_is_repaired(study, given_space, candidate_attr)


def test_repair_is_needed_without_it(sampler) -> None:
    """The check above can fail: without repair, the proposals break the constraint."""
    run, _ = sampler
    study = run(0, 40, repair=None)
    assert any(not is_valid(t.params) for t in study.get_trials())


def test_is_valid_rejects_without_repair(sampler) -> None:
    run, _ = sampler
    study = run(0, 60, repair=None, is_valid=is_valid)
    assert all(is_valid(t.params) for t in study.get_trials())


def test_no_duplicates_while_space_is_larger(sampler) -> None:
    run, _ = sampler
    trials = run(3, 150).get_trials()
    assert len(trials) == 150 and landscape.all_distinct(trials)
