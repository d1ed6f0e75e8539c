"""Reading the prepared splits (data/text/<corpus>/<split>.txt), the input of every model stage,
and the text's unknown-word marker (recorded beside them in stats.json by prepare)."""

from __future__ import annotations

from pipeline import paths
from pipeline.config import SPLITS
from pipeline.errors import UserError
from pipeline.io import read_json


def read_split(corpus: str, split: str) -> str:
    path = paths.split_text(corpus, split)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run `dvc repro prepare@{corpus}` first)") from None


def read_splits(corpus: str, splits=SPLITS) -> dict[str, str]:
    return {split: read_split(corpus, split) for split in splits}


def read_unk_marker(corpus: str) -> str | None:
    """The word the prepared text uses for unknown words (None: it has no marker)."""
    path = paths.text_dir(corpus) / paths.STATS_JSON
    try:
        return read_json(path)["unk_marker"]
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run `dvc repro prepare@{corpus}` first)") from None
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: has no unk_marker (written by an older prepare); "
                        f"run `dvc repro -f prepare@{corpus}`") from None
