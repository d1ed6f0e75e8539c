"""The tracking agent: one long-lived side process that holds mlflow imported and logs the runs
of every stage that connects to it (see pipeline/tracking/__init__.py).

    python -m pipeline.tracking.agent SOCKET   # started by the first Tracker that finds none

It listens on a Unix socket (`socket_path()`: one per interpreter, checkout and MLflow
environment), so a `dvc repro` of 50 stages imports mlflow once, not 50 times, and exits when
no stage has been connected for IDLE_S seconds. Each connection is one run, JSON lines both ways:
    {"op": "start", "uri", "artifacts", "timeout_s", "experiment", "run_name", "resume", "stale",
     "params", "tags", "reopen"}        -> replies {"ok", "run_id", "finished"} or {"ok": false, "error"}
    {"op": "metrics", "metrics", "step"}    -> no reply
    {"op": "live", "metrics", "step"}       -> no reply; written in batches, every FLUSH_S and at the end
    {"op": "log", "run_id", "metrics", "step", "params", "tags"} -> the same, to another run of the
                                             store (a study's run annotating its trials' runs)
    {"op": "end", "status", "metrics", "tags", "files", "curve", "run_name"} -> replies {"ok"} or
                                             {"ok": false, "error"}
or one message and no reply: {"op": "warm", "uri", "timeout_s"} opens the store ahead of the
runs (check_params sends it); or the report stage's sync (pipeline/tracking/sync.py) of the runs DVC
restored rather than ran:
    {"op": "sync", "uri", "artifacts", "timeout_s", "experiment", "runs"}
                                          -> replies {"ok", "runs": {name: [experiment id, run id]}}
An error of a message that gets no reply comes back as {"warning": "..."}, which the stage prints.
End of input before "end" (the stage exited or was killed, even by SIGKILL: the kernel closes
its socket) ends the run KILLED; the agent closes the connection once that is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from pipeline import sidecar

IDLE_S = 60.0  # no stage connected for this long: the agent exits (a repro's stages follow closely)
FLUSH_S = 10.0  # a run's live metrics (a point a second) are written to the store at most this often
_HERE = Path(__file__).resolve().parent


def socket_path() -> Path:
    """Where the agent of this interpreter, this checkout's tracking code and this MLflow
    environment listens: stages that share all three share an agent; a changed module that the
    agent runs, or another venv, gets an agent of its own."""
    return sidecar.socket_path("agent", [
        sys.executable, str(_HERE), *sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("MLFLOW_")),
        *((_HERE / name).read_bytes() for name in ("agent.py", "store.py", "sync.py"))])


class _Conn:
    """One stage's connection: one run."""

    def __init__(self, conn: socket.socket, agent: "Agent"):
        self.sock, self.agent = conn, agent
        self.out = conn.makefile("w", encoding="utf-8", newline="\n")
        self.client = self.run_id = None
        self.done = False
        # A resumed run re-trains from its last checkpoint, so it sends again the epochs and points
        # logged after that checkpoint, before the kill (exact resume: the same values). The steps
        # each key already holds are read once per key and not logged twice; None: a new run.
        self.logged: dict[str, set[int]] | None = None
        # Live metrics wait here, written in one batch per FLUSH_S: one store transaction per point
        # (a second of training each) cost the training beside it a few % of its 2 cores.
        self.pending: list[tuple[dict, int, int]] = []
        self.flushed = time.monotonic()

    def send(self, **msg) -> None:
        try:
            self.out.write(json.dumps(msg) + "\n")
            self.out.flush()
        except OSError:  # the stage is gone; end of input follows
            pass

    def serve(self) -> None:
        try:
            with self.sock.makefile("r", encoding="utf-8") as lines:
                for line in lines:
                    self.handle(json.loads(line))
            if self.client is not None and not self.done:
                try:
                    self.flush()
                    self.client.set_terminated(self.run_id, "KILLED")  # the stage stopped before the run ended
                except Exception as e:
                    print(f"tracking: run {self.run_id} not ended: {e}", file=sys.stderr)
        finally:  # only now: a stage that waits for the close knows the run is ended
            with contextlib.suppress(OSError):  # the socket stays open while a file made from it is
                self.out.close()
            self.sock.close()
            self.agent.left()

    def handle(self, msg: dict) -> None:
        from pipeline.tracking import store

        try:
            if msg["op"] == "start":
                self.client, self.run_id, finished = self.agent.start(msg)
                self.logged = {} if self.run_id == msg["resume"] else None
                self.done = finished  # left as it is: the stage's exit must not end it KILLED
                self.send(ok=True, run_id=self.run_id, finished=finished)
            elif msg["op"] == "metrics" and self.client is not None:
                if metrics := self.unlogged(msg["metrics"], msg["step"]):
                    store.log_batch(self.client, self.run_id, metrics=metrics, step=msg["step"])
            elif msg["op"] == "live" and self.client is not None:
                self.pending.append((msg["metrics"], msg["step"], store.now_ms()))
                if time.monotonic() - self.flushed >= FLUSH_S:
                    self.flush()
            elif msg["op"] == "log" and self.client is not None:
                store.log_batch(self.client, msg["run_id"], metrics=msg["metrics"], step=msg["step"],
                                params=msg["params"], tags=msg["tags"])
            elif msg["op"] == "warm":
                self.agent.connect(msg["uri"], msg["timeout_s"])
            elif msg["op"] == "sync":
                self.send(ok=True, runs=self.agent.sync(msg))
            elif msg["op"] == "end" and self.client is not None:
                self.flush()
                self.agent.end(self.client, self.run_id, msg)
                self.done = True
                self.send(ok=True)
        except Exception as e:  # the stage decides what an error means; the agent keeps going
            error = f"{type(e).__name__}: {e}".splitlines()[0]
            if msg["op"] in ("metrics", "live", "log", "warm"):
                self.send(warning=f"tracking: {error}")
            else:
                self.send(ok=False, error=error)

    def unlogged(self, metrics: dict, step: int) -> dict:
        """`metrics` less the keys the run already holds at `step` (see self.logged)."""
        if self.logged is None:
            return metrics
        for key in metrics.keys() - self.logged.keys():
            self.logged[key] = {m.step for m in self.client.get_metric_history(self.run_id, key)}
        return {k: v for k, v in metrics.items() if step not in self.logged[k]}

    def flush(self) -> None:
        from pipeline.tracking import store

        points, self.pending, self.flushed = self.pending, [], time.monotonic()
        points = [(metrics, step, ms) for m, step, ms in points if (metrics := self.unlogged(m, step))]
        if points:
            store.log_points(self.client, self.run_id, points)


class Agent:
    def __init__(self):
        self.lock = threading.Lock()
        self.active, self.runs, self.last_left = 0, 0, time.monotonic()
        self.clients: dict[str, tuple] = {}  # (MlflowClient, store.file_identity) per store URI
        self.plot_lock = threading.Lock()  # matplotlib's state is not thread-safe

    def connect(self, uri: str, timeout_s: float):
        """The store's client, made once per URI (and sqlite file: see store.file_identity);
        every run's start asks the store again, so one that stopped answering is an error
        before that run trains."""
        from pipeline.tracking import store

        ident = store.file_identity(uri)
        with self.lock:
            client, made_on = self.clients.get(uri, (None, None))
        if client is not None and ident is not None and ident == made_on:
            client.search_experiments(max_results=1)
        else:
            if client is not None and ident != made_on:  # a sqlite file deleted or replaced (a reset store)
                store.forget(uri)
            client = store.connect(uri, timeout_s)  # HTTP: a health check first
            ident = store.file_identity(uri)  # sqlite: the file exists now
        with self.lock:
            self.clients[uri] = (client, ident)
        return client

    def start(self, msg: dict):
        from pipeline.tracking import store

        client = self.connect(msg["uri"], msg["timeout_s"])
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

    def end(self, client, run_id: str, msg: dict) -> None:
        from pipeline.tracking import store

        store.log_batch(client, run_id, metrics=msg["metrics"], tags=msg["tags"])
        with tempfile.TemporaryDirectory() as tmp:
            for f in map(Path, msg["files"]):
                client.log_artifact(run_id, str(f))
            if msg.get("curve"):
                png = Path(tmp) / "learning_curve.png"
                with self.plot_lock:
                    store.curve_png(Path(msg["curve"]), png, msg["run_name"])
                client.log_artifact(run_id, str(png))
        client.set_terminated(run_id, msg["status"])

    def sync(self, msg: dict) -> dict:
        from pipeline.tracking import sync

        return sync.log_missing(self.connect(msg["uri"], msg["timeout_s"]), msg)

    def joined(self) -> None:
        with self.lock:
            self.active += 1
            self.runs += 1

    def left(self) -> None:
        with self.lock:
            self.active -= 1
            self.last_left = time.monotonic()

    def idle(self) -> bool:
        with self.lock:
            return self.active == 0 and time.monotonic() - self.last_left > IDLE_S

    def serve(self, sock_path: Path) -> None:
        listener = sidecar.listen(sock_path)
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ)
        threading.Thread(target=self._import, daemon=True).start()
        while True:
            if sel.select(timeout=1.0):
                self._accept(listener)
            elif self.idle() and sidecar.leave_if_unwanted(sock_path, listener, sel):
                usage = resource.getrusage(resource.RUSAGE_SELF)
                print(f"agent {os.getpid()} exits: {self.runs} runs, "
                      f"{usage.ru_utime + usage.ru_stime:.2f} s CPU", file=sys.stderr)
                return

    def _accept(self, listener: socket.socket) -> None:
        conn, _ = listener.accept()
        self.joined()
        threading.Thread(target=_Conn(conn, self).serve, daemon=True).start()

    @staticmethod
    def _import() -> None:
        from pipeline.tracking import store  # mlflow: imported while the first stage loads its data

        store.import_pyplot()  # and matplotlib, for the first learning curve (0.35 s)


def main() -> None:
    # Its output goes to the log beside the socket: MLflow prints to stdout (a link when a run
    # ends), which must not reach anyone's terminal.
    Agent().serve(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
