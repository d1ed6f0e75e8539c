"""Hybrid tokenizer: word vocabulary, out-of-vocabulary words spelled out in characters.

One flat, lossless id stream. Ids below `n_words` are the word vocabulary (as WordTokenizer,
`<unk>` included); an OOV word is written as `<unk>` followed by its spelling, one id per
character in the speller alphabet (offset by `n_words`), closed by `<eow>`:

    "the zounds\\n"  ->  [the] [<unk>] [z o u n d s <eow>] [<eos>]

The word RNN sees `model_ids` (spellings removed); the speller, a character RNN, learns the
spellings. The alphabet is every character of train words, plus `<eow>` and a character
`<unk>` for letters never seen in train (a word containing one cannot be spelled: it is the
only case the hybrid model counts as OOV).
"""

from __future__ import annotations

import numpy as np

from pipeline.config import WordTokenizerConfig
from pipeline.tokenizers.base import UNK
from pipeline.tokenizers.char import CharTokenizer
from pipeline.tokenizers.word import WordTokenizer, build_vocab

EOW = "<eow>"


class HybridTokenizer(WordTokenizer):
    kind = "hybrid"

    def __init__(self, vocab: list[str], chars: list[str]):
        super().__init__(vocab)
        self.n_words = len(vocab)
        self.alphabet = [EOW, UNK] + chars  # speller ids: 0 = <eow>, 1 = unknown character
        self.eow_id, self.unk_char_id = 0, 1
        self._chars = CharTokenizer(chars)  # ids [<unk>] + chars: each speller id minus one

    @classmethod
    def train(cls, text: str, cfg: WordTokenizerConfig) -> "HybridTokenizer":
        return cls(build_vocab(text, cfg), sorted(set(text) - {" ", "\n"}))

    @property
    def n_ids(self) -> int:
        return self.n_words + len(self.alphabet)  # words, then the spelled characters

    def encode(self, text: str) -> np.ndarray:
        ids, words = self.word_level(text)
        oov = np.flatnonzero(ids < 0)
        ids[oov] = self.unk_id
        spelled = [words[j] for j in oov]
        lengths = np.fromiter(map(len, spelled), dtype=np.int64, count=len(oov))
        chars = self._chars.encode("".join(spelled)) + 1  # speller ids, all spellings in a row
        spellings = np.insert(chars, np.cumsum(lengths), self.eow_id)  # each closed by <eow>
        return np.insert(ids, np.repeat(oov + 1, lengths + 1), self.n_words + spellings)  # after its <unk>

    def decode_words(self, ids) -> list[str]:
        """Words of `ids`; an <unk> with no spelling after it (the model's stream) stays <unk>."""
        words, spelling = [], None
        for i in np.asarray(ids).tolist():
            if i >= self.n_words:  # a character of the current spelling
                if spelling is None:
                    continue
                if i == self.n_words + self.eow_id:
                    words.append("".join(spelling))
                    spelling = None
                else:
                    c = self.alphabet[i - self.n_words]
                    spelling.append("\ufffd" if c == UNK else c)
                continue
            if spelling is not None:
                words.append(UNK)
            spelling = [] if i == self.unk_id else None
            if i != self.unk_id:
                words.append(self.vocab[i])
        if spelling is not None:
            words.append(UNK)
        return words

    def model_ids(self, ids: np.ndarray) -> np.ndarray:
        return ids[ids < self.n_words]

    def spellings(self, ids: np.ndarray) -> list[list[int]]:
        """The speller id sequences of the <unk> words in `ids`, in order (<eow> included)."""
        cut = np.flatnonzero(ids == self.n_words + self.eow_id)
        starts = np.flatnonzero(ids == self.unk_id) + 1
        return [(ids[s : e + 1] - self.n_words).tolist() for s, e in zip(starts, cut)]

    def n_oov(self, ids: np.ndarray) -> int:
        """Words the speller cannot spell (a character unseen in train)."""
        return sum(self.unk_char_id in s for s in self.spellings(ids))

    def n_unk_words(self, ids: np.ndarray) -> int:
        """Words outside the word vocabulary (spelled by the speller)."""
        return int((ids == self.unk_id).sum())

    def state(self) -> dict:
        return {"vocab": self.vocab, "chars": self.alphabet[2:]}

    @classmethod
    def from_state(cls, state: dict) -> "HybridTokenizer":
        return cls(state["vocab"], state["chars"])
