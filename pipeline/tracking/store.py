"""Everything that speaks to MLflow: the store, experiments, runs. Imported by the tracking
agent alone (a side process: see agent.py), never by a stage."""

from __future__ import annotations

import fcntl
import math
import os
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from pipeline.io import read_csv

PARAMS_HASH = "params_hash"  # tag: with the run name, what makes a grid member's run unique


def connect(uri: str, timeout_s: float) -> MlflowClient:
    """A client on `uri` that has answered; raises RuntimeError with the reason if not. A fresh
    sqlite file is created under a lock: parallel first use of one migrates it only once."""
    if uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(math.ceil(timeout_s))))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        try:  # fail fast, not after MLflow's minutes of retries
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s).read()
        except OSError as e:
            raise RuntimeError(f"no answer ({getattr(e, 'reason', None) or e})") from None
    with _creation_lock(uri):
        client = MlflowClient(uri)
        client.search_experiments(max_results=1)  # creates and migrates a new database store
    return client


def sqlite_file(uri: str) -> Path | None:
    """The database file of a sqlite store; None for other stores."""
    return Path(uri.removeprefix("sqlite:///").split("?")[0]) if uri.startswith("sqlite:///") else None


def file_identity(uri: str) -> tuple[int, int] | None:
    """(device, inode) of a sqlite store's file, None if it has none (yet): a client made
    before the file was deleted or replaced (a store reset by hand) writes on to the old one."""
    db = sqlite_file(uri)
    try:
        st = db.stat() if db is not None else None
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if st is not None else None


def forget(uri: str) -> None:
    """Drop the store and database engine MLflow keeps per URI for the life of the process (their
    connections still open a deleted sqlite file), so that the next client opens the file there
    now, or creates it. MLflow's own caches: checked by tests/test_tracking.py."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    engine = SqlAlchemyStore._engine_map.pop(uri, None)
    if engine is not None:
        engine.dispose()
    _tracking_store_registry._get_store_with_resolved_uri.cache_clear()


@contextmanager
def _creation_lock(uri: str):
    db = sqlite_file(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # blocking: the first process creates, the others wait
        yield


def experiment_id(client: MlflowClient, name: str, artifacts: str | None) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifacts and f"{artifacts}/{name}")
    except Exception:  # created meanwhile by a parallel run
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def find_run(client: MlflowClient, exp_id: str, run_name: str, params_hash: str):
    """The run of this grid member under these params, or None."""
    runs = client.search_runs([exp_id], filter_string=f"tags.mlflow.runName = '{run_name}' and "
                              f"tags.{PARAMS_HASH} = '{params_hash}'", max_results=1)
    return runs[0] if runs else None


def log_batch(client: MlflowClient, run_id: str, metrics: dict[str, float] | None = None, step: int = 0,
              params: dict | None = None, tags: dict | None = None, timestamp_ms: int | None = None) -> None:
    """Finite metrics only (MLflow rejects NaN in some stores); params as strings, 6000 chars max."""
    log_points(client, run_id, [(metrics or {}, step, timestamp_ms or now_ms())])
    ps = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
    ts = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
    for i in range(0, max(len(ps), len(ts)), 100):  # MLflow's limit per batch: 100 params or tags
        client.log_batch(run_id, params=ps[i : i + 100], tags=ts[i : i + 100])


def log_points(client: MlflowClient, run_id: str, points: list[tuple[dict, int, int]]) -> None:
    """Metrics given as (metrics, step, timestamp_ms) points, in as few store writes as MLflow's
    limit of 1000 metrics per batch allows."""
    ms = [Metric(k, float(v), ts, step) for metrics, step, ts in points for k, v in metrics.items()
          if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    for i in range(0, len(ms), 1000):
        client.log_batch(run_id, metrics=ms[i : i + 1000])


def now_ms() -> int:
    return int(time.time() * 1000)


def import_pyplot():
    """matplotlib's pyplot, drawing to files only (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curve_png(curve_csv: Path, png: Path, title: str) -> None:
    """The learning curve of one run (train loss and valid bits/char per epoch) as a PNG."""
    plt = import_pyplot()
    rows = read_csv(curve_csv)
    epochs = [int(r["epoch"]) for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(epochs, [float(r["train_loss"]) / math.log(2) for r in rows], marker="o", label="train (bits/token)")
    ax.plot(epochs, [float(r["valid_bits_per_char"]) for r in rows], marker="s", label="valid (bits/char)")
    ax.set_xlabel("epoch")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
