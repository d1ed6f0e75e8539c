"""Reading the prepared splits (data/text/<corpus>/<split>.txt), the input of every model stage."""

from __future__ import annotations

from pipeline import paths
from pipeline.config import SPLITS
from pipeline.errors import UserError


def read_split(corpus: str, split: str) -> str:
    path = paths.split_text(corpus, split)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run `dvc repro prepare@{corpus}` first)") from None


def read_splits(corpus: str, splits=SPLITS) -> dict[str, str]:
    return {split: read_split(corpus, split) for split in splits}
