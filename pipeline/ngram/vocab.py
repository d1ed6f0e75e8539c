"""The n-gram model's symbols, and text -> id streams of sentences.

Symbols are the ARPA strings, id = position: `<unk>`, `<s>`, `</s>`, then the tokenizer's
units in its order. So the n-gram baseline uses exactly the word RNN's train-only vocabulary
(or the char tokenizer's alphabet): a unit outside it is `<unk>`, and counted as OOV.

Each line of the text is a sentence: `<s> u1 .. un </s>`. `</s>` is the line break (for words
the end-of-line the evaluator counts as a word, for characters the newline); `<s>` is only
ever context. Lines are the evaluator's (`split_lines`: only "\n" ends one, "\r" is a
character). A literal `<s>` / `</s>` in the text is not a boundary: it is `<unk>`.

ARPA separates fields by whitespace, so character symbols that are whitespace or not
printable are written `<U+XXXX>`; every other character stands for itself. Single
characters and `<...>` escapes cannot collide, so the mapping is lossless.
"""

from __future__ import annotations

from itertools import repeat
from typing import Literal

import numpy as np

from pipeline.errors import UserError
from pipeline.tokenizers import EOS, UNK, Tokenizer
from pipeline.tokenizers.base import split_lines

BOS_SYM, EOS_SYM, UNK_SYM = "<s>", "</s>", UNK
RESERVED = (UNK_SYM, BOS_SYM, EOS_SYM)
Unit = Literal["word", "char"]
EOS_MARK, BOS_MARK = "\x00", "\x01"  # stand for </s> and <s> while encoding words


def escape_char(c: str) -> str:
    return f"<U+{ord(c):04X}>" if c.isspace() or not c.isprintable() else c


def unescape_symbol(sym: str) -> str:
    return chr(int(sym[3:-1], 16)) if sym.startswith("<U+") and sym.endswith(">") else sym


class NgramVocab:
    """`symbols[i]` is the ARPA string of id i; `encode` turns text into a sentence stream."""

    def __init__(self, symbols: list[str], unit: Unit):
        missing = [s for s in RESERVED if s not in symbols]
        if missing:
            raise UserError(f"n-gram vocabulary lacks {missing}; it needs {list(RESERVED)}")
        self.symbols, self.unit = symbols, unit
        self.unk_id, self.bos_id, self.eos_id = (symbols.index(s) for s in RESERVED)
        units = (s if unit == "word" else unescape_symbol(s) for s in symbols)
        # text unit -> id; the reserved symbols are no text units (literal "<s>" is <unk>)
        self.stoi = {u: i for i, (u, s) in enumerate(zip(units, symbols)) if s not in RESERVED}
        self._stream_ids = {**self.stoi, EOS_MARK: self.eos_id, BOS_MARK: self.bos_id}
        if unit == "char":  # sorted code points for vectorised lookup; a sentinel past U+10FFFF
            table = sorted((ord(c), i) for c, i in self.stoi.items()) + [(0x110000, self.unk_id)]
            self._cps, self._cp_ids = np.array(table, dtype=np.int64).T

    @classmethod
    def from_tokenizer(cls, tok: Tokenizer, unit: Unit) -> "NgramVocab":
        """The tokenizer's units, minus its line-break unit (it becomes `</s>`)."""
        if tok.kind != unit:
            raise UserError(f"n-gram unit {unit!r} needs the {unit} tokenizer, got a {tok.kind} one")
        if unit == "word":
            units = [w for w in tok.vocab if w not in (UNK, EOS, BOS_SYM, EOS_SYM)]
        else:
            units = [escape_char(c) for c in tok.vocab if c not in (UNK, "\n")]
        return cls([UNK_SYM, BOS_SYM, EOS_SYM] + units, unit)

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> tuple[np.ndarray, int]:
        """(stream, n_oov): int64 ids `<s> u.. </s> <s> u.. </s> ...`, one sentence per line;
        n_oov = units mapped to `<unk>`."""
        if self.unit == "word" and EOS_MARK not in text and BOS_MARK not in text:
            # The stream in one split of the whole text: each line break becomes the marker
            # words `</s> <s>` (non-space characters, so str.split keeps them), no per-line lists.
            if text and not text.endswith("\n"):
                text += "\n"
            words = (f"{BOS_MARK} " + text.replace("\n", f" {EOS_MARK} {BOS_MARK} ")).split()[:-1]
            ids = np.fromiter(map(self._stream_ids.get, words, repeat(self.unk_id)), dtype=np.int64,
                              count=len(words))
            return ids, int(np.count_nonzero(ids == self.unk_id))
        lines = split_lines(text)
        if self.unit == "word":  # a text holding a marker character itself: line by line
            lengths = np.fromiter(map(len, map(str.split, lines)), dtype=np.int64, count=len(lines))
            words = text.split()
            ids = np.fromiter(
                map(self.stoi.get, words, repeat(self.unk_id)), dtype=np.int64, count=len(words)
            )
        else:
            lines = [line.removesuffix("\n") for line in lines]
            ids = self._char_ids("".join(lines))
            lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
        return self._sentences(ids, lengths), int((ids == self.unk_id).sum())

    def from_token_ids(self, tok: Tokenizer, ids: np.ndarray) -> np.ndarray:
        """The sentence stream of `tok`'s ids (e.g. the tokenize stage's train split): equal to
        `encode` of the text they came from, without tokenizing it again. `tok` is the
        tokenizer this vocabulary was built from."""
        to_ngram = np.array([self.stoi.get(u, self.unk_id) for u in tok.vocab], dtype=np.int64)
        to_ngram[tok.bos_id] = self.eos_id  # the line-break unit ends a sentence
        stream = to_ngram[ids]
        if not len(stream):
            return stream
        if stream[-1] != self.eos_id:  # text without a final line break
            stream = np.r_[stream, self.eos_id]
        starts = np.r_[0, np.flatnonzero(stream == self.eos_id)[:-1] + 1]  # after each </s> but the last
        return np.insert(stream, starts, self.bos_id)

    def _char_ids(self, s: str) -> np.ndarray:
        cps = np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        pos = np.searchsorted(self._cps, cps)  # always in range thanks to the sentinel
        return np.where(self._cps[pos] == cps, self._cp_ids[pos], self.unk_id)

    def _sentences(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Wrap consecutive runs of `lengths` ids in <s> .. </s>."""
        ends = np.cumsum(lengths + 2)  # one past each sentence's </s>
        out = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
        inner = np.ones(len(out), dtype=bool)
        inner[ends - lengths - 2] = inner[ends - 1] = False
        out[ends - lengths - 2], out[ends - 1], out[inner] = self.bos_id, self.eos_id, ids
        return out
