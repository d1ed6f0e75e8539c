"""MLflow tracking against real stores: an `mlflow server` on 127.0.0.1, the default sqlite
file, DVC's queued experiments, a run-cache restore, a kill and resume, an unreachable server."""

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import dvc_project, ran, repo_params, set_param, write_scenes

pytestmark = pytest.mark.slow
WORDS = "the king and queen of rome speak to a fool who sings while lords come and go".split()
TRAIN = "toy-word-lstm-0.0-5"
RUNS = {TRAIN, "toy-ngram-2", "toy-ngram-2-matched"}  # the n-gram on the whole split and on the RNN budget


def tiny_params(corpus: Path, **train) -> dict:
    params = repo_params()
    params["corpora"] = {"toy": {"source": "local", "path": str(corpus)}}
    params["grid"] = {"corpus": ["toy"], "lm": ["word"], "cell": ["lstm"], "dropout": [0.0], "clip": [5], "seed": []}
    params["ngram"]["orders"] = [2]
    params["tokenizers"]["subword"]["vocab_size"] = 300
    params["train"].update(epochs=2, max_train_tokens=2000, samples=1, sample_tokens=10, **train)
    params["train"]["model"].update(embed_dim=16, hidden=16)
    params["prepare"]["split"].update(valid=0.1, test=0.1)
    return params


def project(tmp_path: Path, **env) -> tuple[Path, callable]:
    d = tmp_path / "proj"
    d.mkdir()
    write_scenes(tmp_path / "toy.txt", WORDS, n_scenes=60, n_lines=12)
    return d, dvc_project(d, tiny_params(tmp_path / "toy.txt"), **env)


def runs_by_name(uri: str) -> dict[str, list]:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("toy")
    out: dict[str, list] = {}
    for r in client.search_runs([exp.experiment_id], max_results=1000):
        out.setdefault(r.info.run_name, []).append(r)
    return out


def assert_complete(uri: str, epochs: int = 2) -> dict:
    """Every grid member once, FINISHED, with its factors, epoch history and artifacts."""
    client = MlflowClient(uri)
    runs = runs_by_name(uri)
    assert set(runs) == RUNS and all(len(v) == 1 for v in runs.values()), {k: len(v) for k, v in runs.items()}
    train, ngram = runs[TRAIN][0], runs["toy-ngram-2"][0]
    assert train.info.status == ngram.info.status == "FINISHED"
    p = train.data.params
    assert (p["lm"], p["cell"], p["dropout"], p["clip"], p["train.model.hidden"]) == ("word", "lstm", "0.0", "5", "16")
    assert (ngram.data.params["lm"], ngram.data.params["order"]) == ("ngram", "2")
    history = client.get_metric_history(train.info.run_id, "valid_bits_per_char")
    assert sorted(m.step for m in history) == list(range(1, epochs + 1))
    assert train.data.metrics["test_bits_per_char"] > 0 and train.data.tags["status"] == "ok"
    assert {"params_hash", "git_commit", "dvc_stage"} <= set(train.data.tags)
    names = {a.path for a in client.list_artifacts(train.info.run_id)}
    assert {"model.pt", "samples.txt", "config.json", "tokenizer.json", "learning_curve.png"} <= names, names
    assert {"model.arpa.gz", "tokenizer.json"} <= {a.path for a in client.list_artifacts(ngram.info.run_id)}
    return runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    proc = subprocess.Popen([Path(sys.executable).parent / "mlflow", "server", "--host", "127.0.0.1", "--port",
                             str(port), "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                             "--artifacts-destination", str(tmp_path / "server-artifacts"), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.3)
    yield uri
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def test_every_grid_member_reaches_a_tracking_server(tmp_path, server):
    d, run = project(tmp_path, MLFLOW_TRACKING_URI=server)
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    assert_complete(server)
    assert not (d / "mlflow.db").exists()  # nothing went to a local store


def test_default_store_also_for_queued_experiments_and_run_cache_restores(tmp_path):
    d, run = project(tmp_path, MLFLOW_TRACKING_URI="")
    uri = f"sqlite:///{d / 'mlflow.db'}"
    assert run("dvc", "repro").returncode == 0
    first = assert_complete(uri)

    # a queued experiment runs in a copy under .dvc/tmp/exps that DVC deletes: its runs land here
    r = run("dvc", "exp", "run", "--queue", "-S", "train.optim.lr=1.0")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("dvc", "queue", "start")
    assert r.returncode == 0, r.stdout + r.stderr
    deadline = time.monotonic() + 300
    while len(runs_by_name(uri)[TRAIN]) < 2:
        assert time.monotonic() < deadline, run("dvc", "queue", "status").stdout
        time.sleep(2)
    while run("dvc", "queue", "status").stdout.count("Running"):
        assert time.monotonic() < deadline
        time.sleep(1)
    queued = [r for r in runs_by_name(uri)[TRAIN] if r.info.run_id != first[TRAIN][0].info.run_id]
    assert len(queued) == 1 and queued[0].data.params["train.optim.lr"] == "1.0"

    # `dvc exp run --temp -S`: a temporary copy, deleted when the experiment is done; its run stays
    r = run("dvc", "exp", "run", "--temp", "-S", "train.optim.lr=0.5")
    assert r.returncode == 0, r.stdout + r.stderr
    (temp,) = [x for x in runs_by_name(uri)[TRAIN] if x.data.params["train.optim.lr"] == "0.5"]
    assert temp.info.status == "FINISHED" and temp.data.metrics["test_bits_per_char"] > 0
    assert {"model.pt", "learning_curve.png"} <= {a.path for a in MlflowClient(uri).list_artifacts(temp.info.run_id)}
    assert not [p for p in (d / ".dvc/tmp/exps").rglob("params.yaml")]  # the copy is gone

    # change, then revert: DVC restores the first run from its run-cache; MLflow has no duplicate
    set_param(d / "params.yaml", "train.optim.lr", 1.0)
    assert run("dvc", "repro").returncode == 0
    set_param(d / "params.yaml", "train.optim.lr", 2.0)
    r = run("dvc", "repro")
    assert r.returncode == 0 and TRAIN not in ran(r.stdout), r.stdout
    hashes = [x.data.tags["params_hash"] for x in runs_by_name(uri)[TRAIN]]
    assert len(hashes) == len(set(hashes)) == 3  # lr 2.0, 1.0 and 0.5, once each


def test_a_run_dvc_restored_elsewhere_is_logged_once_by_the_report_stage(tmp_path):
    d, run = project(tmp_path, MLFLOW_TRACKING_URI="")
    assert run("dvc", "repro").returncode == 0
    (d / "mlflow.db").unlink()  # as on a machine that pulled the outputs from a remote
    r = run("dvc", "repro", "-s", "-f", "report")
    assert r.returncode == 0, r.stdout + r.stderr
    runs = runs_by_name(f"sqlite:///{d / 'mlflow.db'}")
    assert set(runs) == RUNS and all(len(v) == 1 for v in runs.values())
    assert runs[TRAIN][0].data.tags["synced_from"] == "dvc outputs"
    assert {r[0].data.tags["dvc_stage"] for r in runs.values()} == {
        f"train@{TRAIN}", "ngram@toy-ngram-2", "ngram_matched@toy-ngram-2"}  # as the stages that made them
    assert run("dvc", "repro", "-s", "-f", "report").returncode == 0  # idempotent
    assert all(len(v) == 1 for v in runs_by_name(f"sqlite:///{d / 'mlflow.db'}").values())

    # a store that does not answer: one line that names it, exit 2, the report left as it was
    set_param(d / "params.yaml", "tracking.timeout_s", 2.0)
    report = (d / "reports/README.md").read_bytes()
    r = subprocess.run([sys.executable, "-m", "stages", "report"], cwd=d, capture_output=True, text=True,
                       env={**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "error: tracking store http://127.0.0.1:" in r.stderr and "no answer" in r.stderr
    assert (d / "reports/README.md").read_bytes() == report


def test_check_params_opens_the_store_ahead_of_the_runs(tmp_path):
    """The first run of a repro finds mlflow imported and a new store made, not waits for them;
    with tracking off nothing is started."""
    d, run = project(tmp_path, MLFLOW_TRACKING_URI="")
    set_param(d / "params.yaml", "tracking.enabled", False)
    assert run("dvc", "repro", "check_params").returncode == 0
    time.sleep(3)
    assert not (d / "mlflow.db").exists()
    set_param(d / "params.yaml", "tracking.enabled", True)
    r = run("dvc", "repro", "check_params")
    assert r.returncode == 0 and ran(r.stdout) == {"check_params"}, r.stdout + r.stderr
    deadline = time.monotonic() + 60
    while True:  # no run yet: the agent made the store on its own (read here without making one)
        try:
            with contextlib.closing(sqlite3.connect(f"file:{d / 'mlflow.db'}?mode=ro", uri=True)) as db:
                names = [name for (name,) in db.execute("select name from experiments")]
            if names:  # made, with its default experiment
                break
        except sqlite3.Error:  # no file yet, or its tables not yet made
            pass
        assert time.monotonic() < deadline, "the agent made no store"
        time.sleep(0.5)
    assert names == ["Default"]


def test_the_report_stage_leaves_mlflow_to_the_agent():
    """Its sync goes through the tracking agent, which has mlflow imported (1.2 s) and the
    store's client open from the stages before it."""
    code = "import sys, stages.report; assert 'mlflow' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


def test_a_killed_and_resumed_run_is_one_finished_mlflow_run(tmp_path):
    d, run = project(tmp_path, MLFLOW_TRACKING_URI="")
    # ten times the toy corpus: an epoch long enough (a few tenths of a second) that the kill,
    # sent once a checkpoint inside epoch 2 exists, lands before that epoch's end
    write_scenes(tmp_path / "toy.txt", WORDS, n_scenes=600, n_lines=12)
    set_param(d / "params.yaml", "train.epochs", 6)
    set_param(d / "params.yaml", "train.max_train_tokens", None)
    set_param(d / "params.yaml", "train.checkpoint_minutes", 3e-4)
    assert run("dvc", "repro", "ngram@toy-ngram-2", "tokenize@toy-word").returncode == 0
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": ""}
    proc = subprocess.Popen(["dvc", "repro", f"train@{TRAIN}"], cwd=d, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not [p for p in d.glob(f"checkpoints/{TRAIN}/*/model/ckpt-1-*.pt") if p.name != "ckpt-1-0.pt"]:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    uri = f"sqlite:///{d / 'mlflow.db'}"
    deadline = time.monotonic() + 60
    while runs_by_name(uri)[TRAIN][0].info.status == "RUNNING":  # the agent saw its stage die
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert runs_by_name(uri)[TRAIN][0].info.status == "KILLED"
    assert run("dvc", "repro").returncode == 0
    assert_complete(uri, epochs=6)


def tracker_session(state_dir: Path, epochs) -> "Tracker":
    """A run's tracker as a stage opens it (resuming the run `state_dir` names), fed `epochs`."""
    from pipeline.config import TrackingConfig
    from pipeline.tracking import Tracker

    t = Tracker(TrackingConfig(), corpus="toy", run="r", stage="train@r", params_hash="h", params={"lm": "word"},
                tags={}, state_dir=state_dir)
    t.started()
    for epoch in epochs:
        t.on_sync({"step": 10 * epoch, "train_loss": 1.0 / epoch})
        t.on_epoch_end({"epoch": epoch, "train_loss": 1.0 / epoch, "valid_bits_per_char": 2.0 / epoch})
    return t


def the_run(uri: str):
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("toy").experiment_id])
    return client, run


RESULT = {"run": "r", "test": {"bits_per_char": 1.5}, "diverged": False}


def test_a_resumed_run_logs_no_step_twice(tmp_path, monkeypatch):
    """A kill can land after an epoch's metrics (and live points) reached the store but before
    its checkpoint: the resumed run trains that epoch again and sends the same steps again."""
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracker_session(tmp_path / "state", [1, 2]).close()  # killed after epoch 2 was logged, its last checkpoint at epoch 1
    tracker_session(tmp_path / "state", [2, 3]).finish(RESULT, [], None)
    client, run = the_run(uri)
    assert run.info.status == "FINISHED"
    for key, steps in (("valid_bits_per_char", [1, 2, 3]), ("train_loss", [1, 2, 3]), ("train_loss_live", [10, 20, 30])):
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, key)) == steps, key


def test_a_finished_run_run_again_is_left_as_it_is(tmp_path, monkeypatch):
    """`dvc repro -f`, or a member whose outputs were deleted, runs a finished run again: it
    resumes its last checkpoint and finds its MLflow run FINISHED. That run stays as it was (the
    agent used to end it KILLED when the stage exited)."""
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracker_session(tmp_path / "state", [1, 2]).finish(RESULT, [], None)
    _, before = the_run(uri)
    again = tracker_session(tmp_path / "state", [])
    assert again.finished_already and again.run_id == before.info.run_id
    again.finish(RESULT, [], None)
    _, after = the_run(uri)
    assert (after.info.status, after.info.end_time) == ("FINISHED", before.info.end_time)


def test_an_unreachable_server_stops_the_stage_before_training(tmp_path):
    d, run = project(tmp_path, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}")
    set_param(d / "params.yaml", "tracking.timeout_s", 2.0)
    r = run("dvc", "repro", f"train@{TRAIN}")
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "exited with 2" in out and "Traceback" not in out, out
    assert "error: tracking store http://127.0.0.1:" in out and "no answer" in out
    assert not list(d.glob(f"checkpoints/{TRAIN}/*/model/*.pt"))  # no training happened


def test_parallel_runs_on_a_fresh_sqlite_store_neither_race_nor_lock(tmp_path, monkeypatch):
    """Three runs start at once on a store that does not exist yet (MLflow's schema migration
    races when run in parallel) and log at once (sqlite's 'database is locked')."""
    from pipeline.config import TrackingConfig
    from pipeline.tracking import Tracker

    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    trackers = [Tracker(TrackingConfig(), corpus="toy", run=f"r{i}", stage=f"train@r{i}", params_hash=f"h{i}",
                        params={"lm": "word", "i": i}, tags={}) for i in range(3)]
    for t in trackers:
        t.started()
    for epoch in range(1, 41):
        for t in trackers:
            t.on_epoch_end({"epoch": epoch, "train_loss": 1.0 / epoch, "valid_bits_per_char": 2.0 / epoch})
            t.on_sync({"step": 10 * epoch, "train_loss": 1.0 / epoch})  # buffered by the agent, flushed at the end
    for t in trackers:
        t.finish({"run": "x", "test": {"bits_per_char": 1.5}, "diverged": False}, [], None)
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("toy").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["r0", "r1", "r2"]
    assert all(r.info.status == "FINISHED" and r.data.metrics["test_bits_per_char"] == 1.5 for r in runs)
    assert all(len(client.get_metric_history(r.info.run_id, "train_loss")) == 40 for r in runs)
    live = [client.get_metric_history(r.info.run_id, "train_loss_live") for r in runs]
    assert all(sorted(m.step for m in h) == list(range(10, 410, 10)) for h in live)
