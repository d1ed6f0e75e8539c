"""What stage tune@<target> does: open or continue the study, run its trials (here or in worker
processes), write its results and its MLflow run.

    tune(params, target)                 # the stage: trials, then tuning/<target>/
    tune(params, target, join=True)      # another machine: run trials of the running study only
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict

from optuna.trial import TrialState

from pipeline import paths
from pipeline.config import Params
from pipeline.errors import UserError
from pipeline.io import check_writable
from pipeline.tracking import Tracker
from pipeline.tuning import results
from pipeline.tuning.space import Target
from pipeline.tuning.storage import shown
from pipeline.tuning.study import (PARENT_ATTR, SIDE_KEYS, Setup, counts, fill_slots, opened, spawn, wait_all, work,
                                   worker_label)

log = logging.getLogger(__name__)


def tune(params: Params, target: Target, *, workers: int | None = None, join: bool = False) -> dict | None:
    """Run the study of `target` to `tune.n_trials` finished trials (or `tune.timeout_s`) with
    `workers` processes (default `tune.workers`; 1 runs here), then write tuning/<target>/ and
    return its summary. With `join`, only run trials of the study the stage started."""
    setup = Setup.build(params, target)  # every UserError of params comes before any work
    n = workers or setup.tune.workers
    deadline = time.time() + setup.tune.timeout_s if setup.tune.timeout_s else None
    if join:
        first = 1000 + os.getpid() % 100_000  # sampler seeds apart from the stage's own workers'
        with opened(setup, create=False, worker=first) as (storage, study):  # the study must exist
            log.info("joining study %s in %s with %d worker(s)", setup.study, shown(setup.storage), n)
            if n == 1:
                work(setup, storage, study, label=worker_label(first), deadline=deadline)
            else:
                _run_workers(setup, n, deadline, first=first)
        return None

    with opened(setup, create=True) as (storage, study):  # a bad storage URL stops the stage here
        out = paths.tuning_dir(target.name)
        check_writable(out, paths.CHECKPOINTS)
        parent = Tracker(params.tracking, corpus=target.corpus, run=setup.study, stage=f"tune@{target.name}",
                         params_hash=setup.study.rsplit("-", 1)[-1],
                         params={"target": asdict(target), "tune": setup.tune.model_dump(exclude=set(SIDE_KEYS))},
                         tags={"optuna.study": setup.study, "optuna.storage": shown(setup.storage)},
                         state_dir=paths.CHECKPOINTS / setup.study, reopen=True)
        try:
            fill_slots(study, setup)
            parent.started()  # an unreachable tracking store stops the stage here
            if parent.enabled:
                study.set_user_attr(PARENT_ATTR, parent.run_id)
            c = counts(study)
            log.info("study %s in %s: %d of %d trials finished, %d to run", setup.study, shown(setup.storage),
                     c[TrialState.COMPLETE] + c[TrialState.PRUNED], setup.tune.n_trials, c[TrialState.WAITING])
            if n == 1:
                work(setup, storage, study, label=worker_label(0), deadline=deadline)
            else:
                _run_workers(setup, n, deadline)
            _check_done(study, setup, deadline)
            summary = results.write(out, study, setup)
            best = summary["best"]["trial"]
            for t in study.get_trials(deepcopy=False):
                child = t.user_attrs.get("mlflow_run_id")
                if child and parent.enabled:
                    parent.log_run(child, tags={"mlflow.parentRunId": parent.run_id,
                                                "optuna.best_trial": str(t.number == best).lower()})
            metrics = {"best_value": summary["best"]["value"], "best_trial": best,
                       "default_value": (summary["default"] or {}).get("value"),
                       **{f"n_{k}": v for k, v in summary["trials"].items()}, "n_diverged": summary["diverged"]}
            parent.finish(metrics, results.files(out), None)
        except BaseException:
            parent.close()  # the study's MLflow run ends KILLED; the next stage run continues it
            raise
    return summary


def _run_workers(setup: Setup, n: int, deadline: float | None, first: int = 0) -> None:
    codes = wait_all(spawn(setup, n, deadline, first))
    if any(c == 2 for c in codes):
        raise UserError("a tuning worker stopped with an error (printed above)")
    for i, c in enumerate(codes):
        if c != 0:
            log.warning("tuning worker %d exited with %s; the others retry its trial", i, c)


def _check_done(study, setup: Setup, deadline: float | None) -> None:
    c = counts(study)
    finished = c[TrialState.COMPLETE] + c[TrialState.PRUNED]
    if finished < setup.tune.n_trials and not (deadline is not None and time.time() >= deadline):
        raise UserError(f"study {setup.study}: {finished} of {setup.tune.n_trials} trials finished "
                        f"({c[TrialState.FAIL]} failed, {c[TrialState.RUNNING]} still running elsewhere): workers "
                        "stopped early or a trial's retries ran out (tune.heartbeat.max_retry); run the stage again "
                        "to continue the study")
