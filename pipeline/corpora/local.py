"""`source: local`: files on disk, copied into the raw directory, and watched for DVC.

`path` = one file (copied byte for byte to corpus.txt) or a directory whose `*.txt` files
(not recursive, sorted by name) are joined as one document each; `splits` = the corpus' own
train/valid/test files. Relative paths are relative to the working directory (the project
root when run by DVC); `~` is expanded. `sha256: {file: hash}` pins files: a file whose bytes
differ is an error (file as written in `path`/`splits`; for a directory, `<path>/<name>.txt`).

How DVC sees a change of a local file, although dvc.yaml cannot name it (stages are a
`foreach` over corpus names, and DVC's templating has no per-item lookup or conditional):
the `sources@<corpus>` stage writes `data/sources/<corpus>/`, one symlink per file the entry
reads (an empty directory for other sources), as an uncached DVC out, and `download@<corpus>`
depends on that directory. DVC hashes a directory through the symlinks in it, so an edited
file changes the hash: `dvc status` names both stages and `dvc repro` re-runs them (and
whatever depends on a changed raw directory); an unchanged file, or a corpus of another
source, re-runs nothing. Because the links are an out, a fresh clone re-creates them without
re-downloading. DVC does not follow a symlinked directory, so each file is linked: a `*.txt`
file added to a `path:` directory is seen only when the corpus entry changes, or after
`dvc repro -f sources@<corpus>`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pipeline.config import CorpusSource, LocalSource
from pipeline.corpora import about, layout
from pipeline.corpora.staging import staged_dir
from pipeline.errors import UserError
from pipeline.paths import split_file


def _expand(path: str) -> Path:
    return Path(path).expanduser()


def _checked(path: Path) -> Path:
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    return path


def files(cfg: LocalSource) -> dict[str, Path]:
    """The files the entry reads, each checked to exist, by a name unique within the corpus:
    the split's file name for `splits` (two splits may share a base name), else the file's own."""
    if cfg.splits is not None:
        return {split_file(s): _checked(_expand(p)) for s, p in cfg.splits.items()}
    path = _expand(cfg.path)
    if path.is_dir():
        found = sorted(path.glob("*.txt"))
        if not found:
            raise UserError(f"{path}: directory has no *.txt files")
        return {p.name: _checked(p) for p in found}
    return {path.name: _checked(path)}


def _verify(cfg: LocalSource, data: dict[Path, bytes]) -> None:
    """Each `sha256` pin names a file the entry reads, and that file has that hash."""
    for name, expected in cfg.sha256.items():
        path = _expand(name)
        if path not in data:
            raise UserError(
                f"sha256 pins {name!r}, which is not a file this entry reads "
                f"(it reads {[str(p) for p in data]})"
            )
        actual = hashlib.sha256(data[path]).hexdigest()
        if actual != expected:
            raise UserError(f"{path}: sha256 {actual} != expected {expected}")


def fetch(cfg: LocalSource, raw_dir: Path, work_dir: Path) -> dict:
    by_name = files(cfg)
    data = {p: p.read_bytes() for p in by_name.values()}
    _verify(cfg, data)
    if cfg.splits is not None:
        layout.write_splits(raw_dir, {s: data[by_name[split_file(s)]] for s in cfg.splits})
    elif _expand(cfg.path).is_dir():
        layout.write_corpus(raw_dir, layout.join_documents(data.values()))
    else:
        (only,) = data.values()
        layout.write_corpus(raw_dir, only)
    return {"members": [layout.record(str(p), blob) for p, blob in data.items()]}


def link(name: str, cfg: CorpusSource, out_dir: str | Path) -> dict[str, Path]:
    """The `sources` stage: make `out_dir` hold a symlink to each file the entry of corpus `name`
    reads (absolute, so DVC follows it from anywhere), or nothing for another source; returns
    {link name: target}."""
    with about(name, cfg.source):
        targets = {n: p.resolve() for n, p in files(cfg).items()} if isinstance(cfg, LocalSource) else {}
    with staged_dir(out_dir) as build:
        for link_name, target in targets.items():
            os.symlink(target, build / link_name)
    return targets
