"""A study's results, written to tuning/<target>/ (tune@<target>'s DVC out):

    best_params.json   {"study", "trial", "value", "params": {dotted train key: value}}: what
                       train_tuned@<target> trains with (its only dependency on the study)
    trials.csv         one row per trial: number, state, value, params, epochs reached, worker...
    summary.json       counts, the best trial, the target's own values (trial 0, same budget)
                       and, when its metrics exist, the grid member's untuned run
    history.png        value per trial, best so far; importances.png (Optuna's PED-ANOVA);
    lr_slice.png       initial lr against value; lr_schedule.png the best schedule's lr per
                       epoch against the target's own, over train_tuned's budget (schedule.lr_at)

and to MLflow: the study's run (parent of the trials' runs) holds them, the best trial's run is
tagged optuna.best_trial=true.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from pipeline import paths
from pipeline.errors import UserError
from pipeline.io import read_json, write_bytes, write_json, write_text
from pipeline.rnn.batching import make_batches
from pipeline.rnn.schedule import lr_at
from pipeline.tokenizers import load_split_ids, load_tokenizer
from pipeline.tuning import space as sp
from pipeline.tuning.study import Setup
from pipeline.tuning.storage import shown

TRIALS_CSV = "trials.csv"
SUMMARY = paths.TUNING_SUMMARY
PLOTS = ("history.png", "importances.png", "lr_slice.png", "lr_schedule.png")
LR = "train.optim.lr"


def good(t: FrozenTrial) -> bool:
    return t.state == TrialState.COMPLETE and not t.user_attrs.get("diverged")


def best_trial(study: optuna.Study) -> FrozenTrial:
    trials = [t for t in study.get_trials(deepcopy=False) if good(t)]
    if not trials:
        raise UserError(f"study {study.study_name}: no trial completed without diverging or being pruned; "
                        "narrow tune.space (e.g. a lower train.optim.lr high) or raise tune.n_trials")
    return min(trials, key=lambda t: (t.value, t.number))


def default_trial(study: optuna.Study) -> FrozenTrial | None:
    """Trial 0 when it is the target's own values (tune.enqueue_default), finished."""
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("enqueued") == "default" and t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            return t
    return None


def rows(study: optuna.Study) -> list[dict]:
    keys = list(dict.fromkeys(k for t in study.get_trials(deepcopy=False) for k in t.params))
    out = []
    for t in study.get_trials(deepcopy=False):
        out.append({
            "number": t.number, "state": t.state.name, "value": t.value,
            "diverged": t.user_attrs.get("diverged"), "epochs": t.user_attrs.get("epochs"),
            "duration_s": t.duration.total_seconds() if t.duration else None,
            "retry_of": t.system_attrs.get("failed_trial"), "enqueued": t.user_attrs.get("enqueued"),
            "run": t.user_attrs.get("run"), "worker": t.user_attrs.get("worker"),
            **{k: t.params.get(k) for k in keys},
        })
    return out


def write(out: Path, study: optuna.Study, setup: Setup) -> dict:
    """Every file of tuning/<target>/; returns the summary."""
    best, default = best_trial(study), default_trial(study)
    table = rows(study)
    write_json(out / sp.BEST_PARAMS, {"study": study.study_name, "trial": best.number, "value": best.value,
                                      "params": best.params})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(table[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(table)
    write_text(out / TRIALS_CSV, buf.getvalue())
    states = {s.name.lower(): sum(r["state"] == s.name for r in table)
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING,
                        TrialState.WAITING)}
    grid = paths.result_file(setup.target.grid_run)
    summary = {
        "target": setup.target.name, "study": study.study_name, "storage": shown(setup.storage),
        "n_trials": setup.tune.n_trials, "trials": states,
        "diverged": sum(bool(r["diverged"]) for r in table),
        "objective": "valid bits/char of the best epoch, on the trial budget (tune.trial)",
        "best": {"trial": best.number, "value": best.value, "params": best.params},
        "default": None if default is None else {"trial": default.number, "value": default.value,
                                                 "state": default.state.name, "params": default.params},
        # informational: read when present, not a dependency (the report compares results/ files)
        "grid_run": _grid_run(grid),
    }
    write_json(out / SUMMARY, summary)
    figures = plots(study, setup, best, default)
    for name, png in zip(PLOTS, figures):
        write_bytes(out / name, png)
    return summary


def _grid_run(path: Path) -> dict | None:
    try:
        m = read_json(path)
        return {"run": m["run"], "valid_bits_per_char": (m.get("valid") or {}).get("bits_per_char"),
                "test_bits_per_char": (m.get("test") or {}).get("bits_per_char"), "diverged": m.get("diverged")}
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ----------------------------------------------------------------------------- plots


def plots(study: optuna.Study, setup: Setup, best: FrozenTrial, default: FrozenTrial | None) -> list[bytes]:
    import matplotlib

    matplotlib.use("Agg")  # files, never windows
    import matplotlib.pyplot as plt

    trials = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    bad = setup.tune.diverged_value
    ok = [t for t in trials if good(t)]
    top = max((t.value for t in ok), default=1.0)
    low = min((t.value for t in ok), default=0.0)
    ceiling = top + 0.15 * max(top - low, 0.05)  # diverged trials are drawn here, not at their penalty

    def y(t: FrozenTrial) -> float:
        return min(t.value if t.value is not None else bad, ceiling)

    def scatter(ax, x) -> None:
        for kind, sel, style in (("complete", good, dict(marker="o", color="C0")),
                                 ("pruned (last value)", lambda t: t.state == TrialState.PRUNED,
                                  dict(marker="x", color="C1")),
                                 ("diverged", lambda t: bool(t.user_attrs.get("diverged")),
                                  dict(marker="^", color="C3"))):
            pts = [(x(t), y(t)) for t in trials if sel(t) and x(t) is not None]
            if pts:
                ax.scatter(*zip(*pts), label=kind, **style)

    out = []
    # history
    fig, ax = plt.subplots(figsize=(6, 3.6))
    scatter(ax, lambda t: t.number)
    running, xs, ys = math.inf, [], []
    for t in sorted(ok, key=lambda t: t.number):
        running = min(running, t.value)
        xs.append(t.number)
        ys.append(running)
    if xs:
        ax.step(xs, ys, where="post", color="C2", label="best so far")
    ax.set(xlabel="trial", ylabel="valid bits/char")
    ax.set_title(f"{study.study_name}: optimization history", fontsize=9)
    ax.legend(fontsize=7)
    out.append(_png(fig, plt))

    # importances
    fig, ax = plt.subplots(figsize=(6, 3.6))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imp = _importance().get_param_importances(study, target=lambda t: min(t.value, bad))
        names = list(imp)[::-1]
        ax.barh(names, [imp[n] for n in names], color="C0")
        ax.set(xlabel="importance (PED-ANOVA, normalized)")
    except Exception as e:  # too few trials, or one value everywhere
        ax.text(0.5, 0.5, f"no importances: {str(e).splitlines()[0][:80]}", ha="center", va="center", fontsize=8,
                wrap=True)
        ax.set_axis_off()
    ax.set_title(f"{study.study_name}: parameter importances", fontsize=9)
    out.append(_png(fig, plt, left=0.36))

    # lr slice
    fig, ax = plt.subplots(figsize=(6, 3.6))
    lr0 = setup.trial_cfg().optim.lr
    scatter(ax, lambda t: t.params.get(LR, lr0))
    ax.set_xscale("log")
    ax.set(xlabel="initial lr (train.optim.lr)", ylabel="valid bits/char")
    ax.set_title(f"{study.study_name}: lr slice", fontsize=9)
    ax.legend(fontsize=7)
    out.append(_png(fig, plt))

    # schedules
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, values, trial in (("target's own", {}, default), (f"best (trial {best.number})", best.params, best)):
        epochs, lrs = lr_curve(setup, values, trial)
        ax.plot(epochs, lrs, label=label, drawstyle="steps-post")
    ax.set_yscale("log")
    ax.set(xlabel="epoch (train_tuned's budget)", ylabel="lr",
           title=f"{setup.target.name}: lr schedule (plateau: valid losses of the trial, then improving)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    out.append(_png(fig, plt))
    return out


def _importance():
    """optuna.importance, loaded without scikit-learn: Optuna imports it, when installed, for its
    fANOVA evaluator (unused here: PED-ANOVA is the default), which costs seconds of CPU in every
    tune stage. Optuna's import guard treats it as absent and PED-ANOVA works as ever."""
    if "optuna.importance" not in sys.modules and "sklearn" not in sys.modules:
        sys.modules["sklearn"] = None  # type: ignore[assignment]  # `import sklearn` raises ImportError
        try:
            import optuna.importance
        finally:
            del sys.modules["sklearn"]
    import optuna.importance

    return optuna.importance


def lr_curve(setup: Setup, values: dict[str, Any], trial: FrozenTrial | None) -> tuple[list[float], list[float]]:
    """The lr of every optimizer step of train_tuned's run (the target's full config, not the
    trial budget) with these values. A plateau schedule needs valid losses: the trial's, then
    ones that keep improving (no more decays)."""
    t = setup.target
    cfg = sp.trial_params(setup.raw, t, values).train_for(t.lm, t.factors)
    tok = load_tokenizer(paths.tokenizer_file(t.corpus, t.lm))
    ids = tok.model_ids(load_split_ids(t.corpus, tok, "train"))
    n = make_batches(ids, cfg.batching, max_tokens=cfg.max_train_tokens, newline_id=tok.newline_id,
                     seed=setup.raw["seed"], device=torch.device("cpu")).n_batches
    seen = list((trial.user_attrs.get("valid_losses") if trial is not None else None) or [])
    losses = seen + [min(seen, default=0.0) - 1 - i for i in range(cfg.epochs)]
    stride = max(1, n // 50)  # ~50 points per epoch are enough to draw
    epochs, lrs = [], []
    for e in range(cfg.epochs):
        for k in list(range(0, n, stride)) + [n - 1]:
            epochs.append(e + k / n)
            lrs.append(lr_at(cfg.schedule, cfg.optim.lr, epoch=e, step=e * n + k, steps_per_epoch=n,
                             valid_losses=losses[:e]))
    return epochs, lrs


def _png(fig, plt, left: float = 0.14) -> bytes:
    buf = io.BytesIO()
    fig.subplots_adjust(left=left, right=0.97, top=0.9, bottom=0.14)  # fixed: tight_layout costs seconds
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def files(out: Path) -> list[Path]:
    return [out / name for name in (sp.BEST_PARAMS, TRIALS_CSV, SUMMARY, *PLOTS)]
