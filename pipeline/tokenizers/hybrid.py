"""Hybrid tokenizer: word vocabulary, out-of-vocabulary words spelled out in characters.

One flat, lossless id stream. Ids below `n_words` are the word vocabulary (as WordTokenizer,
`<unk>` included); an OOV word is written as `<unk>` followed by its spelling, one id per
character in the speller alphabet (offset by `n_words`), closed by `<eow>`:

    "the zounds\\n"  ->  [the] [<unk>] [z o u n d s <eow>] [<eos>]

Every `<unk>` is followed by a spelling, so `<unk>`s and spellings pair one to one. The
corpus' own unknown-word marker (`unk_marker`, e.g. PTB's `<unk>`), when it names one, is the
`<unk>` with the empty spelling, `[<unk>] [<eow>]`: a word that is no string of characters. So
the speller's one distribution covers both: it learns how often an unknown word of train was
the marker (its `<eow>` first) and how the others are spelled, and the marker's probability,
P(<unk> | ctx) P_speller(<eow>), is mass no spelled word also draws on. (With no marker named,
a literal `<unk>` in the text is an ordinary word: in the vocabulary, or spelled `< u n k >`.)

The word RNN sees `model_ids` (spellings removed); the speller, a character RNN, learns the
spellings. The alphabet is every character of train, but for spaces and newlines, plus
`<eow>` and a character `<unk>` for letters never seen in train (a word containing one cannot
be spelled: it is the only case the hybrid model counts as OOV).
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

    def __init__(self, vocab: list[str], chars: list[str], unk_marker: str | None = None):
        super().__init__(vocab, unk_marker)
        self.n_words = len(vocab)
        self.alphabet = [EOW, UNK] + chars  # speller ids: 0 = <eow>, 1 = unknown character
        self.eow_id, self.unk_char_id = 0, 1
        self._chars = CharTokenizer(chars)  # ids [<unk>] + chars: each speller id minus one

    @classmethod
    def train(cls, text: str, cfg: WordTokenizerConfig, unk_marker: str | None = None) -> "HybridTokenizer":
        return cls(build_vocab(text, cfg, unk_marker), sorted(set(text) - {" ", "\n"}), unk_marker)

    @property
    def n_ids(self) -> int:
        return self.n_words + len(self.alphabet)  # words, then the spelled characters

    def encode(self, text: str) -> np.ndarray:
        ids, words = self.word_level(text)
        oov = ids < 0  # the marker is already <unk> (its spelling: empty)
        unk = np.flatnonzero(oov | (ids == self.unk_id))
        ids[unk] = self.unk_id
        spelled = [words[j] if oov[j] else "" for j in unk]
        lengths = np.fromiter(map(len, spelled), dtype=np.int64, count=len(unk))
        chars = self._chars.encode("".join(spelled)) + 1  # speller ids, all spellings in a row
        spellings = np.insert(chars, np.cumsum(lengths), self.eow_id)  # each closed by <eow>
        return np.insert(ids, np.repeat(unk + 1, lengths + 1), self.n_words + spellings)  # after its <unk>

    def _words(self, ids) -> list[str | None]:
        """Words of `ids` (None for a line break); an <unk> with no spelling after it (the model's
        stream) reads `<unk>`, one with the empty spelling the corpus' marker."""
        words: list[str | None] = []
        spelling = None
        for i in np.asarray(ids).tolist():
            if i >= self.n_words:  # a character of the current spelling
                if spelling is None:
                    continue
                if i == self.n_words + self.eow_id:
                    words.append("".join(spelling) or (self.unk_marker or ""))
                    spelling = None
                else:
                    c = self.alphabet[i - self.n_words]
                    spelling.append("\ufffd" if c == UNK else c)
                continue
            if spelling is not None:
                words.append(UNK)
            spelling = [] if i == self.unk_id else None
            if i != self.unk_id:
                words.append(None if i == self.eos_id else self.vocab[i])
        if spelling is not None:
            words.append(UNK)
        return words

    def model_ids(self, ids: np.ndarray) -> np.ndarray:
        return ids[ids < self.n_words]

    def _spelled(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends): where each spelling in `ids` begins and where its <eow> is."""
        spelled = ids >= self.n_words
        starts = np.flatnonzero((ids[:-1] == self.unk_id) & spelled[1:]) + 1
        ends = np.flatnonzero(ids == self.n_words + self.eow_id)
        first = np.searchsorted(ends, starts)  # the first <eow> at or after each start
        return starts[first < len(ends)], ends[first[first < len(ends)]]  # (a cut stream)

    def spellings(self, ids: np.ndarray) -> list[list[int]]:
        """The speller id sequences of the <unk> words in `ids`, in order, each closed by its
        <eow> (the marker's: <eow> alone). An <unk> with no spelling after it (a model stream)
        has none."""
        ids = np.asarray(ids)
        return [(ids[s : e + 1] - self.n_words).tolist() for s, e in zip(*self._spelled(ids))]

    def unknowns(self, text: str, ids: np.ndarray) -> tuple[int, int]:
        """(n_oov, n_unk_marker): words the speller cannot spell (a character unseen in train),
        and words that were the corpus' marker (the empty spelling)."""
        ids = np.asarray(ids)
        starts, ends = self._spelled(ids)
        unseen = np.concatenate([[0], np.cumsum(ids == self.n_words + self.unk_char_id)])  # how many before each index
        return int(np.count_nonzero(unseen[ends] > unseen[starts])), int(np.count_nonzero(ends == starts))

    def n_unk_words(self, ids: np.ndarray) -> int:
        """Words outside the word vocabulary (spelled by the speller); the marker is none."""
        starts, ends = self._spelled(np.asarray(ids))
        return int(np.count_nonzero(ends > starts))

    def state(self) -> dict:
        return {"vocab": self.vocab, "chars": self.alphabet[2:], "unk_marker": self.unk_marker}

    @classmethod
    def from_state(cls, state: dict) -> "HybridTokenizer":
        return cls(state["vocab"], state["chars"], state.get("unk_marker"))
