"""The layout search: per region of wpk-convert-layout, the choice measured fastest end to end.

Candidates per region (graph/convert_layout.py `Region`): the rule's block (the host's vector
lanes), "nchw", and the other block size (8 or 16). Coordinate descent over the regions in
program order, each region once: every candidate of the region is measured against the best
configuration so far (the whole model compiled with it, `measure_interleaved`: ABAB... medians)
and kept when its median is lower. Compiling is the caller's (`run_with(config)` returns the
model's call; the compiler is a layer above this package: `woodpecker.cli.tune_layout`).

`time_budget_s` bounds the search: a candidate is not started once that many seconds have
passed since the search began (the ones left are listed in `LayoutSearch.skipped`, their regions
keep the best choice so far), so the search takes the budget plus at most one candidate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from woodpecker.graph.convert_layout import NCHW, Region
from woodpecker.tune.end_to_end import EndToEnd, measure_interleaved

Compare = Callable[[Callable[[], object], Callable[[], object]], EndToEnd]
RunWith = Callable[[Mapping[str, str]], Callable[[], object]]


def candidates(lanes: int) -> list[str]:
    """The rule's block first, then nchw, then the other of 8 and 16 (when it differs)."""
    other = 16 if lanes == 8 else 8
    return [str(lanes), NCHW] + ([str(other)] if other != lanes else [])


@dataclass
class RegionResult:
    """One region's candidates: choice -> median seconds (the run it was measured in), and the choice kept."""

    name: str
    seconds: dict[str, float] = field(default_factory=dict)
    chosen: str = ""


@dataclass
class LayoutSearch:
    """What the search measured and chose: config {region: choice}, its median seconds."""

    regions: list[RegionResult]
    config: dict[str, str]
    seconds: float
    skipped: list[str] = field(default_factory=list)  # "region:choice" not measured (the time budget ran out)

    def table(self) -> str:
        """One line per region: 'name: chosen (choice ms, ...)'."""
        return "\n".join(
            f"{r.name}: {r.chosen} (" + ", ".join(f"{c} {s * 1e3:.3f} ms" for c, s in r.seconds.items()) + ")"
            for r in self.regions
        )


def search_layout(
    regions: Sequence[Region],
    lanes: int,
    run_with: RunWith,
    compare: Compare = measure_interleaved,
    time_budget_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> LayoutSearch:
    """Coordinate descent over `regions` (each once, the best so far kept) within
    `time_budget_s` (None: no limit); see the module doc."""
    start = clock()
    config = {region.name: str(lanes) for region in regions}
    best_run = run_with(dict(config))
    best_seconds: float | None = None
    results = []
    skipped: list[str] = []
    for region in regions:
        result = RegionResult(region.name, chosen=config[region.name])
        for choice in candidates(lanes):
            if choice == config[region.name]:
                continue
            if time_budget_s is not None and clock() - start >= time_budget_s:
                skipped.append(f"{region.name}:{choice}")
                continue
            trial = {**config, region.name: choice}
            trial_run = run_with(dict(trial))
            verdict = compare(best_run, trial_run)  # interleaved: the fair comparison is within it
            result.seconds.setdefault(config[region.name], verdict.before.median)
            result.seconds[choice] = verdict.after.median
            if verdict.after.median < verdict.before.median:
                config, best_run, best_seconds = trial, trial_run, verdict.after.median
                result.chosen = choice
            else:
                best_seconds = verdict.before.median
        results.append(result)
    if best_seconds is None:  # no region, or nothing measured in the budget: the rule's configuration
        best_seconds = compare(best_run, best_run).before.median
    return LayoutSearch(results, config, best_seconds, skipped)


__all__ = ["LayoutSearch", "RegionResult", "candidates", "search_layout"]
