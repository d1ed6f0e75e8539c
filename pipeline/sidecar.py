"""Side processes that the stages of a repro share: each listens on a Unix socket, is started
by the first stage that finds none listening, and leaves once no stage has needed it for a while.
Two use this: the tracking agent (mlflow imported once, pipeline/tracking/agent.py) and the fork
server (torch imported once, pipeline/forkserver.py).

A side process is keyed by what it depends on (its socket's name hashes it), so a stage never
talks to one built from other code or another environment. A stage connects or starts one while
holding the socket's spawn lock, and the side process closes for good only while holding it
too: a stage never connects to one that is about to leave.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

START_TIMEOUT_S = 30.0  # how long a stage waits for a new side process to listen


def socket_path(kind: str, parts: Iterable[str | bytes]) -> Path:
    """<tmp>/lm-ablations-<uid>/<kind>-<hash of parts>.sock: a folder of this user's own, short,
    since a Unix socket's path is limited to about 100 bytes."""
    key = hashlib.sha256()
    for part in parts:
        key.update((part.encode() if isinstance(part, str) else part) + b"\0")
    return Path(tempfile.gettempdir()) / f"lm-ablations-{os.getuid()}" / f"{kind}-{key.hexdigest()[:16]}.sock"


@contextmanager
def spawn_lock(sock: Path, blocking: bool = True):
    """Held by a stage while it connects or starts the side process, and by the side process
    while it decides to leave. Yields whether it got the lock (always, when blocking)."""
    sock.parent.mkdir(mode=0o700, exist_ok=True)
    with open(sock.with_suffix(".lock"), "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    return sock


def connect_or_spawn(path: Path, module: str, what: str, *, env: dict[str, str], cwd: Path
                     ) -> tuple[socket.socket | None, str | None]:
    """A connection to the side process on `path`; when none listens, `python -m module path` is
    started, detached (a Ctrl-C or a kill of the stage's process group must not take it along),
    in `env` and `cwd`. Returns (None, why) when none could be had."""
    with spawn_lock(path):
        try:
            return connect(path), None
        except OSError:
            pass
        proc = subprocess.Popen([sys.executable, "-m", module, str(path)], env=env, cwd=cwd,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                return connect(path), None
            except OSError:
                time.sleep(0.02)
        return None, f"{what} did not start (its log: {path.with_suffix('.log')})"


def listen(path: Path) -> socket.socket:
    """The side process's listening socket (the stage that started it holds the spawn lock, so
    a file left there is a dead one's). Its output goes to the log beside the socket: it is
    detached, and nothing it prints may reach a stage's terminal."""
    log = open(path.with_suffix(".log"), "a", buffering=1)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path.unlink(missing_ok=True)
    listener.bind(str(path))
    listener.listen(64)
    return listener


def leave_if_unwanted(path: Path, listener: socket.socket, sel: selectors.BaseSelector) -> bool:
    """Close the side process's socket for good unless a stage is connecting (call when idle);
    returns whether it closed."""
    with spawn_lock(path, blocking=False) as held:
        if held and not sel.select(timeout=0):
            path.unlink(missing_ok=True)
            listener.close()
            return True
    return False
