"""MLflow tracking: every train and n-gram run is an MLflow run; `mlflow ui` browses them.

Two halves, so that a stage never waits for MLflow's import (seconds of CPU: more than a
CPU-profile run's training) nor breaks when the store misbehaves mid-run:
- `client.Tracker` (this process): started when a run starts, fed by the trainer's callbacks,
  finished by `artifacts.write_run` once the run's files are written. It never imports mlflow.
- `agent` (one side process shared by the stages of a repro, started by the first Tracker that
  finds none listening, gone after a minute without stages): holds mlflow imported, opens or
  resumes each run, logs what it is sent. Each run is one connection on a Unix socket; if its
  stage dies, even by SIGKILL, the connection closes and the agent ends the run as KILLED: no
  run stays RUNNING.
The report stage's `sync` (of the runs DVC restored from its cache instead of running them) is
a connection to the same agent. `store` holds everything that speaks to MLflow, for the agent
alone; `pipeline/tracking/` is the only package that imports mlflow.
"""

from pipeline.tracking.client import Tracker, resolve_store, warm

__all__ = ["Tracker", "resolve_store", "warm"]
