"""MLflow tracking: every train and n-gram run is an MLflow run; `mlflow ui` browses them.

Two halves, so that a stage never waits for MLflow's import (seconds of CPU: more than a
CPU-profile run's training) nor breaks when the store misbehaves mid-run:
- `client.Tracker` (this process): started when a run starts, fed by the trainer's callbacks,
  finished by `artifacts.write_run` once the run's files are written. It never imports mlflow.
- `agent` (a side process the Tracker starts, one per run): imports mlflow while the stage
  loads its data, opens or resumes the run, logs what it is sent. If its stage dies, even by
  SIGKILL, its stdin closes and it ends the run as KILLED: no run stays RUNNING.
`store` holds everything that speaks to MLflow (the agent's and the report's sync of runs DVC
restored from its cache); `pipeline/tracking/` is the only package that imports mlflow.
"""

from pipeline.tracking.client import Tracker, resolve_store

__all__ = ["Tracker", "resolve_store"]
