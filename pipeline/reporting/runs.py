"""Which runs the report shows, their metrics, and where each sits in the grid.

A run is read from results/<run>.json (a dict, as the one artifact writer wrote it) and its
models/<run>/cost.json, merged. RNN runs have lm, cell, dropout, clip, test/valid score dicts
(None when the run diverged), n_params, and from the cost file tokens_per_s, wall_s; n-gram
runs have lm "ngram", order, unit, test/valid, n_params (stored n-grams), train_tokens, and
estimate_s. The cost file is read, not depended on: a re-run that changes only the clock's
figures does not re-render the report (see pipeline/paths.py).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline import paths
from pipeline.artifacts import read_segments
from pipeline.config import GridConfig, Undeclared
from pipeline.errors import UserError
from pipeline.evaluation import Segments
from pipeline.io import read_json
from pipeline.tuning.space import Target

TRAIN_AXES = ("corpus", "lm", "cell", "dropout", "clip")  # dvc.yaml's train matrix, in key order
FACTORS = ("cell", "dropout", "clip")  # the ablated factors of one LM type
RNN_LMS = ("char", "word", "hybrid", "subword")
UNITS = {"char": "characters", "word": "words", "hybrid": "words", "subword": "BPE pieces"}


def expected_runs(grid: GridConfig, orders: Sequence[int]) -> list[str]:
    """The run ids of dvc.yaml's `ngram` (corpus x [ngram] x order) and `ngram_matched`, `train`
    (corpus x lm x cell x dropout x clip) and `train_seed` (the same x grid.seed) matrices: the
    runs the report shows, each member's seeds after it. Metrics files of members no longer in
    the grid (DVC never deletes them) are not reported."""
    ngram = [paths.run_id(c, "ngram", o, *m) for c in grid.corpus for o in orders for m in [(), ("matched",)]]
    train = [paths.run_id(*v, *seed) for v in itertools.product(*(getattr(grid, k) for k in TRAIN_AXES))
             for seed in [(), *((s,) for s in grid.seed)]]
    return ngram + train


def collect(runs: Iterable[str]) -> list[dict]:
    """results/<run>.json of each run with its cost, in the order given; a missing result is an
    error, a missing cost file (a run restored from an older cache) leaves its columns empty."""
    rows = []
    for run in runs:
        path = paths.result_file(run)
        if not path.is_file():
            raise UserError(f"{path}: not found, but params.yaml (grid, ngram.orders) has run {run!r}; "
                            "run `dvc repro` to make it")
        cost_file = paths.RunDir(run).file(paths.COST)
        cost = read_json(cost_file) if cost_file.is_file() else {}
        rows.append({**read_json(path), **{k: v for k, v in cost.items() if k != "per_epoch"}})
    return rows


@dataclass
class Tuned:
    """A tuning target as the report shows it: its grid member's run (the default schedule; None
    when there is no such run), its tuned run, and tuning/<target>/summary.json if any."""

    target: str
    default: dict | None
    tuned: dict
    summary: dict | None


def collect_tuned(targets: dict) -> list[Tuned]:
    """The runs of params.yaml's `tune.targets` (name -> TuneTarget): train_tuned@<name>'s result
    (an error when missing, as collect's), its grid member's and the study's summary when they
    exist (read, not depended on: the report compares results/ files)."""
    out = []
    for name, t in targets.items():
        target = Target.of(name, t)
        default = paths.result_file(target.grid_run)
        summary = paths.tuning_dir(name) / paths.TUNING_SUMMARY
        out.append(Tuned(name, collect([target.grid_run])[0] if default.is_file() else None,
                         collect([target.tuned_run])[0], read_json(summary) if summary.is_file() else None))
    return out


def segments(run: str) -> Segments | None:
    """The run's test segments (NLL, characters) for the paired bootstrap; None without them (a
    run restored from an older cache, or without a test score)."""
    return read_segments(paths.segments_file(run))


def by_score(rows: Iterable[dict]) -> list[dict]:
    """Best test bits/char first; diverged runs last."""
    return sorted(rows, key=lambda m: (bpc(m), m["run"]))


# ----------------------------------------------------------------------------- one run


def bpc(m: dict, split: str = "test") -> float:
    """Bits/char of a split, inf when there is none (a diverged run) or it is not finite."""
    s = m.get(split)
    v = s.get("bits_per_char") if s else None
    return v if isinstance(v, (int, float)) and math.isfinite(v) else math.inf


def scored(m: dict) -> bool:
    """The run finished with a finite test score."""
    return not m.get("diverged") and math.isfinite(bpc(m))


def closed_vocab(m: dict) -> bool:
    """Its test figure lost probability mass to <unk> (see the report's footnote)."""
    return bool(m.get("test")) and m["test"].get("open_vocab") is False


def is_ngram(m: dict) -> bool:
    return m["lm"] == "ngram"


def status(m: dict) -> str:
    if m.get("diverged"):
        return f"diverged (epoch {m.get('diverged_epoch', '?')})"
    return "ok" if scored(m) else "no score"


# ----------------------------------------------------------------------------- numbers


def fmt_bpc(v: float) -> str:
    return f"{v:.3f}" if math.isfinite(v) else "n/a"


def fmt_ppl(v: Any) -> str:
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "n/a"
    return f"{v:.1f}" if v < 1e3 else f"{v:,.0f}" if v < 1e7 else f"{v:.2e}"


def fmt_delta(v: float) -> str:
    return f"{v:+.3f}" if math.isfinite(v) else "n/a"


def fmt_int(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else ""


def fmt_seconds(v: Any) -> str:
    if not isinstance(v, (int, float)):
        return ""
    if v < 60:
        return f"{v:.1f} s"
    return f"{int(v // 60)} min {v % 60:02.0f} s" if v < 3600 else f"{v / 3600:.1f} h"


# ----------------------------------------------------------------------------- the grid


@dataclass
class Design:
    """The grid the runs come from: each factor's levels in params.yaml's order (the first is
    the reference level of the main effects), and each grid member's level of each axis, as the
    strings its run id spells them (a member: the run of its first seed, whose id is its group's)."""

    levels: dict[str, list[str]]  # axis (TRAIN_AXES) -> levels
    orders: list[str] = field(default_factory=list)
    where: dict[str, dict[str, str]] = field(default_factory=dict)  # run id -> axis -> level

    def __post_init__(self):
        self._ids = {tuple(w[a] for a in TRAIN_AXES): run for run, w in self.where.items()}

    def run(self, **levels: str) -> str:
        """The run id of a grid member."""
        key = tuple(levels[a] for a in TRAIN_AXES)
        return self._ids.get(key) or paths.run_id(*key)


def design(rows: list[dict], grid: GridConfig | None, orders: Sequence[int] | None) -> Design:
    """From params' grid when given (run ids exactly as `expected_runs` makes them), else from
    the runs themselves (levels as their run ids spell them, or their metrics say), in order
    of first appearance."""
    if grid is not None:
        levels = {a: [str(v) for v in getattr(grid, a)] for a in TRAIN_AXES}
        where = {paths.run_id(*combo): dict(zip(TRAIN_AXES, combo))
                 for combo in itertools.product(*levels.values())}
        return Design(levels, [str(o) for o in orders or []], where)
    levels: dict[str, list[str]] = {a: [] for a in TRAIN_AXES}
    where, found_orders = {}, []
    for m in rows:
        if is_ngram(m):
            found_orders.append(str(m.get("order", "")))
            continue
        if m.get("group", m["run"]) != m["run"]:  # another seed of a member
            continue
        parts = m["run"].split("-")
        if len(parts) == len(TRAIN_AXES):  # <corpus>-<lm>-<cell>-<dropout>-<clip>
            axes = dict(zip(TRAIN_AXES, parts))
        else:
            axes = {a: str(m.get(a, "?")) for a in TRAIN_AXES}
        where[m["run"]] = axes
        for a, v in axes.items():
            if v not in levels[a]:
                levels[a].append(v)
    return Design(levels, found_orders, where)


MISSING = object()


def declared(get) -> Any:
    """get(), or MISSING where the params object does not hold that key for this stage (see
    `Params.scoped`): the report reads optional keys only when the stage declares them."""
    try:
        v = get()
    except (RuntimeError, AttributeError, KeyError):
        return MISSING
    return MISSING if isinstance(v, Undeclared) else v


def train_budget(params: Any, lm: str) -> tuple[int | None, int] | None:
    """(max_train_tokens, epochs) of an RNN LM type (cap None: the whole train split), merged
    as `Params.train_for` merges them (the grid factors do not touch them), or None when the
    params object does not declare `train` (or its max_train_tokens, epochs) and `train_overrides`."""
    if params is None:
        return None
    cap = declared(lambda: params.train.max_train_tokens)
    epochs = declared(lambda: params.train.epochs)
    overrides = declared(lambda: params.train_overrides)
    if any(v is MISSING for v in (cap, epochs, overrides)):
        return None
    over = declared(lambda: overrides.get(lm, {})) or {}
    if over is MISSING:
        return None
    return over.get("max_train_tokens", cap), over.get("epochs", epochs)
