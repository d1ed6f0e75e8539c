"""The Tokenizer protocol shared by every LM type, and its one JSON artifact.

Conventions every tokenizer keeps, so the trainer and the evaluator need no special cases:
- `encode(text)` maps text to a 1-D int64 array; `decode` inverts it (exact for char, subword
  and hybrid; exact modulo `<unk>` for word).
- `newline_id` is the line-break unit (`<eos>` for word-level, "\\n" for char, the BPE piece of
  "\\n"): it is the input that precedes the first token of a segment, as if the segment
  followed a line break.
- `model_ids(ids)` is the stream the language model itself predicts (for hybrid: the word
  level, spellings removed).
- `unk_marker`: the word the corpus' text uses for unknown words (PTB's `<unk>`), or None.
  Word-level tokenizers (word, hybrid, and the n-gram's) map it to their `<unk>`; char and
  subword keep it as the characters it is (char's `<unk>` is one unknown character, subword has
  none). `unknowns(text, ids)` counts apart, for every tokenizer, the units outside the
  vocabulary (`n_oov`) and the words that were the marker in the text (`n_unk_marker`): the
  evaluator reports both, and a text with either is not scored open-vocabulary.
- Specials never collide with text: with no marker named, a literal `<unk>`, `<eos>`, `<s>` or
  `<eow>` in the text is an ordinary word (or characters), never the tokenizer's own symbol.
- One JSON file records `kind`, the marker and everything needed to rebuild the tokenizer.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from pipeline import paths
from pipeline.errors import UserError
from pipeline.io import write_json
from pipeline.text import count_word

UNK = "<unk>"
EOS = "<eos>"


class Tokenizer(ABC):
    kind: ClassVar[str]
    marker_is_unk: ClassVar[bool] = False  # whether encode maps `unk_marker` to `unk_id`
    vocab: list[str]  # id -> symbol, for the model's own units
    unk_id: int | None
    newline_id: int
    unk_marker: str | None = None  # the corpus' unknown-word marker (see the module doc)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def n_ids(self) -> int:
        """Ids in an encoded stream: `vocab_size` unless the stream holds more than the model's units."""
        return self.vocab_size

    @abstractmethod
    def encode(self, text: str) -> np.ndarray: ...

    @abstractmethod
    def decode(self, ids) -> str: ...

    @abstractmethod
    def state(self) -> dict:
        """JSON-able state (the marker included); `from_state` rebuilds the tokenizer from it."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict) -> "Tokenizer": ...

    def model_ids(self, ids: np.ndarray) -> np.ndarray:
        return ids

    def n_unk_marker(self, text: str) -> int:
        """Words of `text` that are the corpus' unknown-word marker (0 when none is named)."""
        return count_word(text, self.unk_marker) if self.unk_marker else 0

    def unknowns(self, text: str, ids: np.ndarray) -> tuple[int, int]:
        """(n_oov, n_unk_marker) of `text`, encoded as `ids`: the model's `<unk>` tokens that
        stand for a unit outside the vocabulary, and the words that were the marker in the text
        (whatever they are encoded as: one `<unk>` here when `marker_is_unk`, else characters)."""
        marked = self.n_unk_marker(text)
        unk = 0 if self.unk_id is None else int(np.count_nonzero(self.model_ids(ids) == self.unk_id))
        return unk - (marked if self.marker_is_unk else 0), marked

    def save(self, path: str | Path) -> None:
        write_json(path, {"kind": self.kind, **self.state()})


def load_tokenizer(path: str | Path) -> Tokenizer:
    from pipeline.tokenizers import KINDS

    path = Path(path)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        kind = state.pop("kind")
    except FileNotFoundError:
        raise UserError(f"{path}: tokenizer file not found (run the tokenize stage first)") from None
    except (json.JSONDecodeError, KeyError, AttributeError) as e:
        raise UserError(f"{path}: not a tokenizer file ({e})") from None
    if kind not in KINDS:
        raise UserError(f"{path}: unknown tokenizer kind {kind!r}; allowed {sorted(KINDS)}")
    return KINDS[kind].from_state(state)


def _id_problem(ids: np.ndarray, n_ids: int) -> str | None:
    if ids.dtype.kind not in "iu":
        return f"holds {ids.dtype} values"
    if ids.ndim != 1:
        return f"is {ids.ndim}-D"
    if len(ids) and (ids.min() < 0 or ids.max() >= n_ids):
        return f"holds ids from {ids.min()} to {ids.max()}"
    return None


def load_split_ids(corpus: str, tok: Tokenizer, split: str) -> np.ndarray:
    """The tokenize stage's ids of one split for `tok`, as int64, checked against it (a 1-D
    integer array of ids below tok.n_ids) before anything uses them."""
    tokenizer = tok.kind
    path = paths.split_tokens(corpus, tokenizer, split)
    try:
        ids = np.load(path)
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run `dvc repro tokenize@{corpus}-{tokenizer}` first)") from None
    except (ValueError, OSError, EOFError):  # truncated or not .npy (numpy's message suggests unpickling)
        raise UserError(
            f"{path}: not a readable .npy token array; re-run `dvc repro tokenize@{corpus}-{tokenizer}`"
        ) from None
    if bad := _id_problem(ids, tok.n_ids):
        raise UserError(f"{path}: {bad}; token files hold 1-D integer ids in [0, {tok.n_ids}) for "
                        f"{paths.tokenizer_file(corpus, tokenizer)}; re-run `dvc repro tokenize@{corpus}-{tokenizer}`")
    return ids.astype(np.int64)
