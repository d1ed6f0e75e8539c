"""The report's two kinds of uncertainty, which answer different questions:

- **seed spread** (`summarize`, `resolved`): how much a result moves when the same config is
  trained again with another seed (initial weights, batch order, dropout masks). Mean, sample
  sd and a 95% t-interval of the mean over the seeds of one grid cell; two levels of a factor
  whose intervals overlap are "not resolved" by the seeds run. Needs two seeds or more.
- **segment spread** (`paired_bootstrap`): how much a difference between two fixed, trained
  models depends on which text they were tested on. The evaluator scores the test text as
  independent segments; resampling segments with replacement (the same segments for both
  models: paired) gives a 95% interval on the difference in bits/char. Works with one seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95  # both intervals
RESAMPLES = 1000
BOOTSTRAP_SEED = 0  # the report's numbers do not change from one rendering to the next


@dataclass(frozen=True)
class Summary:
    """Seeds of one quantity: mean, sample sd (ddof 1), n, and the 95% t-interval of the mean
    (sd and interval nan for a single seed: one run says nothing about seed spread)."""

    mean: float
    sd: float
    n: int
    lo: float
    hi: float


def summarize(values: Sequence[float]) -> Summary:
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return Summary(math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(x.mean())
    if x.size == 1:
        return Summary(mean, math.nan, 1, math.nan, math.nan)
    from scipy.stats import t  # imported when there is spread to measure

    sd = float(x.std(ddof=1))
    half = float(t.ppf((1 + LEVEL) / 2, x.size - 1)) * sd / math.sqrt(x.size)
    return Summary(mean, sd, int(x.size), mean - half, mean + half)


def resolved(a: Summary, b: Summary) -> bool | None:
    """Whether the seeds separate a from b: their 95% intervals do not overlap. None when either
    has a single seed (no interval)."""
    if a.n < 2 or b.n < 2 or not all(map(math.isfinite, (a.lo, a.hi, b.lo, b.hi))):
        return None
    return a.hi < b.lo or b.hi < a.lo


@dataclass(frozen=True)
class Interval:
    """A difference in bits/char (b minus a, so < 0: b is better) and its bootstrap interval."""

    delta: float
    lo: float
    hi: float

    @property
    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0


def bits_per_char(nll: np.ndarray, n_chars: np.ndarray) -> np.ndarray:
    """Summed nats over the last axis -> bits/char (the evaluator's ratio of sums)."""
    return nll.sum(axis=-1) / (math.log(2) * n_chars.sum(axis=-1))


def paired_bootstrap(nll_a: np.ndarray, nll_b: np.ndarray, n_chars: np.ndarray, resamples: int = RESAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> Interval:
    """The difference bits/char(b) - bits/char(a) on the test segments, with its percentile
    interval over `resamples` resamplings of the segments (the same draw for a and b).

    nll_a, nll_b: [S] each segment's summed NLL in nats, or [P, S] for P pairs of runs whose
    mean difference is wanted (a factor's effect over the other factors' levels, or over
    seeds): every pair is resampled with the same segments. n_chars: [S] characters per segment."""
    a, b = np.atleast_2d(nll_a).astype(np.float64), np.atleast_2d(nll_b).astype(np.float64)
    chars = np.asarray(n_chars, dtype=np.float64)
    if a.shape != b.shape or a.shape[-1] != chars.shape[-1]:
        raise ValueError(f"segment arrays disagree: {a.shape}, {b.shape}, chars {chars.shape}")
    diff = (b - a).mean(axis=0)  # [S]: the mean pair's difference per segment
    idx = np.random.default_rng(seed).integers(0, diff.size, size=(resamples, diff.size))  # [R, S]
    draws = bits_per_char(diff[idx], chars[idx])  # [R]
    lo, hi = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Interval(float(bits_per_char(diff, chars)), float(lo), float(hi))
