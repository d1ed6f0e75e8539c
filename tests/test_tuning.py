"""Optuna tuning (stages tune@<target>, train_tuned@<target>) on real storages: sqlite files,
several local worker processes, PostgreSQL on 127.0.0.1 with two workers, a worker SIGKILLed
mid-trial, a real MLflow store for the nested runs, and DVC re-running only what a changed
search space affects. Tiny models on a toy corpus."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from pipeline import paths
from pipeline.errors import UserError
from pipeline.io import exclusive, read_json
from pipeline.rnn import run as rnn_run
from pipeline.tuning import study as tuning_study
from stages import download, prepare, tokenize
from stages import train_tuned as train_tuned_stage
from stages import tune as tune_stage
from tests.helpers import ROOT, dvc_project, ran, repo_params, run_stage, write_scenes

pytestmark = pytest.mark.slow
WORDS = "thou art the king and i the fool who sings of rome while lords and ladies dance".split()
T = "toy-word-lstm-0.0-5"
TARGET = {"corpus": "toy", "lm": "word", "cell": "lstm", "dropout": 0.0, "clip": 5}
ARGS = ["--corpus", "toy", "--lm", "word", "--cell", "lstm", "--dropout", "0.0", "--clip", "5"]
PG = os.environ.get("TUNE_TEST_POSTGRES", "postgresql+psycopg://optuna:optuna@127.0.0.1:5432/optuna")


def tiny_params(corpus: Path) -> dict:
    params = repo_params()
    params["corpora"] = {"toy": {"source": "local", "path": str(corpus)}}
    params["grid"] = {"corpus": ["toy"], "lm": ["word"], "cell": ["lstm"], "dropout": [0.0], "clip": [5], "seed": []}
    params["prepare"]["split"].update(valid=0.1, test=0.1)
    params["tokenizers"]["word"]["max_size"] = 12
    params["tokenizers"]["subword"]["vocab_size"] = 300
    params["ngram"]["orders"] = [2]
    params["train"].update(epochs=2, max_train_tokens=1200, samples=1, sample_tokens=12, threads=1)
    params["train"]["model"].update(embed_dim=16, hidden=16)
    params["train"]["batching"].update(batch_size=4, bptt=8)
    params["tracking"]["enabled"] = False
    params["tune"].update({  # every key stays in the file: DVC wants each key a stage lists
        "targets": {T: TARGET},
        "space": {"train.optim.lr": {"type": "float", "low": 0.05, "high": 5.0, "log": True},
                  "train.schedule.kind": {"type": "categorical", "choices": ["exponential", "plateau"]},
                  "train.schedule.rate": {"type": "float", "low": 0.2, "high": 1.0},
                  "train.schedule.patience": {"type": "int", "low": 0, "high": 1}},
        "n_trials": 4,
        "trial": {"max_train_tokens": 600},
        "report_every": 0.25,
        "sampler": {"kind": "tpe", "seed": 0, "n_startup_trials": 2, "n_ei_candidates": 8, "multivariate": True,
                    "group": True, "constant_liar": True},
        "pruner": {"kind": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
        "heartbeat": {"interval_s": 1, "grace_s": 2, "max_retry": 3},
    })
    return params


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """data/ of the toy corpus, prepared and tokenized once for the module."""
    root = tmp_path_factory.mktemp("toydata")
    write_scenes(root / "toy.txt", WORDS, n_scenes=40, n_lines=10)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(root / "toy.txt")))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        download.main(["toy"])
        prepare.main(["toy"])
        tokenize.main(["toy", "word"])
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture
def project(data, tmp_path, monkeypatch):
    """A project folder with the toy data and tiny params; returns a params editor."""
    shutil.copytree(data / "data", tmp_path / "data")
    params = tiny_params(data / "toy.txt")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUNE_STORAGE", raising=False)

    def edit(**tune) -> dict:
        params["tune"].update(tune)
        Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        return params

    edit()
    return edit


def study_of(storage: str) -> optuna.Study:
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def finished_(trials) -> list:
    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def finished(study) -> list:
    return finished_(study.get_trials())


def tune_cli(cwd: Path, *argv: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stages.tune", T, *ARGS, *argv], cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


# ----------------------------------------------------------------------------- one worker, sqlite


def test_a_tiny_study_is_reproducible_resumable_and_feeds_train_tuned(project, tmp_path):
    tune_stage.main([T])  # the default storage: <project>/studies.optuna.db
    default_db = f"sqlite:///{tmp_path / 'studies.optuna.db'}"
    first = study_of(default_db).trials  # a snapshot
    assert len(first) == 4 and len(finished_(first)) == 4
    assert first[0].user_attrs["enqueued"] == "default" and first[0].params["train.optim.lr"] == 2.0
    out = Path("tuning") / T
    best = read_json(out / "best_params.json")
    name = study_of(default_db).study_name
    assert best["study"] == name and best["params"] == first[best["trial"]].params
    summary = read_json(out / "summary.json")
    assert summary["trials"]["complete"] + summary["trials"]["pruned"] == 4 and summary["default"]["trial"] == 0
    assert len((out / "trials.csv").read_text().splitlines()) == 5
    for png in ("history", "importances", "lr_slice", "lr_schedule"):
        assert (out / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(Path("checkpoints").glob(f"{name}-trial-*"))  # finished trials leave none

    # the same seed in another storage: the same params, trial by trial, and the same values (CPU)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    os.environ["TUNE_STORAGE"] = other
    try:
        tune_stage.main([T, *ARGS])
    finally:
        del os.environ["TUNE_STORAGE"]
    again = study_of(other)
    assert again.study_name == name
    assert [t.params for t in again.trials] == [t.params for t in first]
    assert [(t.state, t.value) for t in again.trials] == [(t.state, t.value) for t in first]

    # a re-run continues the study: nothing to do at the same n_trials, two more at n_trials 6
    tune_stage.main([T])
    assert len(study_of(default_db).trials) == 4
    project(n_trials=6)
    tune_stage.main([T])
    grown = study_of(default_db)
    assert len(finished(grown)) == 6 and [t.params for t in grown.trials[:4]] == [t.params for t in first]

    # train_tuned trains the target's full config with the best values, through the train path
    train_tuned_stage.main([T])
    m = read_json(f"results/{T}-tuned.json")
    best = read_json(out / "best_params.json")["params"]
    config = read_json(f"models/{T}-tuned/config.json")
    assert m["run"] == f"{T}-tuned" and m["test"]["bits_per_char"] > 0 and m["tuned"]["params"] == best
    assert config["train"]["optim"]["lr"] == best["train.optim.lr"]
    assert config["train"]["max_train_tokens"] == 1200  # the grid's budget, not the trials'
    assert Path(f"curves/{T}-tuned.csv").is_file() and Path(f"models/{T}-tuned/model.pt").is_file()

    # a changed search space is a new study (n_trials is not part of a study's name)
    project(space={"train.optim.lr": {"type": "float", "low": 0.1, "high": 3.0, "log": True}}, n_trials=1)
    tune_stage.main([T])
    assert len(optuna.get_all_study_names(default_db)) == 2


def test_pruning_stops_bad_trials_early_and_divergence_is_a_bad_value(project, tmp_path):
    """Two sane trials, then two with an lr too small to learn (pruned at their first points),
    then two with an lr that blows up (diverged: the penalty value, COMPLETE, not a crash)."""
    lrs = [2.0, 1.0, 1e-6, 2e-6, 1e4, 1e5]
    project(space={"train.optim.lr": {"type": "float", "low": 1e-6, "high": 1e5, "log": True}}, n_trials=6,
            enqueue_default=False, enqueue=[{"train.optim.lr": lr} for lr in lrs], diverged_value=50.0,
            pruner={"kind": "median", "n_startup_trials": 2, "n_warmup_steps": 0})
    tune_stage.main([T])
    trials = study_of(f"sqlite:///{tmp_path / 'studies.optuna.db'}").trials
    assert [t.params["train.optim.lr"] for t in trials] == lrs
    sane, slow, blown = trials[:2], trials[2:4], trials[4:]
    assert all(t.state == TrialState.COMPLETE and t.value < 50 for t in sane)
    assert all(t.state == TrialState.PRUNED for t in slow)
    assert all(t.user_attrs["epochs"] < 1.0 for t in slow)  # stopped inside the first epoch
    assert all(max(t.intermediate_values) < max(sane[0].intermediate_values) for t in slow)
    for t in blown:
        assert t.state == TrialState.COMPLETE and t.value == 50.0 and t.user_attrs["diverged"] is True
        assert t.user_attrs["epochs"] < 1.0
    summary = read_json(Path("tuning") / T / "summary.json")
    assert summary["diverged"] == 2 and summary["best"]["trial"] in (0, 1)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("tune, message", [
    ({"space": {"train.optim.lrr": {"type": "float", "low": 0.1, "high": 1.0}}},
     r"tune\.space: 'train\.optim\.lrr': not a key of the train schema \(did you mean 'train\.optim\.lr'\?\)"),
    ({"space": {"train.optim.lr": {"type": "float", "low": 3.0, "high": 1.0}}},
     r"tune\.space\.train\.optim\.lr: low 3\.0 > high 1\.0"),
    ({"space": {"train.optim.lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}},
     r"tune\.space\.train\.optim\.lr: a log-scale range must lie above 0 \(low is 0\.0\)"),
    ({"space": {"train.optim.lr": {"type": "float", "low": 0.0, "high": 1.0}}},
     r"tune\.space\.train\.optim\.lr\.low: 0\.0 is not a valid train\.optim\.lr \(optim\.lr: Input should be greater"),
    ({"space": {"train.schedule.decay_steps": {"type": "float", "low": 1.0, "high": 2.5}}},
     r"tune\.space\.train\.schedule\.decay_steps\.low: 1\.0 is not a valid"),
    ({"space": {"train.model.dropout": {"type": "float", "low": 0.0, "high": 0.5}}},
     r"'train\.model\.dropout' is a grid factor"),
    ({"space": {"train.schedule.patience": {"type": "int", "low": 0, "high": 2}}},
     r"tune\.space\.train\.schedule\.patience: has no effect: train\.schedule\.kind is exponential"),
    ({"pruner": {"kind": "median", "reduction_factor": 3}}, r"tune\.pruner: \['reduction_factor'\] are not arguments"),
    ({"storage": "not a url"}, r"tune\.storage: 'not a url' is not an SQLAlchemy URL"),
    ({"storage": "nosuchdb://x/y"}, r"tune\.storage: cannot open nosuchdb://x/y: .*nosuchdb"),
    ({"storage": "postgresql+psycopg://optuna:secret@127.0.0.1:1/none"},
     r"tune\.storage: cannot open postgresql\+psycopg://optuna:\*\*\*@127\.0\.0\.1:1/none: .*(refused|connect)"),
])
def test_bad_input_is_one_error_naming_the_key_or_url(project, tune, message):
    project(**tune)
    with pytest.raises(UserError, match=message):
        tune_stage.main([T])
    assert not Path("tuning").exists() and not Path("checkpoints").exists()


def test_the_stage_exits_2_with_one_line(project, tmp_path):
    project(space={"train.optim.lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}})
    r = run_stage(tmp_path, "stages.tune", T)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("error: params.yaml: tune.space.train.optim.lr: a log-scale range")
    project(space={"train.optim.lr": {"type": "float", "low": 0.1, "high": 1.0, "log": True}})
    r = run_stage(tmp_path, "stages.tune", T, TUNE_STORAGE="postgresql+psycopg://u:pw@127.0.0.1:1/db")
    assert r.returncode == 2 and r.stderr.startswith("error: TUNE_STORAGE: cannot open postgresql+psycopg://u:***@")
    assert "pw" not in r.stderr and "Traceback" not in r.stderr and not (tmp_path / "tuning").exists()
    with pytest.raises(UserError, match=r"unknown tuning target 'nosuch'; params.yaml tune.targets has \['toy-"):
        tune_stage.main(["nosuch"])
    with pytest.raises(UserError, match=r"give all of --corpus --lm --cell --dropout --clip or none"):
        tune_stage.main([T, "--lm", "word"])


# ----------------------------------------------------------------------------- several workers


def check_exact(study, n: int) -> None:
    """n trials finished, none lost (WAITING/RUNNING), none twice (one run id each)."""
    done = finished(study)
    assert len(done) == n, [(t.number, t.state) for t in study.trials]
    assert not [t for t in study.trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]
    assert len({t.user_attrs["run"] for t in done}) == n


@pytest.fixture
def postgres():
    """A fresh database on the local PostgreSQL (.ci/run starts it and creates role optuna)."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg (PostgreSQL driver) not installed")
    base = PG.replace("postgresql+psycopg://", "postgresql://")
    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL not reachable at {PG.split('@')[-1]} ({str(e).strip().splitlines()[0]}); "
                    ".ci/run installs and starts it")
    name = f"tune_test_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield PG.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_two_workers_on_postgresql_share_one_study_exactly(project, tmp_path, postgres):
    project(n_trials=6, trial={"max_train_tokens": 1200})
    proc = tune_cli(tmp_path, "--workers", "2", TUNE_STORAGE=postgres)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    study = study_of(postgres)
    check_exact(study, 6)
    assert not [t for t in study.trials if t.state == TrialState.FAIL]
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2, out
    assert read_json(Path("tuning") / T / "summary.json")["storage"].startswith("postgresql+psycopg://optuna:***@")


class Dashboard:
    """optuna-dashboard serving `storage` on 127.0.0.1, read by a thread every 50 ms meanwhile,
    as a user watching a live study would: the answers it got and the errors it saw."""

    def __init__(self, storage: str, tmp_path: Path):
        import socket
        import threading

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.url = f"http://127.0.0.1:{s.getsockname()[1]}"
        self.log = open(tmp_path / "dashboard.log", "w+")
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "optuna-dashboard"), storage, "--host",
                                      "127.0.0.1", "--port", self.url.rsplit(":", 1)[1]],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.answers, self.errors, self.stop = 0, [], threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        import json
        import urllib.error
        import urllib.request

        while not self.stop.wait(0.05):
            try:
                studies = json.load(urllib.request.urlopen(f"{self.url}/api/studies", timeout=10))
                for st in studies["study_summaries"]:
                    study = json.load(urllib.request.urlopen(f"{self.url}/api/studies/{st['study_id']}?after=0",
                                                             timeout=10))
                    self.answers += bool(study["trials"])
            except urllib.error.HTTPError as e:
                self.errors.append(f"{e.code}: {e.read()[:300]!r}")
            except (urllib.error.URLError, ConnectionError):  # not listening yet
                pass
            except Exception as e:  # an answer of another shape
                self.errors.append(repr(e))

    def close(self) -> str:
        self.stop.set()
        self.thread.join()
        self.proc.terminate()
        self.proc.wait()
        self.log.seek(0)
        return self.log.read()


def created_studies(db: Path) -> list[str]:
    """The studies in an sqlite storage that the stage has created, read without optuna: opening
    a storage creates its tables, and the stage must be the one first contact (NOTES.md)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return [r[0] for r in con.execute("SELECT study_name FROM studies")]
        finally:
            con.close()
    except sqlite3.Error:  # no file yet, or no tables yet
        return []


def trial_running_in_a_frozen_worker(storage: str, name: str):
    """A trial mid-way (running, with intermediate values) whose worker is now stopped (SIGSTOP),
    or None. A tiny trial can finish between reading its state and a kill, and the kill would
    then hit the worker's next trial or none: the state is re-read once the worker is frozen."""
    def running():
        return [t for t in optuna.load_study(study_name=name, storage=storage).get_trials(states=(TrialState.RUNNING,))
                if t.intermediate_values and "worker" in t.user_attrs]

    for t in running():
        pid = int(t.user_attrs["worker"].split(":")[1])
        os.kill(pid, signal.SIGSTOP)
        if t.number in {now.number for now in running()}:
            return t
        os.kill(pid, signal.SIGCONT)
    return None


def test_local_workers_on_sqlite_survive_a_worker_killed_mid_trial(project, tmp_path):
    """Three worker processes on one sqlite file (no "database is locked", with optuna-dashboard
    reading the live study all along); one is SIGKILLed in the middle of a trial: after the
    heartbeat's grace period its trial is FAIL, a copy with the same params runs (resuming the
    killed trial's checkpoints) and the study ends with exactly n_trials finished."""
    project(n_trials=6, trial={"max_train_tokens": 1200, "checkpoint_minutes": 0.002}, pruner={"kind": "none"})
    storage = f"sqlite:///{tmp_path / 'studies.optuna.db'}"
    proc = tune_cli(tmp_path, "--workers", "3")
    victim, dashboard = None, None
    deadline = time.monotonic() + 120
    while victim is None:  # a trial mid-way: running, with intermediate values
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else ""
        time.sleep(0.05)
        names = created_studies(tmp_path / "studies.optuna.db")
        if names:
            # optuna-dashboard does not create tables: a user opens it on a study that exists
            dashboard = dashboard or Dashboard(storage, tmp_path)
            victim = trial_running_in_a_frozen_worker(storage, names[0])
    os.kill(int(victim.user_attrs["worker"].split(":")[1]), signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    served = dashboard.close()
    assert proc.returncode == 0, out
    assert "database is locked" not in out and "Traceback" not in out, out
    assert dashboard.answers > 0 and not dashboard.errors and "database is locked" not in served, served
    study = study_of(storage)
    assert study.trials[victim.number].state == TrialState.FAIL
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim.number]
    assert retry.state == TrialState.COMPLETE and retry.params == victim.params
    assert retry.user_attrs["run"] == victim.user_attrs["run"]  # resumed the killed trial's checkpoints
    assert retry.user_attrs["worker"] != victim.user_attrs["worker"]
    check_exact(study, 6)
    assert len({t.user_attrs["worker"] for t in finished(study)}) >= 2, out


def hold_run(run: str, held: threading.Event, seconds: float = 2.0) -> None:
    """Hold run `run`'s lock, as the process training it does, for `seconds`."""
    with exclusive(paths.RunDir(run).checkpoint_root / rnn_run.LOCK, f"run {run}"):
        held.set()
        time.sleep(seconds)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_worker_whose_trial_was_given_up_as_stale_moves_on(project, tmp_path, monkeypatch, caplog):
    """A worker that stalls past the grace period (suspended, swapping) finds its trial FAIL when it
    wakes, given up by another worker: it says so and runs on, its checkpoints left to the retry,
    and the study ends with exactly n_trials finished (a worker died of this on a loaded machine).
    The retry waits for the stalled worker to let go of the run rather than fail on its lock."""
    project(n_trials=3, pruner={"kind": "none"})
    storage = f"sqlite:///{tmp_path / 'studies.optuna.db'}"
    real, given_up = tuning_study.train_run, []

    def stalls_at_its_end(params, spec, *args, **kw):
        out = real(params, spec, *args, **kw)
        if not given_up:  # what another worker's optuna.storages.fail_stale_trials does meanwhile
            study = study_of(storage)
            (t,) = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            RetryHeartbeatStaleTrialCallback(max_retry=3)(study, study._storage.get_trial(t._trial_id))
            given_up.append(t.number)
            # a stalled worker wakes still holding the run: it lets go a moment after the retry starts
            held = threading.Event()
            threading.Thread(target=hold_run, args=(spec.run, held), daemon=True).start()
            held.wait()
        return out

    monkeypatch.setattr(tuning_study, "train_run", stalls_at_its_end)
    with caplog.at_level("WARNING"):
        tune_stage.main([T])
    trials = study_of(storage).get_trials()
    (stale,) = [t for t in trials if t.state == TrialState.FAIL]
    assert stale.number == given_up[0] and "valid_bits_per_char" not in stale.user_attrs
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == stale.number]
    assert retry.state == TrialState.COMPLETE and retry.params == stale.params
    assert len(finished_(trials)) == 3
    assert f"trial {stale.number} [" in caplog.text and "given up as stale" in caplog.text


# ----------------------------------------------------------------------------- MLflow


def test_the_study_is_a_parent_mlflow_run_of_its_trials(project, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = os.environ["MLFLOW_TRACKING_URI"]  # the session's store (tests/conftest.py): migrated once
    params = project(n_trials=2)
    params["tracking"]["enabled"] = True
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    tune_stage.main([T])
    study = study_of(f"sqlite:///{tmp_path / 'studies.optuna.db'}")
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("toy")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    (parent,) = [r for r in runs if r.info.run_name == study.study_name
                 and r.data.tags.get("optuna.storage", "").startswith(f"sqlite:///{tmp_path}")]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert {c.data.tags["optuna.state"] for c in children} <= {"COMPLETE", "PRUNED"}
    best = read_json(Path("tuning") / T / "best_params.json")["trial"]
    assert [c.data.tags["optuna.trial"] for c in children if c.data.tags["optuna.best_trial"] == "true"] == [str(best)]
    child = next(c for c in children if c.data.tags["optuna.trial"] == "0")
    steps = [m.step for m in client.get_metric_history(child.info.run_id, "trial_valid_bits_per_char")]
    assert steps == sorted(study.trials[0].intermediate_values)
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"best_params.json", "trials.csv", "summary.json", "history.png", "lr_schedule.png"} <= names
    assert parent.data.metrics["best_value"] == read_json(Path("tuning") / T / "best_params.json")["value"]


# ----------------------------------------------------------------------------- DVC


def test_dvc_reruns_only_tuning_and_what_follows_when_the_space_changes(tmp_path):
    write_scenes(tmp_path / "toy.txt", WORDS, n_scenes=40, n_lines=10)
    params = tiny_params(tmp_path / "toy.txt")
    params["grid"]["lm"] = ["word"]
    params["tune"].update(n_trials=2, trial={"max_train_tokens": 300})
    proj = tmp_path / "proj"
    proj.mkdir()
    run = dvc_project(proj, params, MLFLOW_TRACKING_URI="")
    r = run("dvc", "repro", f"train_tuned@{T}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert {f"tune@{T}", f"train_tuned@{T}"} <= ran(r.stdout)
    assert (proj / "tuning" / T / "best_params.json").is_file() and (proj / "metrics" / f"{T}-tuned.json").is_file()

    # a changed space: the study and what depends on its best params, nothing upstream (a dry run
    # lists the stages whose own deps changed; train_tuned follows tune through best_params.json)
    params["tune"]["space"]["train.optim.lr"]["high"] = 3.0
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    r = run("dvc", "repro", "--dry", f"train_tuned@{T}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == {"check_params", f"tune@{T}"}, r.stdout
    r = run("dvc", "status", "--with-deps", f"train_tuned@{T}")
    assert f"tune@{T}" in r.stdout and "tune.space" in r.stdout and "tokenize" not in r.stdout, r.stdout


def test_each_worker_gets_one_gpu_where_several_are_visible(monkeypatch):
    from pipeline.tuning.study import gpu_slots

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert gpu_slots(3) == ["2", "5", "2"] and gpu_slots(1) == [None]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert gpu_slots(2) == [None, None]  # one GPU: shared, the environment left as it is
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu_slots(2) == [None, None]  # none visible: CPU workers
