"""The n-gram model's symbols, and text or tokenizer ids -> id streams of sentences.

Symbols are the ARPA strings, id = position: `<unk>`, `<s>`, `</s>`, then the tokenizer's
units in its order. So the n-gram baseline uses exactly the word RNN's train-only vocabulary
(or the char tokenizer's alphabet): a unit outside it is `<unk>`, and counted as OOV.

Each line of the text is a sentence: `<s> u1 .. un </s>`. `</s>` is the line break (for words
the end-of-line the evaluator counts as a word, for characters the newline); `<s>` is only
ever context. Lines are the evaluator's (only "\n" ends one, "\r" is a character). Text is
split into units by the word or char tokenizer itself, rebuilt from the symbols with the
tokenizer's unknown-word marker, so the stream of a text equals the stream of its
tokenize-stage ids.

The reserved symbols never collide with text. A literal `<s>`, `</s>` or `<unk>` in the text is
an ordinary word (in the vocabulary if the tokenizer's is, else `<unk>` like any unknown word),
written in the ARPA file with its `<` escaped: `<U+003C>s>`. The one exception is the corpus'
unknown-word marker (`unk_marker`, PTB's `<unk>`): the word tokenizer maps it to `<unk>`, so
here it is the `<unk>` symbol, as KenLM reads a literal `<unk>` in text (`n_unk_marker` counts
it apart from `n_oov`).

ARPA separates fields by whitespace, so character symbols that are whitespace or not
printable are written `<U+XXXX>`; every other character stands for itself. Single
characters and `<...>` escapes cannot collide, so the mapping is lossless. Word symbols are
the words, but for those that would read as a reserved symbol or as an escape (`<unk>`, `<s>`,
`</s>`, `<U+...`): their first `<` is written `<U+003C>`, which makes the mapping lossless too.
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


LT = "<U+003C>"  # "<" escaped: the start of a word symbol that would read as reserved or escaped


def escape_word(w: str) -> str:
    return LT + w[1:] if w in RESERVED or w.startswith("<U+") else w


def unescape_word(sym: str) -> str:
    return "<" + sym[len(LT):] if sym.startswith(LT) else sym


class NgramVocab:
    """`symbols[i]` is the ARPA string of id i; `encode` turns text into a sentence stream."""

    def __init__(self, symbols: list[str], unit: Unit, unk_marker: str | None = None):
        """`unk_marker`: the word the text uses for unknown words (the tokenizer's), or None."""
        missing = [s for s in RESERVED if s not in symbols]
        if missing:
            raise UserError(f"n-gram vocabulary lacks {missing}; it needs {list(RESERVED)}")
        self.symbols, self.unit = symbols, unit
        self.unk_id, self.bos_id, self.eos_id = (symbols.index(s) for s in RESERVED)
        units = ((unescape_word if unit == "word" else unescape_symbol)(s) for s in symbols)
        # text unit -> id; the reserved symbols are no text units
        self.stoi = {u: i for i, (u, s) in enumerate(zip(units, symbols)) if s not in RESERVED}
        self.tok = (  # splits text into these units
            WordTokenizer([UNK, EOS] + list(self.stoi), unk_marker)
            if unit == "word"
            else CharTokenizer(list(self.stoi), unk_marker)
        )

    @classmethod
    def from_tokenizer(cls, tok: Tokenizer, unit: Unit) -> "NgramVocab":
        """The tokenizer's units and marker; its `<unk>` is ours, its line-break unit `</s>`."""
        if tok.kind != unit:
            raise UserError(f"n-gram unit {unit!r} needs the {unit} tokenizer, got a {tok.kind} one")
        escape = escape_word if unit == "word" else escape_char
        units = [escape(u) for i, u in enumerate(tok.vocab) if i not in (tok.unk_id, tok.newline_id)]
        return cls([UNK_SYM, BOS_SYM, EOS_SYM] + units, unit, tok.unk_marker)

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> tuple[np.ndarray, int]:
        """(stream, n_oov): int64 ids `<s> u.. </s> <s> u.. </s> ...`, one sentence per line;
        n_oov = units outside the vocabulary (mapped to `<unk>`; the marker is not counted)."""
        ids = self.tok.encode(text)
        return self.from_token_ids(self.tok, ids), self.tok.unknowns(text, ids)[0]

    def n_unk_marker(self, text: str) -> int:
        """Words of `text` that are the unknown-word marker."""
        return self.tok.n_unk_marker(text)

    def from_token_ids(self, tok: Tokenizer, ids: np.ndarray) -> np.ndarray:
        """The sentence stream of `tok`'s ids (e.g. the tokenize stage's train split): equal to
        `encode` of the text they came from. `tok` holds this vocabulary's units (it built it,
        or is `self.tok`)."""
        to_ngram = np.array([self.stoi.get(u, self.unk_id) for u in tok.vocab], dtype=np.int64)
        to_ngram[tok.unk_id] = self.unk_id  # specials by position: a word may be spelled like one
        to_ngram[tok.newline_id] = self.eos_id  # the line-break unit ends a sentence
        stream = to_ngram[ids]
        if not len(stream):
            return stream
        if stream[-1] != self.eos_id:  # text without a final line break
            stream = np.r_[stream, self.eos_id]
        starts = np.r_[0, np.flatnonzero(stream == self.eos_id)[:-1] + 1]  # after each </s> but the last
        return np.insert(stream, starts, self.bos_id)
