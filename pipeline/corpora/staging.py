"""Whole-directory atomicity: a stage's output directory is the old one or the new one.

`pipeline.io` makes single files atomic; a corpus directory is several files that must agree
(source.json describes the text files beside it). So the new directory is built as a hidden
sibling (`.<name>.build-XXXX`), each file written atomically, and only a complete build is
swapped in. The swap is two renames (old aside, new in): a crash between them leaves no
`<name>` at all, never a mixed or half-written one, and the next run rebuilds it. Build and
old directories a killed run left behind are removed by the next run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipeline.io import fsync_dir


@contextlib.contextmanager
def staged_dir(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty build directory; on clean exit it replaces `out_dir`, on error it is removed."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in (
        *out_dir.parent.glob(f".{out_dir.name}.build-*"),
        *out_dir.parent.glob(f".{out_dir.name}.old-*"),
    ):
        shutil.rmtree(stale, ignore_errors=True)
    build = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.build-"))
    try:
        yield build
        os.chmod(build, 0o755)  # mkdtemp makes it 0700
        with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.old-") as trash:
            if out_dir.exists():
                os.replace(out_dir, Path(trash) / out_dir.name)
            os.replace(build, out_dir)
            fsync_dir(out_dir.parent)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
