"""DVC and MLflow agree: a grid member DVC restored from its run-cache or a remote, instead of
running it, is logged from its files. Idempotent: a member is in the store once per params hash.

Two halves, as for a run: the report stage gathers what each of its runs would log from the
run's files (`sync`, which never imports mlflow), and the tracking agent, which has mlflow
imported and the store's client open from the stages before, looks each run up and logs those
the store lacks (`log_missing`).
"""

from __future__ import annotations

from pathlib import Path

from pipeline import paths
from pipeline.config import TrackingConfig
from pipeline.io import read_csv, read_json
from pipeline.tracking.client import (
    AgentConnection,
    final_metrics,
    flatten,
    git_tags,
    outcome,
    project_root,
    resolve_store,
    store_error,
)

UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves a local store (README, "Tracking")


def sync(cfg: TrackingConfig, rows: list[dict]) -> dict[str, str]:
    """Log every run of `rows` (the report's rows: results with their cost) missing from the
    store; returns a link to each run's MLflow page by run name (on the tracking server, or
    where `mlflow ui` serves a local store). A store that does not answer is a UserError."""
    runs = _records(rows) if cfg.enabled else []
    if not runs:
        return {}
    where = resolve_store(cfg)
    conn = AgentConnection()
    conn.open()
    conn.send(op="sync", uri=where.uri, artifacts=where.artifacts, timeout_s=cfg.timeout_s,
              experiment=cfg.experiment, runs=runs)
    reply = conn.reply()
    conn.close()
    if not reply["ok"]:
        raise store_error(where.uri, reply["error"])
    ui = where.uri.rstrip("/") if where.uri.startswith(("http://", "https://")) else UI
    return {name: f"{ui}/#/experiments/{exp}/runs/{run_id}" for name, (exp, run_id) in reply["runs"].items()}


def _number(text: str | None) -> float | None:
    """A curve cell as a number; flags (True/False) and blanks are not metrics."""
    try:
        return float(text) if text not in ("True", "False") else None
    except (TypeError, ValueError):
        return None


def _records(rows: list[dict]) -> list[dict]:
    """What the store gets of each row's run if it lacks it, read from the run's files here (the
    agent may run in another folder, and a `dvc exp run --temp` copy is deleted afterwards)."""
    tags = git_tags(project_root())
    out = []
    for m in rows:
        if m.get("params_hash") is None:  # metrics of an older version of the pipeline
            continue
        rd = paths.RunDir(m["run"])
        # the DVC stage that made the run (results of older versions do not say: the grid's stages)
        stage = m.get("stage") or f"{'ngram' if m['lm'] == 'ngram' else 'train'}@{m['run']}"
        config = rd.file(paths.CONFIG)
        params = read_json(config) if config.is_file() else {k: m[k] for k in ("corpus", "lm") if k in m}
        # (epoch, metrics): the curve's numbers, then each epoch's clock from cost.json
        curve = read_csv(rd.curve) if rd.curve.is_file() else []
        cost = read_json(rd.file(paths.COST)) if rd.file(paths.COST).is_file() else {}
        steps = [(int(row["epoch"]), {k: x for k, v in row.items() if k != "epoch" and (x := _number(v)) is not None})
                 for row in curve]
        steps += [(int(row["epoch"]), {k: v for k, v in row.items() if k != "epoch"})
                  for row in cost.get("per_epoch", [])]
        files = [*(p for p in rd.root.glob("*") if p.is_file()),
                 paths.tokenizer_file(m["corpus"], m.get("unit") or m["lm"])]
        out.append({
            "run": m["run"], "corpus": m["corpus"], "params_hash": m["params_hash"],
            "params": flatten(params),
            "tags": {**tags, "dvc_stage": stage, "status": outcome(m), "synced_from": "dvc outputs"},
            "steps": steps,
            "metrics": final_metrics(m),  # the report's rows carry the run's cost too
            "files": [str(Path(f).resolve()) for f in files if Path(f).is_file()],
        })
    return out


def log_missing(client, msg: dict) -> dict[str, tuple[str, str]]:
    """The agent's half: each run of msg["runs"] (see `_records`) looked up by name and params
    hash, logged when the store lacks it; returns (experiment id, run id) by run name."""
    from pipeline.tracking import store

    found = {}
    for r in msg["runs"]:
        exp = store.experiment_id(client, msg["experiment"].replace("{corpus}", r["corpus"]), msg["artifacts"])
        run = store.find_run(client, exp, r["run"], r["params_hash"])
        found[r["run"]] = (exp, run.info.run_id if run is not None else _log(client, exp, r))
    return found


def _log(client, exp: str, r: dict) -> str:
    from pipeline.tracking import store

    tags = {**r["tags"], store.PARAMS_HASH: r["params_hash"]}
    run_id = client.create_run(exp, run_name=r["run"], tags=tags).info.run_id
    store.log_batch(client, run_id, params=r["params"])
    store.log_points(client, run_id, [(metrics, step, store.now_ms()) for step, metrics in r["steps"]])
    store.log_batch(client, run_id, metrics=r["metrics"])
    for f in r["files"]:
        client.log_artifact(run_id, f)
    client.set_terminated(run_id, "FINISHED")
    return run_id
