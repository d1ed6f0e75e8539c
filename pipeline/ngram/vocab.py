"""The n-gram model's symbols, and text or tokenizer ids -> id streams of sentences.

Symbols are the ARPA strings, id = position: `<unk>`, `<s>`, `</s>`, then the tokenizer's
units in its order. So the n-gram baseline uses exactly the word RNN's train-only vocabulary
(or the char tokenizer's alphabet): a unit outside it is `<unk>`, and counted as OOV.

Each line of the text is a sentence: `<s> u1 .. un </s>`. `</s>` is the line break (for words
the end-of-line the evaluator counts as a word, for characters the newline); `<s>` is only
ever context. Lines are the evaluator's (only "\n" ends one, "\r" is a character). A literal
`<s>` / `</s>` in the text is not a boundary: it is `<unk>`. Text is split into units by the
word or char tokenizer itself, rebuilt from the symbols, so the stream of a text equals the
stream of its tokenize-stage ids.

ARPA separates fields by whitespace, so character symbols that are whitespace or not
printable are written `<U+XXXX>`; every other character stands for itself. Single
characters and `<...>` escapes cannot collide, so the mapping is lossless.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from pipeline.errors import UserError
from pipeline.tokenizers import EOS, UNK, CharTokenizer, Tokenizer, WordTokenizer

BOS_SYM, EOS_SYM, UNK_SYM = "<s>", "</s>", UNK
RESERVED = (UNK_SYM, BOS_SYM, EOS_SYM)
Unit = Literal["word", "char"]


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
        self.tok = (  # splits text into these units
            WordTokenizer([UNK, EOS] + [u for u in self.stoi if u != EOS])
            if unit == "word"
            else CharTokenizer(list(self.stoi))
        )

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
        stream = self.from_token_ids(self.tok, self.tok.encode(text))
        return stream, int(np.count_nonzero(stream == self.unk_id))

    def from_token_ids(self, tok: Tokenizer, ids: np.ndarray) -> np.ndarray:
        """The sentence stream of `tok`'s ids (e.g. the tokenize stage's train split): equal to
        `encode` of the text they came from. `tok` holds this vocabulary's units (it built it,
        or is `self.tok`)."""
        to_ngram = np.array([self.stoi.get(u, self.unk_id) for u in tok.vocab], dtype=np.int64)
        to_ngram[tok.newline_id] = self.eos_id  # the line-break unit ends a sentence
        stream = to_ngram[ids]
        if not len(stream):
            return stream
        if stream[-1] != self.eos_id:  # text without a final line break
            stream = np.r_[stream, self.eos_id]
        starts = np.r_[0, np.flatnonzero(stream == self.eos_id)[:-1] + 1]  # after each </s> but the last
        return np.insert(stream, starts, self.bos_id)
