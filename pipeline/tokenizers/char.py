"""Character tokenizer: every character of train (newline included) is a token.

Characters seen fewer than `min_count` times in train, and characters never seen, map to
`<unk>` (id 0); the evaluator counts them as OOV, so such a text is not scored open-vocab.

The corpus' unknown-word marker (`unk_marker`, e.g. PTB's `<unk>`) stays the characters it is
written with: the char model's `<unk>` is one unknown character, not a word, and a marker
spelled out is lossless. The evaluator still counts the marker's occurrences (n_unk_marker),
so a text that has one is not scored open-vocab: its real words are unknown.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from pipeline.config import CharTokenizerConfig
from pipeline.tokenizers.base import UNK, Tokenizer


class CharTokenizer(Tokenizer):
    kind = "char"

    def __init__(self, chars: list[str], unk_marker: str | None = None):
        self.unk_marker = unk_marker
        # "\n" always has an id: it is the line-break unit (newline_id) every segment starts from
        self.vocab = [UNK] + chars + ([] if "\n" in chars else ["\n"])
        self.unk_id = 0
        self.stoi = {c: i for i, c in enumerate(self.vocab)}
        self.newline_id = self.stoi["\n"]
        # code point -> id lookup table for vectorised encoding of the common (BMP) range
        self._table = np.zeros(0x10000, dtype=np.int64)
        for c, i in self.stoi.items():
            if len(c) == 1 and ord(c) < 0x10000:
                self._table[ord(c)] = i

    @classmethod
    def train(cls, text: str, cfg: CharTokenizerConfig, unk_marker: str | None = None) -> "CharTokenizer":
        counts = Counter(text)
        return cls(sorted(c for c, n in counts.items() if n >= cfg.min_count), unk_marker)

    def encode(self, text: str) -> np.ndarray:
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        ids = np.zeros(len(cps), dtype=np.int64)
        bmp = cps < 0x10000
        ids[bmp] = self._table[cps[bmp]]
        for j in np.flatnonzero(~bmp):  # astral characters: rare, looked up one by one
            ids[j] = self.stoi.get(chr(cps[j]), self.unk_id)
        return ids

    def decode(self, ids) -> str:
        return "".join(self.vocab[i] for i in np.asarray(ids).tolist())

    def state(self) -> dict:
        return {"chars": self.vocab[1:], "unk_marker": self.unk_marker}

    @classmethod
    def from_state(cls, state: dict) -> "CharTokenizer":
        return cls(state["chars"], state.get("unk_marker"))
