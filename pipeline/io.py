"""File helpers: atomic writes, file hashes, compact id dtypes.

Atomic writes: a killed process leaves the previous file or the new one, never half of one.

Every artifact the pipeline writes goes through these helpers: write to a temp file in the
same directory, fsync, then `os.replace` (atomic on POSIX), then fsync the directory so
the rename itself survives a crash.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import functools
import hashlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np

from pipeline.errors import UserError


_UMASK_LOCK = threading.Lock()


@functools.cache
def _umask() -> int:
    """The process umask, read once, on the first write (reading it means setting it; the lock
    keeps two first writes from reading each other's 0)."""
    with _UMASK_LOCK:
        mask = os.umask(0)
        os.umask(mask)
    return mask


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# A full disk, a read-only file system, no permission: the user's to fix, not a bug.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


@contextlib.contextmanager
def storage_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn an OSError of STORAGE_ERRNOS into one UserError naming `path`."""
    try:
        yield
    except OSError as e:
        if e.errno not in STORAGE_ERRNOS:
            raise
        raise UserError(f"{path}: cannot write: {e.strerror} (errno {errno.errorcode[e.errno]}); "
                        "the previous file, if any, is kept") from None


def check_writable(*dirs: str | os.PathLike) -> None:
    """Create each folder and a file in it, before any work: a read-only or forbidden output
    folder is one clear error at the start, not after an hour of training."""
    for d in map(Path, dirs):
        with storage_errors(d):
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=d, prefix=".writable.", suffix=".tmp")
            os.close(fd)
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file next to `path`; on clean exit it replaces `path` atomically. A full or
    read-only place is a UserError naming `path` (the previous file stays)."""
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts get the usual mode
    try:
        encoding = None if "b" in mode else "utf-8"
        newline = None if "b" in mode else ""
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            with storage_errors(path):
                raise
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a CSV file with a header line (a run's curve), values as written (strings)."""
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file, read in chunks (raw corpora can be hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def smallest_uint(n: int) -> np.dtype:
    """The smallest unsigned dtype that holds ids < n (compact .npy token files)."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if n <= np.iinfo(dt).max + 1:
            return np.dtype(dt)
    return np.dtype(np.uint64)


@contextlib.contextmanager
def exclusive(lock_file: str | os.PathLike, what: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold an OS lock on `lock_file` (created if missing) for the block: a second holder waits
    up to `wait_s` for it, then gets a UserError naming the PID that has it. The OS drops the
    lock when its process dies, so a killed holder never leaves a stale lock."""
    lock_file = Path(lock_file)
    with storage_errors(lock_file):
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock_file, "a+", encoding="utf-8")
    with f:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    f.seek(0)
                    holder = f.read().strip() or "unknown"
                    raise UserError(f"{what} is in use by process {holder} (lock {lock_file}); "
                                    "wait for it to finish or stop it") from None
                time.sleep(0.1)
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()  # the lock itself is released when the file closes
