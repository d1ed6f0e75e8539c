"""Word tokenizer: whitespace words plus `<eos>` at every line break, closed vocabulary.

The vocabulary comes from train only: `<unk>`, `<eos>`, then words by descending count
(ties alphabetical, so it is deterministic), at most `max_size` entries in all, each seen at
least `min_count` times. Prepared text has single spaces between words and no empty lines,
so decode(encode(text)) == text except that out-of-vocabulary words come back as `<unk>`.
"""

from __future__ import annotations

from collections import Counter

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
        self.unk_id, self.bos_id = self.stoi[UNK], self.stoi[EOS]
        self.eos_id = self.bos_id
        # words of the text -> ids; a literal "<eos>" in the text is a word, not a line break
        self.word_ids = {w: i for w, i in self.stoi.items() if w != EOS}

    @classmethod
    def train(cls, text: str, cfg: WordTokenizerConfig) -> "WordTokenizer":
        return cls(build_vocab(text, cfg))

    def encode_word(self, word: str) -> list[int]:
        return [self.word_ids.get(word, self.unk_id)]

    def encode(self, text: str) -> np.ndarray:
        out: list[int] = []
        lines = text.split("\n")  # a trailing "\n" leaves a last empty piece with no <eos>
        for i, line in enumerate(lines):
            for w in line.split():
                out.extend(self.encode_word(w))
            if i < len(lines) - 1:
                out.append(self.eos_id)
        return np.asarray(out, dtype=np.int64)

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
