"""DVC and MLflow agree: a grid member DVC restored from its run-cache or a remote, instead of
running it, is logged from its files. Idempotent: a member is in the store once per params hash."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from pipeline import paths
from pipeline.config import TrackingConfig
from pipeline.tracking import store
from pipeline.tracking.client import final_metrics, flatten, git_tags, outcome, project_root, resolve_store


UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves a local store (README, "Tracking")


def sync(cfg: TrackingConfig, rows: list[dict]) -> dict[str, str]:
    """Log every run of `rows` (the report's rows: results with their cost) missing from the store; returns a link to each
    run's MLflow page by run id (on the tracking server, or where `mlflow ui` serves a local
    store)."""
    if not cfg.enabled or not rows:
        return {}
    where = resolve_store(cfg)
    client = store.connect(where.uri, cfg.timeout_s)
    ui = where.uri.rstrip("/") if where.uri.startswith(("http://", "https://")) else UI
    links = {}
    for m in rows:
        h = m.get("params_hash")
        if h is None:  # metrics of an older version of the pipeline
            continue
        exp = store.experiment_id(client, cfg.experiment.replace("{corpus}", m["corpus"]), where.artifacts)
        found = store.find_run(client, exp, m["run"], h)
        run_id = found.info.run_id if found is not None else _log(client, exp, m)
        links[m["run"]] = f"{ui}/#/experiments/{exp}/runs/{run_id}"
    return links


def _number(text: str | None) -> float | None:
    """A curve cell as a number; flags (True/False) and blanks are not metrics."""
    try:
        return float(text) if text not in ("True", "False") else None
    except (TypeError, ValueError):
        return None


def _log(client, exp: str, m: dict) -> str:
    rd = paths.RunDir(m["run"])
    # the DVC stage that made the run (results of older versions do not say: the grid's stages)
    stage = m.get("stage") or f"{'ngram' if m['lm'] == 'ngram' else 'train'}@{m['run']}"
    config = rd.file(paths.CONFIG)
    params = json.loads(config.read_text()) if config.is_file() else {k: m[k] for k in ("corpus", "lm") if k in m}
    tags = {**git_tags(project_root()), "dvc_stage": stage, store.PARAMS_HASH: m["params_hash"],
            "status": outcome(m), "synced_from": "dvc outputs"}
    run = client.create_run(exp, run_name=m["run"], tags=tags)
    run_id = run.info.run_id
    store.log_batch(client, run_id, params=flatten(params))
    if rd.curve.is_file():
        with open(rd.curve, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                store.log_batch(client, run_id, step=int(row["epoch"]),
                                metrics={k: x for k, v in row.items() if k != "epoch" and (x := _number(v)) is not None})
    cost = rd.file(paths.COST)
    for row in json.loads(cost.read_text()).get("per_epoch", []) if cost.is_file() else []:
        store.log_batch(client, run_id, step=int(row["epoch"]), metrics={k: v for k, v in row.items() if k != "epoch"})
    store.log_batch(client, run_id, metrics=final_metrics(m))  # the report's rows carry the run's cost too
    for f in [*(p for p in rd.root.glob("*") if p.is_file()),
              paths.tokenizer_file(m["corpus"], m.get("unit") or m["lm"])]:
        if Path(f).is_file():
            client.log_artifact(run_id, str(Path(f).resolve()))
    client.set_terminated(run_id, "FINISHED")
    return run_id
