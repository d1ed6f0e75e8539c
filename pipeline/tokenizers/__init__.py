"""Tokenizers for the four neural LM types; see base.py for the shared conventions."""

from __future__ import annotations

import numpy as np

from pipeline.io import smallest_uint
from pipeline.tokenizers.base import EOS, UNK, Tokenizer, load_split_ids, load_tokenizer
from pipeline.tokenizers.char import CharTokenizer
from pipeline.tokenizers.hybrid import HybridTokenizer
from pipeline.tokenizers.subword import SubwordTokenizer
from pipeline.tokenizers.word import WordTokenizer

KINDS: dict[str, type[Tokenizer]] = {
    "char": CharTokenizer,
    "word": WordTokenizer,
    "hybrid": HybridTokenizer,
    "subword": SubwordTokenizer,
}


def train_tokenizer(kind: str, text: str, cfg, unk_marker: str | None = None) -> Tokenizer:
    """Fit tokenizer `kind` on train text with its section of params.tokenizers; `unk_marker`:
    the word the corpus' text uses for unknown words, if any (see base.py)."""
    return KINDS[kind].train(text, cfg, unk_marker)


def tokenize_splits(kind: str, texts: dict[str, str], cfg, unk_marker: str | None = None,
                    ) -> tuple[Tokenizer, dict[str, np.ndarray], dict]:
    """Fit on texts["train"], encode every split; ids in the smallest dtype, plus stats."""
    tok = train_tokenizer(kind, texts["train"], cfg, unk_marker)
    full = {split: tok.encode(text) for split, text in texts.items()}
    dtype = smallest_uint(tok.n_ids)
    ids = {split: a.astype(dtype) for split, a in full.items()}
    stats: dict = {"kind": kind, "vocab_size": tok.vocab_size, "dtype": dtype.name, "unk_marker": unk_marker,
                   "splits": {}}
    for split, a in full.items():
        m = tok.model_ids(a)
        oov, marked = tok.unknowns(texts[split], a)
        s = {
            "tokens": int(len(m)),
            "chars": len(texts[split]),
            "tokens_per_char": len(m) / max(len(texts[split]), 1),
            "oov": oov,  # units outside the vocabulary
            "oov_rate": oov / max(len(m), 1),
            "unk_markers": marked,  # words that were the corpus' unknown-word marker
        }
        if kind == "hybrid":  # words spelled by the speller (not lost: the model is open)
            s["unk_words"] = tok.n_unk_words(a)
            s["unk_word_rate"] = s["unk_words"] / max(len(m), 1)
        stats["splits"][split] = s
    return tok, ids, stats


__all__ = [
    "EOS", "UNK", "KINDS", "Tokenizer", "load_split_ids", "load_tokenizer", "tokenize_splits",
    "train_tokenizer",
]
