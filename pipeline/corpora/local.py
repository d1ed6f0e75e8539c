"""`source: local`: files on disk, copied into the raw directory.

`path` = one file (copied byte for byte to corpus.txt) or a directory whose `*.txt` files
(not recursive, sorted by name) are joined as one document each; `splits` = the corpus' own
train/valid/test files. Relative paths are relative to the working directory (the project
root when run by DVC), so list them as deps of the download stage.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config import LocalSource
from pipeline.corpora import layout
from pipeline.errors import UserError


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    return path.read_bytes()


def fetch(cfg: LocalSource, raw_dir: Path, work_dir: Path) -> dict:
    if cfg.splits is not None:
        files = {split: Path(p) for split, p in cfg.splits.items()}
        data = {split: _read(p) for split, p in files.items()}
        layout.write_splits(raw_dir, data)
        return {"members": [layout.record(str(p), data[s]) for s, p in files.items()]}
    path = Path(cfg.path)
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise UserError(f"{path}: directory has no *.txt files")
        data = {str(p): _read(p) for p in files}
        layout.write_corpus(raw_dir, layout.join_documents(data.values()))
    else:
        data = {str(path): _read(path)}
        layout.write_corpus(raw_dir, data[str(path)])
    return {"members": [layout.record(name, blob) for name, blob in data.items()]}
