"""Every test that trains or estimates a model logs it to one real MLflow store of the session
(a sqlite file in a temp folder), as the pipeline does by default; tests of tracking itself
start their own stores and servers."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def session_tracking_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}"
    yield store
