"""The tracking side process of one run (see pipeline/tracking/__init__.py).

    python -m pipeline.tracking.agent      # started by Tracker; JSON lines on stdin and stdout

Messages in, one JSON object per line:
    {"op": "start", "uri", "artifacts", "timeout_s", "experiment", "run_name", "resume", "stale",
     "params", "tags"}                       -> replies {"ok", "run_id", "finished"} or {"ok": false, "error"}
    {"op": "metrics", "metrics", "step"}    -> no reply (an error is printed to stderr)
    {"op": "log", "run_id", "metrics", "step", "params", "tags"} -> the same, to another run of the
                                             store (a study's run annotating its trials' runs)
    {"op": "end", "status", "metrics", "tags", "files"} -> replies {"ok"} or {"ok": false, "error"}
End of input before "end" (the stage exited or was killed) ends the run KILLED.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path


# Replies go to the stage on the original stdout; anything else that writes to stdout (MLflow
# prints a link when a run ends, for one) goes to stderr instead, so it cannot garble a reply.
_REPLIES = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr


def reply(**msg) -> None:
    _REPLIES.write(json.dumps(msg) + "\n")


def start(msg: dict):
    from pipeline.tracking import store  # mlflow: imported here, while the stage loads its data

    client = store.connect(msg["uri"], msg["timeout_s"])
    exp = store.experiment_id(client, msg["experiment"], msg["artifacts"])
    for stale in msg["stale"]:  # runs of this member under other params, cut short
        try:
            if client.get_run(stale).info.status == "RUNNING":
                client.set_terminated(stale, "KILLED")
        except Exception:  # deleted meanwhile
            pass
    run, finished = None, False
    if msg["resume"]:
        try:
            run = client.get_run(msg["resume"])
        except Exception:
            run = None  # the store was reset: a new run
    if run is not None and run.info.lifecycle_stage == "active":
        finished = run.info.status == "FINISHED" and not msg.get("reopen")
        if not finished:
            client.update_run(run.info.run_id, status="RUNNING")
    else:
        run = client.create_run(exp, run_name=msg["run_name"], tags=msg["tags"])
        store.log_batch(client, run.info.run_id, params=msg["params"])
    return client, run.info.run_id, finished


def end(client, run_id: str, msg: dict) -> None:
    from pipeline.tracking import store

    store.log_batch(client, run_id, metrics=msg["metrics"], tags=msg["tags"])
    with tempfile.TemporaryDirectory() as tmp:
        for f in map(Path, msg["files"]):
            client.log_artifact(run_id, str(f))
        if msg.get("curve"):
            png = Path(tmp) / "learning_curve.png"
            store.curve_png(Path(msg["curve"]), png, msg["run_name"])
            client.log_artifact(run_id, str(png))
    client.set_terminated(run_id, msg["status"])


def main() -> None:
    client = run_id = None
    done = False
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["op"] == "start":
                client, run_id, finished = start(msg)
                reply(ok=True, run_id=run_id, finished=finished)
            elif msg["op"] == "metrics" and client is not None:
                from pipeline.tracking import store

                store.log_batch(client, run_id, metrics=msg["metrics"], step=msg["step"])
            elif msg["op"] == "log" and client is not None:
                from pipeline.tracking import store

                store.log_batch(client, msg["run_id"], metrics=msg["metrics"], step=msg["step"],
                                params=msg["params"], tags=msg["tags"])
            elif msg["op"] == "end" and client is not None:
                end(client, run_id, msg)
                done = True
                reply(ok=True)
        except Exception as e:  # the stage decides what an error means; the agent keeps going
            error = f"{type(e).__name__}: {e}".splitlines()[0]
            if msg["op"] in ("metrics", "log"):
                print(f"tracking: {error}", file=sys.stderr)
            else:
                reply(ok=False, error=error)
    if client is not None and not done:
        try:
            client.set_terminated(run_id, "KILLED")  # the stage stopped before the run ended
        except Exception as e:
            print(f"tracking: run {run_id} not ended: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
