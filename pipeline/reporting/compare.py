"""Comparisons of grid cells over their seeds: the numbers behind the report's mean ± sd cells,
its main effects and its LM-type-against-the-best rows (see `stats` for what the two kinds of
interval mean).

A cell is the runs of one grid member, one per seed (`group` in their results: the run id of
the member's first seed). A comparison is of two sides, each a list of cells paired one to one
(a factor's reference level and another level, over the other factors' levels), on the seeds
every used pair has scored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from pipeline.evaluation import Segments
from pipeline.reporting.runs import bpc, scored
from pipeline.reporting.stats import Interval, Summary, paired_bootstrap, resolved, summarize


def group_of(m: dict) -> str:
    """The grid cell of a run: its group id (a run without one is a cell of its own)."""
    return m.get("group") or m["run"]


def by_group(rows: Iterable[dict]) -> dict[str, list[dict]]:
    """Runs of each cell: the one whose id is the cell's first (it names the cell), then by seed."""
    out: dict[str, list[dict]] = {}
    for m in rows:
        out.setdefault(group_of(m), []).append(m)
    for group, runs in out.items():  # the member's own run (the top-level seed) first, then by seed
        runs.sort(key=lambda m: (m["run"] != group, m.get("seed") is None, m.get("seed") or 0))
    return out


def cell_summary(runs: list[dict]) -> Summary:
    """Test bits/char over the seeds of a cell that scored (diverged seeds left out)."""
    return summarize([bpc(m) for m in runs if scored(m)])


@dataclass(frozen=True)
class Comparison:
    """Side b against side a: `delta` the mean over the used pairs of the change in mean test
    bits/char (< 0: b better); `a`, `b` each side's mean over the pairs, one value per seed,
    summarized over seeds; `resolved` whether the seeds separate them (None with one seed);
    `bootstrap` the paired segment bootstrap of delta (None where a run lacks its segment file)."""

    delta: float
    a: Summary
    b: Summary
    pairs: int  # pairs of cells used (both sides with a scored seed)
    bootstrap: Interval | None

    @property
    def resolved(self) -> bool | None:
        return resolved(self.a, self.b)


def compare(pairs: list[tuple[list[dict], list[dict]]],
            segments_of: Callable[[str], Segments | None]) -> Comparison | None:
    """`pairs`: (cell a's runs, cell b's runs), e.g. a factor's reference level and another, at
    each level of the other factors; or one pair, an LM type's best cell and the best of all.
    A cell counts with its seeds that scored (a diverged seed drops out, not the cell); None
    when no pair has a scored seed on both sides."""
    used = [(sa, sb) for a, b in pairs
            if (sa := [m for m in a if scored(m)]) and (sb := [m for m in b if scored(m)])]
    if not used:
        return None
    delta = float(np.mean([np.mean([bpc(m) for m in sb]) - np.mean([bpc(m) for m in sa]) for sa, sb in used]))
    return Comparison(delta, _over_seeds([sa for sa, _ in used]), _over_seeds([sb for _, sb in used]), len(used),
                      _bootstrap(used, segments_of))


def _over_seeds(cells: list[list[dict]]) -> Summary:
    """A side's value per seed (its mean over the cells that scored that seed), summarized."""
    seeds = sorted({m.get("seed") for runs in cells for m in runs}, key=lambda s: (s is None, s or 0))
    return summarize([np.mean([bpc(m) for runs in cells for m in runs if m.get("seed") == s]) for s in seeds])


def _bootstrap(used: list[tuple[list[dict], list[dict]]],
               segments_of: Callable[[str], Segments | None]) -> Interval | None:
    """The paired bootstrap over segments of delta: per pair, each side's segment NLL averaged
    over its seeds."""
    sides: list[list[np.ndarray]] = [[], []]
    chars = None
    for pair in used:
        for side, runs in zip(sides, pair):
            segs = [segments_of(m["run"]) for m in runs]
            if any(s is None for s in segs):
                return None
            if chars is None:
                chars = segs[0].n_chars
            if any(not np.array_equal(s.n_chars, chars) for s in segs):
                return None  # scored on other segments (another test text or segment_lines): not paired
            side.append(np.mean([s.nll for s in segs], axis=0))
    return paired_bootstrap(np.stack(sides[0]), np.stack(sides[1]), chars)
