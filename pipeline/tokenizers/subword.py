"""Subword tokenizer: byte-level BPE (HF `tokenizers`), lossless on any UTF-8 text.

Bytes are mapped to 256 printable symbols first (GPT-2 style), so there is no `<unk>`:
every string has an encoding and decode(encode(text)) == text. Text is encoded line by line
(`encode_batch`, parallel in Rust) so the ids of a line never depend on its neighbours:
training streams and evaluation segments see the same pieces.

The corpus' unknown-word marker (`unk_marker`, e.g. PTB's `<unk>`) is ordinary text here (BPE
has no unknown class; it usually becomes a piece of its own): the evaluator still counts its
occurrences (n_unk_marker), so a text that has one is not scored open-vocab.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.config import SubwordTokenizerConfig
from pipeline.text import split_lines
from pipeline.tokenizers.base import Tokenizer

if TYPE_CHECKING:  # imported where a subword tokenizer is made: stages that use none skip it
    from tokenizers import Tokenizer as HFTokenizer


class SubwordTokenizer(Tokenizer):
    kind = "subword"

    def __init__(self, hf: HFTokenizer, unk_marker: str | None = None):
        self.hf, self.unk_marker = hf, unk_marker
        size = hf.get_vocab_size()
        itos = {i: s for s, i in hf.get_vocab().items()}
        self.vocab = [itos[i] for i in range(size)]
        self.unk_id = None
        self.newline_id = int(hf.encode("\n").ids[0])

    @classmethod
    def train(cls, text: str, cfg: SubwordTokenizerConfig, unk_marker: str | None = None) -> "SubwordTokenizer":
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=cfg.vocab_size,
            min_frequency=cfg.min_frequency,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        hf.train_from_iterator(split_lines(text), trainer=trainer)
        return cls(hf, unk_marker)

    def encode(self, text: str) -> np.ndarray:
        encs = self.hf.encode_batch(split_lines(text), add_special_tokens=False)
        return np.fromiter((i for e in encs for i in e.ids), dtype=np.int64)

    def decode(self, ids) -> str:
        return self.hf.decode(np.asarray(ids).tolist(), skip_special_tokens=False)

    def state(self) -> dict:
        return {"hf": self.hf.to_str(), "unk_marker": self.unk_marker}

    @classmethod
    def from_state(cls, state: dict) -> "SubwordTokenizer":
        from tokenizers import Tokenizer as HFTokenizer

        return cls(HFTokenizer.from_str(state["hf"]), state.get("unk_marker"))
