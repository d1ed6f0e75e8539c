"""The search space: dotted `train` keys -> ranges (params.yaml `tune.space`), and how a trial's
values become a validated params object.

A trial's config is the target's grid config (`train`, `train_overrides.<lm>`, the grid factors)
with the per-trial budget `tune.trial` and then the trial's values merged into
`train_overrides.<lm>` (so they win over the LM type's own overrides), run through
`parse_params`: a value the schema refuses is an error naming the key, never a crash inside
the trainer. The schedule's keys are conditional: `rate`, `decay_steps`, `interval`,
`staircase`, `start_epoch` are searched only for an exponential schedule, `factor` and
`patience` only for plateau (the kind itself searched or fixed).

Nothing here imports optuna: `suggest` takes any object with optuna's `suggest_*` methods.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Params, SearchParam, TrainConfig, TuneConfig, TuneTarget, parse_params
from pipeline.errors import UserError
from pipeline.io import read_json
from pipeline.paths import run_id

KIND = "train.schedule.kind"
# the schedule kinds each conditional key matters to (schedule.py); other keys always matter
USED_BY = {
    "train.schedule.rate": {"exponential"},
    "train.schedule.decay_steps": {"exponential"},
    "train.schedule.interval": {"exponential"},
    "train.schedule.staircase": {"exponential"},
    "train.schedule.start_epoch": {"exponential"},
    "train.schedule.factor": {"plateau"},
    "train.schedule.patience": {"plateau"},
}
BEST_PARAMS = "best_params.json"


@dataclass(frozen=True)
class Target:
    """A tuning target: its name (tune@<name>) and the grid member it tunes."""

    name: str
    corpus: str
    lm: str
    cell: str
    dropout: float
    clip: float

    @classmethod
    def of(cls, name: str, t: TuneTarget) -> "Target":
        return cls(name, t.corpus, t.lm, t.cell, t.dropout, t.clip)

    @property
    def factors(self) -> dict:
        return {"cell": self.cell, "dropout": self.dropout, "clip": self.clip}

    @property
    def grid_run(self) -> str:
        """The run id of the same member in the grid (its metrics are the untuned baseline)."""
        return run_id(self.corpus, self.lm, self.cell, self.dropout, self.clip)

    @property
    def tuned_run(self) -> str:
        return f"{self.name}-tuned"


def base_raw(params: Params, target: Target) -> dict:
    """A raw params mapping with just what a run of `target` reads, taken from a stage's scoped
    params (seed, train, train_overrides.<lm>, eval, tracking). `corpora` and `grid` are
    stand-ins the schema wants: training reads the corpus' prepared files, not its source."""
    overrides = params.train_overrides.get(target.lm, {})
    return {
        "seed": params.seed,
        "train": params.train.model_dump(exclude={"speller"}),
        "train_overrides": {target.lm: copy.deepcopy(overrides)},
        "eval": params.eval.model_dump(),
        "tracking": params.tracking.model_dump(),
        "corpora": {target.corpus: {"source": "local", "path": "."}},
        "grid": {"corpus": [target.corpus], "lm": [target.lm], "cell": [target.cell], "dropout": [target.dropout],
                 "clip": [target.clip]},
    }


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def nested(values: dict[str, Any]) -> dict:
    """{"train.optim.lr": 1.0} -> {"optim": {"lr": 1.0}} (a partial `train` section)."""
    out: dict = {}
    for key, value in values.items():
        *parents, last = key.removeprefix("train.").split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def with_values(raw: dict, lm: str, values: dict[str, Any], budget: dict | None = None) -> dict:
    """raw with the per-trial `budget` and then `values` merged into train_overrides.<lm>."""
    raw = copy.deepcopy(raw)
    over = raw["train_overrides"].get(lm) or {}
    raw["train_overrides"][lm] = _merge(_merge(over, budget or {}), nested(values))
    return raw


def trial_params(raw: dict, target: Target, values: dict[str, Any], budget: dict | None = None,
                 where: str = "tune trial") -> Params:
    """The params of one run with these values, validated by the schema (errors name `where`)."""
    params = parse_params(with_values(raw, target.lm, values, budget), where)
    params.train_for(target.lm, target.factors, where=where)
    return params


def lookup(cfg: TrainConfig, key: str) -> Any:
    node: Any = cfg
    for part in key.removeprefix("train.").split("."):
        node = getattr(node, part)
    return node


def used(key: str, kind: str) -> bool:
    return kind in USED_BY.get(key, {kind})


def active_keys(space: dict[str, SearchParam], kind: str) -> list[str]:
    """The searched keys that matter for a schedule of this kind, in space order."""
    return [k for k in space if k != KIND and used(k, kind)]


def suggest(trial, space: dict[str, SearchParam], cfg: TrainConfig) -> dict[str, Any]:
    """Draw a trial's values: the schedule kind first (when searched), then the keys it uses.
    `cfg` is the target's trial config, which fixes the kind when it is not searched."""
    values: dict[str, Any] = {}
    if KIND in space:
        values[KIND] = _suggest(trial, KIND, space[KIND])
    for key in active_keys(space, values.get(KIND, cfg.schedule.kind)):
        values[key] = _suggest(trial, key, space[key])
    return values


def _suggest(trial, key: str, p: SearchParam) -> Any:
    if p.type == "categorical":
        return trial.suggest_categorical(key, list(p.choices))
    if p.type == "int":
        return trial.suggest_int(key, p.low, p.high, step=p.step or 1, log=p.log)
    return trial.suggest_float(key, float(p.low), float(p.high), step=p.step, log=p.log)


def defaults(space: dict[str, SearchParam], cfg: TrainConfig) -> dict[str, Any]:
    """The target's own values of the searched keys that its schedule uses (trial 0)."""
    keys = ([KIND] if KIND in space else []) + active_keys(space, cfg.schedule.kind)
    return {k: lookup(cfg, k) for k in keys}


def check(tune: TuneConfig, raw: dict, target: Target) -> None:
    """Before any work: every range end and choice of the space, and every enqueued trial, is a
    value the `train` schema takes for its key, and every searched key can matter. One
    UserError naming tune.space.<key> (or tune.enqueue.<i>) otherwise."""
    budget = tune.trial
    cfg = trial_params(raw, target, {}, budget, "params.yaml").train_for(target.lm, target.factors)
    kinds = space_kinds(tune.space, cfg)
    for key, p in tune.space.items():
        if not any(used(key, kind) for kind in kinds):
            raise UserError(f"params.yaml: tune.space.{key}: has no effect: train.schedule.kind is "
                            f"{' or '.join(sorted(kinds))} for this target and only "
                            f"{' or '.join(sorted(USED_BY[key]))} uses it")
        ends = {"choices": list(p.choices)} if p.type == "categorical" else {"low": [p.low], "high": [p.high]}
        for name, vals in ends.items():
            for v in vals:
                try:
                    trial_params(raw, target, {key: v}, budget, "tune")
                except UserError as e:
                    raise UserError(f"params.yaml: tune.space.{key}.{name}: {v!r} is not a valid {key} "
                                    f"({_why(e)})") from None
    for i, values in enumerate(tune.enqueue):
        try:
            trial_params(raw, target, values, budget, "tune")
        except UserError as e:
            raise UserError(f"params.yaml: tune.enqueue.{i}: {_why(e)}") from None


def space_kinds(space: dict[str, SearchParam], cfg: TrainConfig) -> set[str]:
    return set(space[KIND].choices) if KIND in space else {cfg.schedule.kind}


def _why(e: UserError) -> str:
    """The schema's own words, without the `where: train_overrides.<lm>:` prefix."""
    return str(e).splitlines()[0].split(": ", 2)[-1]


# ----------------------------------------------------------------------------- best params file


def read_best(path: str | Path) -> dict[str, Any]:
    """The searched values of a study's best trial, as tune@<target> wrote them."""
    path = Path(path)
    try:
        best = read_json(path)
        values = best["params"]
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run `dvc repro tune@{path.parent.name}` first)") from None
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: not a best-params file (no 'params' mapping); re-run its tune stage") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: 'params' must be a mapping of dotted train keys to values")
    return values


# ----------------------------------------------------------------------------- targets

FACTORS = ("corpus", "lm", "cell", "dropout", "clip")


def resolve_target(name: str, given: dict[str, Any], params: Params) -> Target:
    """A target from a stage's arguments: all five factors given (as dvc.yaml passes them, so a
    changed factor changes the command), or none, then from params.yaml tune.targets.<name>.
    `params` unscoped: a stage reads tune.targets only to find a target by hand."""
    from pipeline.config import parse_section

    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        if name not in params.tune.targets:
            raise UserError(f"unknown tuning target {name!r}; params.yaml tune.targets has "
                            f"{sorted(params.tune.targets)} (or give --corpus --lm --cell --dropout --clip)")
        t = params.tune.targets[name]
    elif set(given) != set(FACTORS):
        raise UserError(f"give all of --{' --'.join(FACTORS)} or none (then params.yaml tune.targets.{name} "
                        f"names them); missing {sorted(set(FACTORS) - set(given))}")
    else:
        t = parse_section(TuneTarget, given, f"stage arguments of target {name}")
    params.corpus(t.corpus)  # an unknown corpus is a params error
    return Target.of(name, t)
