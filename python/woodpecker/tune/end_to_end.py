"""The end-to-end verdict of a tuning run: the whole model before and after, interleaved.

The sum of kernel times says little about the model's latency (kernels interact through the
caches, and a signature's time counts once however often it occurs), so `wpk tune` ends by
running the model compiled without the records and with them, alternately (ABAB...), one
sample each per round, and states the verdict from the spreads: faster (or slower) only when
the interquartile ranges do not overlap, else "no faster". `measure_interleaved` takes the two
calls; compiling them is the caller's (`woodpecker.cli.tune`: the compiler is a layer above).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

ROUNDS = 15  # ABAB rounds (one sample of each per round)
SAMPLE_SECONDS = 0.05  # a sample runs the model this long at least (several calls for a fast model)


@dataclass(frozen=True)
class Spread:
    """Seconds per call of a set of samples: median, quartiles, min and max."""

    median: float
    q1: float
    q3: float
    low: float
    high: float
    samples: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Spread:
        if not samples:
            raise ValueError("a spread needs at least one sample")
        values = sorted(samples)
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
        return cls(statistics.median(values), q1, q3, values[0], values[-1], len(values))


@dataclass(frozen=True)
class EndToEnd:
    """The model's time per call before and after tuning, from interleaved samples."""

    before: Spread
    after: Spread
    calls_per_sample: int

    @property
    def speedup(self) -> float:
        return self.before.median / self.after.median

    @property
    def verdict(self) -> str:
        """'faster' or 'slower' when the interquartile ranges are apart, else 'no faster'."""
        if self.after.q3 < self.before.q1:
            return "faster"
        if self.after.q1 > self.before.q3:
            return "slower"
        return "no faster"

    def line(self) -> str:
        """'end to end: 0.412 ms -> 0.301 ms median (1.37x faster; IQR 0.405-0.420 ms -> ...)'."""
        b, a = self.before, self.after
        spread = (
            f"IQR {_ms(b.q1)}-{_ms(b.q3)} ms -> {_ms(a.q1)}-{_ms(a.q3)} ms, min {_ms(b.low)} -> {_ms(a.low)} ms; "
            f"{b.samples} interleaved rounds of {self.calls_per_sample} call{'s' if self.calls_per_sample > 1 else ''}"
        )
        head = f"end to end: {_ms(b.median)} ms -> {_ms(a.median)} ms median"
        if self.verdict == "faster":
            return f"{head} ({self.speedup:.2f}x faster; {spread})"
        if self.verdict == "slower":
            return f"{head} ({1 / self.speedup:.2f}x slower; {spread})"
        return f"{head}: no faster (the interquartile ranges overlap; {spread})"


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms >= 0.01 else f"{ms:.4g}"


def measure_interleaved(
    before: Callable[[], object],
    after: Callable[[], object],
    rounds: int = ROUNDS,
    sample_seconds: float = SAMPLE_SECONDS,
    clock: Callable[[], float] = time.perf_counter,
    pause_s: float = 0.0,
) -> EndToEnd:
    """Runs `before` and `after` alternately, `rounds` samples of each, after a warm-up call and
    a timed call of each; a sample is `calls` calls (the same for both: enough that the slower one's sample
    lasts `sample_seconds`) and gives seconds per call. `pause_s` after each sample lets the other
    engine's spinning threads (OpenMP's blocktime, ONNX Runtime's intra-op spin) go to sleep, for two
    engines with pools of their own in one process."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    one_call = []
    for fn in (before, after):
        fn()  # the first call pays for what is set up once
        start = clock()
        fn()
        one_call.append(clock() - start)
    calls = max(1, int(sample_seconds / max(max(one_call), 1e-9)))
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, into in ((before, samples[0]), (after, samples[1])):
            start = clock()
            for _ in range(calls):
                fn()
            into.append((clock() - start) / calls)
            if pause_s > 0:
                time.sleep(pause_s)
    return EndToEnd(Spread.of(samples[0]), Spread.of(samples[1]), calls)
