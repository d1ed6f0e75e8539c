"""A study: its name, sampler, pruner, trial slots, the worker loop and the objective.

The study's name is the target's plus a hash of everything that shapes a trial's value (the
trial config, data and trainer code as `rnn.run.params_hash` sees them, this package's code, the
search space, budget, sampler and pruner), never of `n_trials`, `timeout_s` or the storage: so
re-running the stage continues its study, and changing the space starts a new one.

Slots, so that `n_trials` holds in total across any number of workers and machines: the stage
enqueues the study's fixed trials (the target's own values first, `tune.enqueue` next) and then
blank trials until the study holds `n_trials` trials that are not FAIL. Workers only pop WAITING
trials (atomically, as Optuna's own queue does), never create them. A worker killed mid-trial
stops beating; `heartbeat.grace_s` later any worker marks its trial FAIL and Optuna's
RetryHeartbeatStaleTrialCallback queues a copy (same params), which resumes the killed trial's
checkpoints (same run id, same params hash). Ctrl-C / SIGTERM does the same at once.

Objective: valid bits/char of the best epoch (minimised), from `train_run` with a pruning
callback. A pruned trial is PRUNED with its last reported value. A diverged trial (metrics
"diverged": true) is COMPLETE with `tune.diverged_value`: a bad value, not a crash; the sampler
learns to avoid its region.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Iterator

import optuna
import torch
from optuna.trial import TrialState

from pipeline import paths
from pipeline.config import Params, TuneConfig
from pipeline.errors import Interrupted, UserError
from pipeline.imports import ROOT, files_hash, project_files
from pipeline.rnn.run import RunSpec, params_hash, train_run
from pipeline.rnn.trainer import Callback
from pipeline.tuning import space as sp
from pipeline.tuning.storage import open_storage, resolve, shown, storage_source

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# the tune keys that define a study (PARAMS of stage tune) and the side channels it also reads
STUDY_KEYS = ("space", "n_trials", "timeout_s", "trial", "report_every", "enqueue_default", "enqueue",
              "diverged_value", "sampler", "pruner")
SIDE_KEYS = ("storage", "workers", "heartbeat")
HASHED = ("space", "trial", "report_every", "enqueue_default", "enqueue", "diverged_value", "sampler", "pruner")
PARENT_ATTR = "mlflow_parent_run_id"  # study user attr: the study's MLflow run, parent of the trials' runs


class _Quiet:
    """Optuna marks heartbeats, stale-trial retries and TPE's `group` experimental: known, used on purpose."""

    def __enter__(self):
        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def _plain(value: Any, full: bool = False) -> Any:
    """Schema objects as plain data: as written (defaults left out, so that validating it again
    sees the same keys set), or `full` (for hashing: a default written out or left implicit is
    the same setting)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_unset=not full)
    if isinstance(value, dict):
        return {k: _plain(v, full) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, full) for v in value]
    return value


@dataclass(frozen=True)
class Setup:
    """Everything a worker needs (JSON-able: spawned and joining workers get it whole)."""

    target: sp.Target
    raw: dict  # the target's params without tuning: a stage's declared keys (space.base_raw)
    tune: TuneConfig  # only STUDY_KEYS and SIDE_KEYS are set
    storage: str  # resolved URL
    study: str  # name

    @classmethod
    def build(cls, params: Params, target: sp.Target) -> "Setup":
        """From a stage's scoped params: check the space against the schema (UserError before
        any work), resolve the storage, name the study."""
        tune = TuneConfig.model_validate({k: _plain(getattr(params.tune, k)) for k in (*STUDY_KEYS, *SIDE_KEYS)})
        raw = sp.base_raw(params, target)
        sp.check(tune, raw, target)
        return cls(target, raw, tune, resolve(tune.storage), study_name(tune, raw, target))

    def to_json(self) -> str:
        return json.dumps({"target": asdict(self.target), "raw": self.raw,
                           "tune": self.tune.model_dump(exclude_unset=True),
                           "storage": self.storage, "study": self.study})

    @classmethod
    def from_json(cls, text: str) -> "Setup":
        d = json.loads(text)
        return cls(sp.Target(**d["target"]), d["raw"], TuneConfig.model_validate(d["tune"]), d["storage"], d["study"])

    def trial_cfg(self, values: dict | None = None):
        """The training config of a trial with these values (the budget merged in)."""
        t = self.target
        return sp.trial_params(self.raw, t, values or {}, self.tune.trial).train_for(t.lm, t.factors)

    def spec(self, run: str) -> RunSpec:
        t = self.target
        return RunSpec(run, t.corpus, t.lm, t.cell, t.dropout, t.clip, seed=self.raw["seed"])


def code_hash() -> str:
    """This package's code that shapes a trial's value (the trainer's is in rnn.run's params hash)."""
    own = [p for p in project_files(__name__) if "tuning" in p.relative_to(ROOT).parts]
    return files_hash(own)


def study_name(tune: TuneConfig, raw: dict, target: sp.Target) -> str:
    base = sp.trial_params(raw, target, {}, tune.trial)
    key = {
        "target": asdict(target),
        "run": params_hash(base, RunSpec(target.name, target.corpus, target.lm, target.cell, target.dropout,
                                         target.clip, seed=base.seed)),
        "code": code_hash(),
        "study": {k: _plain(getattr(tune, k), full=True) for k in HASHED},
    }
    return f"{target.name}-{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]}"


# ----------------------------------------------------------------------------- sampler, pruner, study


def make_sampler(tune: TuneConfig, worker: int = 0, started: int = 0) -> optuna.samplers.BaseSampler:
    """Every TPE argument explicit (Optuna 5 changed the defaults). Worker k draws with seed + k:
    workers seeded alike would propose the same first points. A worker joining a study that has
    `started` trials already shifts its seed by that: a continued study (after Ctrl-C, or with a
    larger n_trials) must not draw the first run's random points again. A fresh study with one
    worker draws the same trials for the same seed."""
    s = tune.sampler
    seed = (s.seed + worker + 1_000_003 * started) % 2**32
    if s.kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with _Quiet():
        return optuna.samplers.TPESampler(n_startup_trials=s.n_startup_trials, n_ei_candidates=s.n_ei_candidates,
                                          seed=seed, multivariate=s.multivariate, group=s.group,
                                          constant_liar=s.constant_liar)


def make_pruner(tune: TuneConfig) -> optuna.pruners.BasePruner:
    p = tune.pruner
    if p.kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps,
                                           interval_steps=p.interval_steps, n_min_trials=p.n_min_trials)
    if p.kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=p.min_resource, max_resource=p.max_resource,
                                              reduction_factor=p.reduction_factor, bootstrap_count=p.bootstrap_count)
    return optuna.pruners.NopPruner()


def open_study(setup: Setup, storage, *, create: bool, worker: int = 0) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kw = dict(study_name=setup.study, storage=storage, sampler=make_sampler(setup.tune, worker),
              pruner=make_pruner(setup.tune))
    if create:
        study = optuna.create_study(direction="minimize", load_if_exists=True, **kw)
        study.set_user_attr("target", asdict(setup.target))
    else:
        try:
            study = optuna.load_study(**kw)
        except KeyError:
            raise UserError(f"no study {setup.study} in {shown(setup.storage)}: start it with `dvc repro "
                            f"tune@{setup.target.name}` (or python -m stages.tune {setup.target.name}); a worker "
                            "joins the study of the same params, data and code") from None
    started = sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))
    if started:
        study.sampler = make_sampler(setup.tune, worker, started)
    return study


def fill_slots(study: optuna.Study, setup: Setup) -> None:
    """A new study gets its fixed trials first; then blank WAITING trials until `n_trials` trials
    are not FAIL (a retried trial replaces its failed one; one whose retries ran out is replaced
    by a blank one here, on the next stage run)."""
    n = setup.tune.n_trials
    trials = study.get_trials(deepcopy=False)
    if not trials:
        fixed = []
        if setup.tune.enqueue_default:
            fixed.append(({**sp.defaults(setup.tune.space, setup.trial_cfg())}, "default"))
        fixed += [(dict(values), "enqueued") for values in setup.tune.enqueue]
        for values, why in fixed[:n]:
            study.enqueue_trial(values, user_attrs={"enqueued": why})
        trials = study.get_trials(deepcopy=False)
    live = sum(t.state != TrialState.FAIL for t in trials)
    for _ in range(n - live):
        study.enqueue_trial({})


def counts(study: optuna.Study) -> collections.Counter:
    return collections.Counter(t.state for t in study.get_trials(deepcopy=False))


# ----------------------------------------------------------------------------- the worker loop


def work(setup: Setup, storage, study: optuna.Study, *, label: str, deadline: float | None) -> int:
    """Run WAITING trials until the study has `n_trials` finished ones, none is left to run, or
    the deadline passed. While the last trials run elsewhere it waits, checking their heartbeats:
    one that went stale comes back as a retry, and this worker runs it. Returns trials run."""
    n, ran = setup.tune.n_trials, 0
    poll = min(2.0, setup.tune.heartbeat.interval_s)
    while True:
        with _Quiet():
            optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        state = collections.Counter(t.state for t in trials)
        finished = state[TrialState.COMPLETE] + state[TrialState.PRUNED]
        if finished >= n or (deadline is not None and time.time() >= deadline):
            return ran
        waiting = [t for t in trials if t.state == TrialState.WAITING]
        if waiting and finished + state[TrialState.RUNNING] < n:
            trial = _pop(study, storage, waiting)
            if trial is not None:
                run_trial(setup, study, storage, trial, label)
                ran += 1
            continue
        if not state[TrialState.RUNNING]:
            return ran  # no slot left (retries ran out): the next stage run adds blank ones
        time.sleep(poll)


def _pop(study: optuna.Study, storage, waiting) -> optuna.Trial | None:
    """Take the first WAITING trial no other worker took, retries first (they resume where a
    killed trial stopped). Study.ask pops the same way, but creates a trial when none waits, and
    slots must not grow."""
    for t in sorted(waiting, key=lambda t: ("failed_trial" not in t.system_attrs, t.number)):
        # a heartbeat before the trial turns RUNNING: a worker killed right after the pop still
        # leaves one to go stale (Optuna never fails a RUNNING trial that has none)
        storage.record_heartbeat(t._trial_id)
        try:
            if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                return optuna.Trial(study, t._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


class Heartbeat:
    """Records the trial's heartbeat every `interval` seconds while the block runs."""

    def __init__(self, storage, trial_id: int, interval: float):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{trial_id}")

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception as e:  # a storage hiccup: the next beat may get through
                log.warning("heartbeat of trial id %d not recorded: %s", self.trial_id, e)

    def __enter__(self) -> "Heartbeat":
        self.storage.record_heartbeat(self.trial_id)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


class Pruning(Callback):
    """The trainer's valid bits/char to the trial, at every intermediate point (report_every) and
    epoch end, at step = the trainer's global optimizer step; stops training when the pruner says
    so. A non-finite or huge score is reported as the diverged value."""

    def __init__(self, trial: optuna.Trial, bad_value: float):
        self.trial, self.bad = trial, bad_value
        self.step, self.epoch, self.pruned = 0, 0.0, False

    def on_sync(self, point: dict) -> None:
        self.step, self.epoch = point["step"], point["epoch"]  # read before each epoch's end, too

    def on_valid(self, point: dict) -> bool:
        return self._report(point["step"], point["epoch"], point["valid_bits_per_char"])

    def on_epoch_end(self, record: dict) -> bool:
        return self._report(self.step, float(record["epoch"]), record["valid_bits_per_char"])

    def _report(self, step: int, epoch: float, value: float) -> bool:
        value = value if math.isfinite(value) and value < self.bad else self.bad
        self.epoch = epoch
        try:
            self.trial.report(value, step)
        except optuna.exceptions.UpdateFinishedTrialError:
            return True  # given up as stale meanwhile (run_trial's tell says so): stop, the retry counts
        self.pruned = self.trial.should_prune()
        return self.pruned


def trial_run(setup: Setup, frozen) -> str:
    """A trial's run id (checkpoints, MLflow run): a retry keeps its original trial's, so it
    resumes the killed trial's checkpoints."""
    return f"{setup.study}-trial-{frozen.system_attrs.get('failed_trial', frozen.number)}"


# A retry trains the run of the trial it replaces. When that trial went stale because its worker
# stalled rather than died, the worker wakes still holding the run, and stops at its next report
# to the study (which finds the trial FAIL): the retry waits for it, up to this long.
RETRY_LOCK_WAIT_S = 600.0


def run_trial(setup: Setup, study: optuna.Study, storage, trial: optuna.Trial, label: str) -> None:
    """Train one trial and tell the study. The heartbeat beats until the trial is told, so only a
    worker that stalls (suspended, swapping, SIGSTOP) past the grace period loses its trial; when it
    wakes, whatever it writes next finds the trial FAIL, and it moves on: the retry counts."""
    t0 = time.monotonic()
    frozen = storage.get_trial(trial._trial_id)
    run = trial_run(setup, frozen)
    result, state = None, TrialState.FAIL
    try:
        with Heartbeat(storage, trial._trial_id, setup.tune.heartbeat.interval_s):
            trial.set_user_attr("worker", label)
            trial.set_user_attr("run", run)
            values = sp.suggest(trial, setup.tune.space, setup.trial_cfg())
            params = sp.trial_params(setup.raw, setup.target, values, setup.tune.trial, f"tune trial {trial.number}")
            pruning = Pruning(trial, setup.tune.diverged_value)
            result = train_run(params, setup.spec(run), callbacks=[pruning], progress=False,
                               report_every=setup.tune.report_every, tags=_trial_tags(setup, study, trial),
                               lock_wait_s=RETRY_LOCK_WAIT_S if "failed_trial" in frozen.system_attrs else 0.0)
            state, value = _tell(setup, study, trial, result, pruning)
    except optuna.exceptions.UpdateFinishedTrialError:
        log.warning("trial %d [%s] was given up as stale meanwhile; its retry counts instead", trial.number, label)
    except BaseException as e:
        _give_up(study, storage, trial, e)
        raise
    if result is None:
        return
    tracker = _tracker(result)
    if tracker is not None:
        _annotate(setup, study, storage, trial, tracker, state, values)
        tracker.finish(result.result, [], None)
    if state == TrialState.FAIL:
        return  # its checkpoints stay: the retry resumes them
    shutil.rmtree(paths.RunDir(run).checkpoint_root, ignore_errors=True)  # the study keeps the result
    shown_values = ", ".join(f"{k.rsplit('.', 1)[-1]}={_fmt(v)}" for k, v in values.items())
    outcome = ("diverged" if result.result["diverged"] else f"pruned at epoch {pruning.epoch:.2f}"
               if state == TrialState.PRUNED else f"valid {value:.4f} bits/char")
    log.info("trial %d [%s]: %s (%s) in %.1f s", trial.number, label, outcome, shown_values, time.monotonic() - t0)


def _tell(setup: Setup, study: optuna.Study, trial: optuna.Trial, result, pruning: Pruning) -> tuple[TrialState, float | None]:
    """The trial's attributes and its value (the diverged value for a diverged run, none for a
    pruned one) to the study; returns the state told and the value."""
    m = result.result
    diverged = bool(m["diverged"])
    pruned = not diverged and (pruning.pruned or bool(m["stopped_early"]))
    value = setup.tune.diverged_value if diverged else None if pruned else m["valid"]["bits_per_char"]
    tracker = _tracker(result)
    attrs = {"diverged": diverged, "epochs": pruning.epoch or float(m["epochs"]),  # where training stopped
             "valid_bits_per_char": (m["valid"] or {}).get("bits_per_char"), "train_wall_s": result.cost["wall_s"],
             "valid_losses": [r["valid_loss"] for r in result.records],
             "mlflow_run_id": tracker.run_id if tracker else None}
    for k, v in attrs.items():
        trial.set_user_attr(k, v)
    state = TrialState.PRUNED if pruned else TrialState.COMPLETE
    study.tell(trial, value, state=state)
    return state, value


def _tracker(result):
    """The run's tracker, None where tracking is off."""
    return result.tracker if result.tracker is not None and result.tracker.enabled else None


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _give_up(study: optuna.Study, storage, trial: optuna.Trial, e: BaseException) -> None:
    """A trial that raised is FAIL; one stopped by Ctrl-C / SIGTERM is queued again at once (as a
    stale one would be after the grace period), so the next run resumes its checkpoints."""
    try:
        study.tell(trial, state=TrialState.FAIL)
    except Exception:  # failed meanwhile as stale, or the storage is gone: nothing to add
        return
    retry = storage.get_heartbeat_stale_trial_callback()
    if isinstance(e, (Interrupted, KeyboardInterrupt)) and retry is not None:
        with _Quiet():
            retry(study, storage.get_trial(trial._trial_id))


def _trial_tags(setup: Setup, study, trial) -> dict[str, str]:
    """A trial's MLflow run is created with these: nested under the study's run from its start
    (`mlflow ui` shows it there while it trains)."""
    tags = {"optuna.study": setup.study, "optuna.trial": str(trial.number), "dvc_stage": f"tune@{setup.target.name}"}
    parent = study.user_attrs.get(PARENT_ATTR)
    return {**tags, "mlflow.parentRunId": parent} if parent else tags


def _annotate(setup: Setup, study, storage, trial, tracker, state: TrialState, values: dict) -> None:
    """The trial's MLflow run once it is told: its optuna state, what was searched, its value and
    intermediate values."""
    frozen = storage.get_trial(trial._trial_id)
    tags = {"optuna.trial": str(trial.number), "optuna.state": state.name, "optuna.searched": ",".join(values)}
    if "failed_trial" in frozen.system_attrs:
        tags["optuna.retry_of"] = str(frozen.system_attrs["failed_trial"])
    tracker.log_run(tracker.run_id, tags=tags,
                    metrics={"trial_value": frozen.value} if frozen.value is not None else None)
    for step, v in sorted(frozen.intermediate_values.items()):
        tracker.log_run(tracker.run_id, metrics={"trial_valid_bits_per_char": v}, step=step)


# ----------------------------------------------------------------------------- several workers


def gpu_slots(workers: int) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES of each worker: one visible GPU each, round robin, when several are
    visible and several workers run; otherwise the environment is left as it is."""
    if workers < 2:
        return [None] * workers
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [d.strip() for d in visible.split(",") if d.strip()]
    else:
        ids = [str(i) for i in range(torch.cuda.device_count())]
    return [ids[i % len(ids)] for i in range(workers)] if len(ids) > 1 else [None] * workers


def spawn(setup: Setup, workers: int, deadline: float | None, first: int = 0) -> list[subprocess.Popen]:
    """`workers` processes of `python -m pipeline.tuning.worker`, each pinned to one GPU where
    several are visible, CPU threads shared out; started a moment apart (sqlite's first contact)."""
    from pipeline.tuning import worker  # the worker's entry point imports this module

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if workers > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    procs = []
    for i, gpu in enumerate(gpu_slots(workers)):
        wenv = dict(env) if gpu is None else {**env, "CUDA_VISIBLE_DEVICES": gpu}
        p = subprocess.Popen([sys.executable, "-m", worker.__name__], stdin=subprocess.PIPE, env=wenv,
                             text=True)
        p.stdin.write(json.dumps({"setup": setup.to_json(), "worker": first + i, "deadline": deadline}))
        p.stdin.close()
        procs.append(p)
        time.sleep(0.2)
    return procs


def wait_all(procs: list[subprocess.Popen]) -> list[int]:
    """Wait for every worker; SIGINT/SIGTERM here are passed on (each stops at a batch boundary
    with a checkpoint, its trial queued again) before they are raised."""
    try:
        return [p.wait() for p in procs]
    except BaseException:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait()
        raise


def worker_label(i: int) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{i}"


@contextlib.contextmanager
def opened(setup: Setup, *, create: bool, worker: int = 0) -> Iterator[tuple[object, optuna.Study]]:
    storage = open_storage(setup.storage, setup.tune.heartbeat, what=storage_source())
    try:
        yield storage, open_study(setup, storage, create=create, worker=worker)
    finally:
        storage.remove_session()
        storage.engine.dispose()
