"""Every test that trains or estimates a model logs it to one real MLflow store of the session
(a sqlite file in a temp folder), as the pipeline does by default; tests of tracking itself
start their own stores and servers."""

import os

import pytest

# Tests talk to loopback only: MLflow 3 sends usage telemetry from a background thread, and every
# process a test starts (stages, the tracking agent, mlflow server) inherits this.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(autouse=True, scope="session")
def session_tracking_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}"
    yield store
