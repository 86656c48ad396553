"""tune/layout_search.py: coordinate descent over the layout regions with a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from woodpecker.graph.convert_layout import Region, RegionConv
from woodpecker.tune.end_to_end import EndToEnd, Spread
from woodpecker.tune.layout_search import candidates, search_layout

REGIONS = [Region("conv_a", (RegionConv("conv_a", 3, 16),)), Region("conv_b", (RegionConv("conv_b", 16, 24),))]
# seconds per region choice; a configuration's time is the sum (a deterministic fake model)
COST = {"conv_a": {"8": 3.0, "nchw": 1.0, "16": 2.0}, "conv_b": {"8": 2.0, "nchw": 4.0, "16": 5.0}}


def _cost(config: Mapping[str, str]) -> float:
    return sum(COST[name][choice] for name, choice in config.items())


def _run_with(config: Mapping[str, str]) -> Callable[[], object]:
    seconds = _cost(config)
    return lambda: seconds


def _compare(before: Callable[[], object], after: Callable[[], object]) -> EndToEnd:
    b, a = float(before()), float(after())  # type: ignore[arg-type]
    return EndToEnd(Spread.of([b]), Spread.of([a]), 1)


def test_candidates_are_the_rule_nchw_and_the_other_block() -> None:
    assert candidates(8) == ["8", "nchw", "16"]
    assert candidates(16) == ["16", "nchw", "8"]
    assert candidates(4) == ["4", "nchw", "8"]


def test_the_search_keeps_the_measured_fastest_choice_per_region() -> None:
    found = search_layout(REGIONS, 8, _run_with, _compare)
    assert found.config == {"conv_a": "nchw", "conv_b": "8"}
    assert found.seconds == _cost(found.config) == 3.0
    a, b = found.regions
    assert (a.chosen, b.chosen) == ("nchw", "8")
    assert a.seconds == {"8": 5.0, "nchw": 3.0, "16": 4.0}  # 16 measured against nchw, conv_b at 8
    assert b.seconds == {"8": 3.0, "nchw": 5.0, "16": 6.0}  # conv_a already nchw
    assert "conv_a: nchw (8 5000.000 ms, nchw 3000.000 ms, 16 4000.000 ms)" in found.table()


def test_a_slower_candidate_is_never_kept() -> None:
    slow = {name: {c: (1.0 if c == "8" else 9.0) for c in costs} for name, costs in COST.items()}
    saved = dict(COST)
    COST.update(slow)
    try:
        found = search_layout(REGIONS, 8, _run_with, _compare)
    finally:
        COST.update(saved)
    assert found.config == {"conv_a": "8", "conv_b": "8"} and found.seconds == 2.0
