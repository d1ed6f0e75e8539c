"""Word tokenizer: whitespace words plus `<eos>` at every line break, closed vocabulary.

The vocabulary comes from train only: `<unk>`, `<eos>`, then words by descending count
(ties alphabetical, so it is deterministic), at most `max_size` entries in all, each seen at
least `min_count` times. Prepared text has single spaces between words and no empty lines,
so decode(encode(text)) == text except that out-of-vocabulary words come back as `<unk>`.
"""

from __future__ import annotations

from collections import Counter
from itertools import count, repeat

import numpy as np

from pipeline.config import WordTokenizerConfig
from pipeline.tokenizers.base import EOS, UNK, Tokenizer


def build_vocab(text: str, cfg: WordTokenizerConfig) -> list[str]:
    counts = Counter(text.split())
    counts.pop(UNK, None)  # corpora such as PTB contain the literal <unk>: it is ours
    counts.pop(EOS, None)
    words = sorted((w for w, n in counts.items() if n >= cfg.min_count), key=lambda w: (-counts[w], w))
    if cfg.max_size is not None:
        words = words[: cfg.max_size - 2]
    return [UNK, EOS] + words


class WordTokenizer(Tokenizer):
    kind = "word"

    def __init__(self, vocab: list[str]):
        self.vocab = vocab
        self.stoi = {w: i for i, w in enumerate(vocab)}
        self.unk_id, self.newline_id = self.stoi[UNK], self.stoi[EOS]
        self.eos_id = self.newline_id
        # words of the text -> ids; a literal "<eos>" in the text is a word, not a line break
        self.word_ids = {w: i for w, i in self.stoi.items() if w != EOS}

    @classmethod
    def train(cls, text: str, cfg: WordTokenizerConfig) -> "WordTokenizer":
        return cls(build_vocab(text, cfg))

    def word_level(self, text: str) -> tuple[np.ndarray, list[str]]:
        """(ids, words): an id per word and `<eos>` per line break, -1 for a word outside the
        vocabulary; `words` the text's words in order (line breaks included).

        One split of the whole text: each "\n" becomes a word of its own, `mark`, a character
        the text does not contain (so no word of the text equals it)."""
        mark = next(c for c in map(chr, count(0xE000)) if c not in text)  # private use area
        words = text.replace("\n", f" {mark} ").split()
        lookup = {**self.word_ids, mark: self.eos_id}
        return np.fromiter(map(lookup.get, words, repeat(-1)), dtype=np.int64, count=len(words)), words

    def encode(self, text: str) -> np.ndarray:
        ids, _ = self.word_level(text)
        ids[ids < 0] = self.unk_id
        return ids

    def decode_words(self, ids) -> list[str]:
        return [self.vocab[i] for i in np.asarray(ids).tolist()]

    def decode(self, ids) -> str:
        text, line = [], []
        for w in self.decode_words(ids):
            if w == EOS:
                text.append(" ".join(line) + "\n")
                line = []
            else:
                line.append(w)
        return "".join(text) + " ".join(line)

    def state(self) -> dict:
        return {"vocab": self.vocab}

    @classmethod
    def from_state(cls, state: dict) -> "WordTokenizer":
        return cls(state["vocab"])
