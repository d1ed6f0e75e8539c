"""Word tokenizer: whitespace words plus `<eos>` at every line break, closed vocabulary.

The vocabulary comes from train only: `<unk>` (id 0), `<eos>` (id 1), then words by
descending count (ties alphabetical, so it is deterministic), at most `max_size` entries in
all, each seen at least `min_count` times. The two specials are known by their position, not
their spelling: a word of the text that reads `<unk>` or `<eos>` is an ordinary word (with an
id of its own if frequent enough), unless the corpus names `<unk>` as its `unk_marker`; then
that word is the corpus' own unknown word and maps to `<unk>` (it never enters the vocabulary).

A word is a run of non-whitespace and every "\\n" is an `<eos>`, so the ids say nothing of the
spacing: verbatim corpora (PTB, WikiText) keep a space at both ends of every line, blank lines
and runs of spaces, and decode(encode(text)) gives back the words with single spaces, one line
per `<eos>`, out-of-vocabulary words as `<unk>`.
"""

from __future__ import annotations

from collections import Counter
from itertools import count, repeat

import numpy as np

from pipeline.config import WordTokenizerConfig
from pipeline.tokenizers.base import EOS, UNK, Tokenizer

SPECIALS = 2  # ids 0 and 1: <unk>, <eos>; words start here


def build_vocab(text: str, cfg: WordTokenizerConfig, unk_marker: str | None = None) -> list[str]:
    counts = Counter(text.split())
    if unk_marker is not None:
        counts.pop(unk_marker, None)  # the corpus' unknown word is our <unk>, not a word of its own
    words = sorted((w for w, n in counts.items() if n >= cfg.min_count), key=lambda w: (-counts[w], w))
    if cfg.max_size is not None:
        words = words[: cfg.max_size - SPECIALS]
    return [UNK, EOS] + words


class WordTokenizer(Tokenizer):
    kind = "word"
    marker_is_unk = True

    def __init__(self, vocab: list[str], unk_marker: str | None = None):
        if vocab[:SPECIALS] != [UNK, EOS]:
            raise ValueError(f"a word vocabulary starts with {[UNK, EOS]}, got {vocab[:SPECIALS]}")
        self.vocab, self.unk_marker = vocab, unk_marker
        self.unk_id, self.newline_id = 0, 1
        self.eos_id = self.newline_id
        # words of the text -> ids: the specials are no words of the text (a literal "<eos>" is
        # a word, not a line break), the corpus' marker is <unk>
        self.stoi = {w: i for i, w in enumerate(vocab) if i >= SPECIALS}
        if unk_marker is not None:
            self.stoi[unk_marker] = self.unk_id

    @classmethod
    def train(cls, text: str, cfg: WordTokenizerConfig, unk_marker: str | None = None) -> "WordTokenizer":
        return cls(build_vocab(text, cfg, unk_marker), unk_marker)

    def word_level(self, text: str) -> tuple[np.ndarray, list[str]]:
        """(ids, words): an id per word and `<eos>` per line break, -1 for a word outside the
        vocabulary (the marker is `<unk>`, not -1); `words` the text's words in order (line
        breaks included).

        One split of the whole text: each "\n" becomes a word of its own, `mark`, a character
        the text does not contain (so no word of the text equals it)."""
        mark = next(c for c in map(chr, count(0xE000)) if c not in text)  # private use area
        words = text.replace("\n", f" {mark} ").split()
        lookup = {**self.stoi, mark: self.eos_id}
        return np.fromiter(map(lookup.get, words, repeat(-1)), dtype=np.int64, count=len(words)), words

    def encode(self, text: str) -> np.ndarray:
        ids, _ = self.word_level(text)
        ids[ids < 0] = self.unk_id
        return ids

    def _words(self, ids) -> list[str | None]:
        """The word of each id, None for a line break; `<unk>` reads as the corpus' marker if
        it names one (its own word for "unknown")."""
        unk = self.unk_marker or UNK
        return [None if i == self.eos_id else unk if i == self.unk_id else self.vocab[i]
                for i in np.asarray(ids).tolist()]

    def decode_words(self, ids) -> list[str]:
        return [EOS if w is None else w for w in self._words(ids)]

    def decode(self, ids) -> str:
        text, line = [], []
        for w in self._words(ids):
            if w is None:
                text.append(" ".join(line) + "\n")
                line = []
            else:
                line.append(w)
        return "".join(text) + " ".join(line)

    def state(self) -> dict:
        return {"vocab": self.vocab, "unk_marker": self.unk_marker}

    @classmethod
    def from_state(cls, state: dict) -> "WordTokenizer":
        return cls(state["vocab"], state.get("unk_marker"))
