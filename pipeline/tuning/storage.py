"""Where studies live: an Optuna RDB storage at any SQLAlchemy URL.

- Default: `sqlite:///<project root>/studies.optuna.db` (git-ignored), absolute, so that
  `dvc exp run --temp` and queued experiments, which run in copies DVC deletes, share the
  project's studies. `TUNE_STORAGE` wins over params.yaml `tune.storage`; a relative sqlite
  path is taken from the project root.
- SQLite with several local workers: every connection waits up to 60 s for a lock
  (`connect_args={"timeout": 60}`) instead of failing with "database is locked", the file is
  in WAL mode (readers never block the writer), and the first contact of each process (table
  creation, schema check) happens under a file lock, one process at a time.
- PostgreSQL (`postgresql+psycopg://user@host/db`) for workers on several machines: connections
  are checked before use (`pool_pre_ping`) and give up after 10 s when the server is unreachable.

A URL that is malformed, names a driver that is not installed, or a server that does not
answer is one UserError naming the URL (password hidden).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import warnings
from pathlib import Path
from typing import Iterator

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from pipeline.config import HeartbeatConfig
from pipeline.errors import UserError
from pipeline.tracking.client import project_root

DEFAULT_FILE = "studies.optuna.db"  # at the project root; .gitignore has *.optuna.db
ENV = "TUNE_STORAGE"
SQLITE_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 10


def resolve(url: str | None) -> str:
    """TUNE_STORAGE, else `url` (params.yaml tune.storage), else the project's sqlite file."""
    url = os.environ.get(ENV) or url or f"sqlite:///{project_root() / DEFAULT_FILE}"
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///")).expanduser()
        url = f"sqlite:///{path if path.is_absolute() else project_root() / path}"
    return url


def storage_source() -> str:
    """Where the storage URL came from, as errors name it."""
    return ENV if os.environ.get(ENV) else "tune.storage"


def shown(url: str) -> str:
    """The URL as messages and MLflow tags show it: without its password."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1] if "@" in url else url


def engine_kwargs(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    kwargs: dict = {"pool_pre_ping": True}
    if url.startswith(("postgresql", "mysql")):
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    return kwargs


def open_storage(url: str, heartbeat: HeartbeatConfig, what: str = "tune.storage") -> RDBStorage:
    """An RDBStorage at `url` with heartbeats: a trial whose worker stops beating for
    `heartbeat.grace_s` becomes FAIL, and RetryHeartbeatStaleTrialCallback queues it again
    (same params; the retry resumes the killed trial's checkpoints)."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except Exception as e:
        raise UserError(f"{what}: {url!r} is not an SQLAlchemy URL ({e}); e.g. sqlite:////abs/path.db or "
                        "postgresql+psycopg://user@host:5432/db") from None
    with _first_contact(parsed):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=engine_kwargs(url), heartbeat_interval=heartbeat.interval_s,
                                  grace_period=heartbeat.grace_s,
                                  heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                                      max_retry=heartbeat.max_retry))
        except ImportError as e:
            cause = e.__cause__ or e
            raise UserError(f"{what}: {shown(url)}: its database driver is not installed ({cause}); for "
                            "postgresql+psycopg:// install psycopg (requirements.lock)") from None
        except (sqlalchemy.exc.SQLAlchemyError, RuntimeError, ValueError) as e:
            reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
            raise UserError(f"{what}: cannot open {shown(url)}: {reason}") from None


@contextlib.contextmanager
def _first_contact(url) -> Iterator[None]:
    """For a sqlite file: its folder made, WAL mode set, and the storage opened by one process
    at a time (several workers creating the tables at once would trip over each other)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        yield
        return
    db = Path(url.database)
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        lock = open(db.with_name(db.name + ".lock"), "a")
    except OSError as e:
        raise UserError(f"tune.storage: cannot create {db}: {e.strerror}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with contextlib.closing(sqlite3.connect(db, timeout=SQLITE_TIMEOUT_S)) as con:
                con.execute("PRAGMA journal_mode=WAL")  # persistent: set once per file
        except sqlite3.Error as e:
            raise UserError(f"tune.storage: cannot open sqlite file {db}: {e}") from None
        yield
