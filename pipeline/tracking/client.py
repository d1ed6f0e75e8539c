"""The stage side of tracking: where the store is, and the Tracker that talks to the agent."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline import sidecar
from pipeline.config import TrackingConfig
from pipeline.errors import UserError
from pipeline.imports import ROOT as CODE_ROOT
from pipeline.io import write_text
from pipeline.tracking import agent

RUN_ID_FILE = "mlflow_run_id"  # beside a run's checkpoints: a resumed run continues its MLflow run


def project_root(cwd: Path | None = None) -> Path:
    """The project folder, absolute. `dvc exp run --temp` and queued experiments run in copies
    under <project>/.dvc/tmp/exps/, which DVC deletes: their store is the project's."""
    cwd = (cwd or Path.cwd()).resolve()
    parts = cwd.parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return cwd


@dataclass(frozen=True)
class Store:
    uri: str
    artifacts: str | None  # artifact location of new experiments (file URI), None: the server's


def resolve_store(cfg: TrackingConfig) -> Store:
    """MLFLOW_TRACKING_URI, else tracking.uri, else the project's sqlite file; never relative."""
    root = project_root()
    uri = os.environ.get("MLFLOW_TRACKING_URI") or cfg.uri or f"sqlite:///{root / 'mlflow.db'}"
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_absolute():
        uri = f"sqlite:///{root / uri.removeprefix('sqlite:///')}"
    if uri.startswith(("http://", "https://", "databricks")):
        return Store(uri, None)
    artifacts = Path(cfg.artifacts).expanduser() if cfg.artifacts else root / "mlartifacts"
    return Store(uri, (artifacts if artifacts.is_absolute() else root / artifacts).as_uri())


def git_tags(root: Path) -> dict[str, str]:
    def git(*args: str) -> str:
        r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    return {"git_commit": commit or "unknown",
            "git_dirty": str(bool(git("status", "--porcelain", "--untracked-files=no"))).lower()}


def flatten(d: dict, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1}: MLflow params and metrics are flat."""
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class AgentConnection:
    """A connection to this environment's agent (started when none listens), JSON lines both
    ways: what a Tracker and the report's sync send it (the protocol: agent.py)."""

    sock: socket.socket | None = None

    def open(self) -> None:
        self.sock, self.agent_error = _open_agent()
        if self.sock is not None:
            self.rfile = self.sock.makefile("r", encoding="utf-8")
            self.wfile = self.sock.makefile("w", encoding="utf-8", newline="\n")

    def send(self, **msg) -> None:
        if self.sock is None:
            return
        try:
            self.wfile.write(json.dumps(msg, default=str) + "\n")
            self.wfile.flush()
        except OSError:
            pass  # the agent died; the next reply reports it

    def reply(self) -> dict:
        """The agent's next reply; its warnings (a metric it could not log) are printed on the way."""
        if self.sock is None:
            return {"ok": False, "error": self.agent_error}
        try:
            for line in self.rfile:
                msg = json.loads(line)
                if "warning" not in msg:
                    return msg
                print(f"warning: {msg['warning']}", file=sys.stderr)
        except OSError as e:
            return {"ok": False, "error": f"the tracking agent did not answer ({e})"}
        return {"ok": False, "error": f"the tracking agent exited (its log: {agent.socket_path().with_suffix('.log')})"}

    def close(self, wait: bool = True) -> None:
        """End the connection; the agent closes its side once it is done with what it was sent
        (a run not finished: ended KILLED), waited for here unless `wait` is False, so the store
        is settled on return."""
        if self.sock is not None:
            try:
                self.wfile.close()
                self.sock.shutdown(socket.SHUT_WR)
                self.sock.settimeout(CLOSE_TIMEOUT_S)
                while wait and self.reply().get("ok", True):  # until end of input: warnings printed meanwhile
                    pass
            except OSError:
                pass
            self.rfile.close()  # the socket stays open while a file made from it is
            self.sock.close()
            self.sock = None


def warm(cfg: TrackingConfig) -> None:
    """Start the agent if none listens and have it open the store, without waiting for it: the
    runs that follow find mlflow imported and the store open (a new sqlite store's tables
    made), seconds they would otherwise wait for. A store that does not answer is left for
    them to report."""
    if not cfg.enabled:
        return
    conn = AgentConnection()
    conn.open()
    conn.send(op="warm", uri=resolve_store(cfg).uri, timeout_s=cfg.timeout_s)
    conn.close(wait=False)  # the agent goes on alone


def store_error(uri: str, error: str) -> UserError:
    return UserError(f"tracking store {uri}: {error} (set tracking.enabled: false, "
                     "or tracking.uri / MLFLOW_TRACKING_URI to a store that answers)")


class Tracker(AgentConnection):
    """One run's MLflow side. Start it early (a new agent imports mlflow meanwhile), call
    `started()` before training (a bad store is a UserError there), pass it to the trainer as
    a callback, and hand it to the RunResult: `artifacts.write_run` calls `finish`.
    `reopen`: a resumed run that had FINISHED runs again and is finished anew (a study's run,
    continued by a later stage run); by default a finished run is left as it is."""

    def __init__(self, cfg: TrackingConfig, *, corpus: str, run: str, stage: str, params_hash: str,
                 params: dict, tags: dict[str, str], state_dir: Path | None = None, stale_dirs=(),
                 reopen: bool = False):
        self.enabled, self.state_dir, self.run_name = cfg.enabled, state_dir, run
        self.finished_already = False
        if not self.enabled:
            return
        store = resolve_store(cfg)
        self.uri = store.uri
        resume = _read_id(state_dir) if state_dir else None
        stale = [i for d in stale_dirs if (i := _read_id(d))]
        self.open()
        self.send(op="start", uri=store.uri, artifacts=store.artifacts, timeout_s=cfg.timeout_s,
                  experiment=cfg.experiment.replace("{corpus}", corpus), run_name=run, resume=resume, stale=stale,
                  reopen=reopen,
                  params={k: v for k, v in flatten(params).items()},
                  tags={**git_tags(project_root()), "dvc_stage": stage, "params_hash": params_hash, **tags})
        self.run_id: str | None = None

    def started(self) -> None:
        """Wait for the agent to have opened the run; a store it cannot reach is a UserError."""
        if not self.enabled or self.run_id:
            return
        reply = self.reply()
        if not reply["ok"]:
            self.close()
            raise store_error(self.uri, reply["error"])
        self.run_id, self.finished_already = reply["run_id"], reply.get("finished", False)
        if self.state_dir is not None:
            write_text(self.state_dir / RUN_ID_FILE, self.run_id + "\n")

    # trainer callbacks ---------------------------------------------------------------------
    def on_epoch_end(self, record: dict) -> None:
        if self.enabled and not self.finished_already:
            metrics = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "epoch"}
            self.send(op="metrics", metrics=metrics, step=record["epoch"])

    def on_sync(self, point: dict) -> None:
        if self.enabled and not self.finished_already:
            self.send(op="live", metrics={"train_loss_live": point["train_loss"]}, step=point["step"])

    def on_valid(self, point: dict) -> None:
        """An intermediate valid score (train(report_every=...)): valid_bits_per_char_live at its step."""
        if self.enabled and not self.finished_already and "valid_bits_per_char" in point:
            self.send(op="live", metrics={"valid_bits_per_char_live": point["valid_bits_per_char"]},
                      step=point["step"])

    def log_run(self, run_id: str, *, metrics: dict | None = None, step: int = 0, params: dict | None = None,
                tags: dict | None = None) -> None:
        """Log to another run of the same store through this run's agent (no reply; an error is
        printed by the agent): how a study's run tags and annotates its trials' runs."""
        if self.enabled and run_id:
            self.send(op="log", run_id=run_id, metrics=metrics or {}, step=step, params=params or {},
                      tags=tags or {})

    # the end ---------------------------------------------------------------------------------
    def finish(self, metrics: dict, files: list[Path], curve: Path | None) -> None:
        """The run's metrics (as metrics/<run>.json holds them), artifacts (the files that exist)
        and the learning curve drawn from the curve file; the run ends FINISHED, tagged with the
        run's outcome (ok/diverged/stopped)."""
        if not self.enabled:
            return
        if not self.finished_already:
            self.send(op="end", status="FINISHED", metrics=final_metrics(metrics), tags={"status": outcome(metrics)},
                      files=[str(Path(f).resolve()) for f in files if Path(f).is_file()],
                      curve=str(Path(curve).resolve()) if curve and Path(curve).is_file() else None,
                      run_name=self.run_name)
            reply = self.reply()
            if not reply["ok"]:
                print(f"warning: tracking store {self.uri}: {reply['error']}", file=sys.stderr)
        self.close()


CLOSE_TIMEOUT_S = 60.0  # how long a stage waits at exit for the agent to settle its run


def _open_agent() -> tuple[socket.socket | None, str | None]:
    """A connection to this environment's agent, started when none listens. Detached, it
    outlives a killed stage: it is what ends that stage's run KILLED."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CODE_ROOT), os.environ.get("PYTHONPATH", "")])}
    return sidecar.connect_or_spawn(agent.socket_path(), agent.__name__, "the tracking agent",
                                    env=env, cwd=project_root())


def outcome(metrics: dict) -> str:
    return "diverged" if metrics.get("diverged") else "stopped" if metrics.get("stopped_early") else "ok"


def final_metrics(metrics: dict) -> dict[str, float]:
    """A run's scalar results as MLflow metrics: test_<name> and best_valid_<name> (the
    evaluator's names; valid_<name> is the per-epoch history) and the run's own numbers."""
    def scalars(d: dict | None) -> dict:
        return {k: v for k, v in (d or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    out = scalars(metrics)
    for split, prefix in (("valid", "best_valid_"), ("test", "test_")):
        out.update({prefix + k: v for k, v in scalars(metrics.get(split)).items()})
    return out


def _read_id(state_dir: Path) -> str | None:
    f = Path(state_dir) / RUN_ID_FILE
    return f.read_text().strip() or None if f.is_file() else None
