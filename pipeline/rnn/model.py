"""The RNN language model: embedding -> fused recurrent stack -> dropout -> linear softmax.

Dropout as in Zaremba et al. 2014: on the embedding output, between recurrent layers (the
fused module's own `dropout=`), and before the softmax; never on the recurrent connections.
Every parameter is drawn uniformly from [-init_scale, init_scale] (biases included).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from pipeline.config import ModelConfig


Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # [layers, B, H], (h, c) for LSTM


def n_params(vocab_size: int, cfg: ModelConfig) -> int:
    """The size of RNNLM(vocab_size, cfg), counted without allocating it (on the meta device):
    the one place a model's size is computed."""
    with torch.device("meta"):
        return RNNLM(vocab_size, cfg).n_params


class RNNLM(nn.Module):
    def __init__(self, vocab_size: int, cfg: ModelConfig):
        super().__init__()
        self.vocab_size, self.cell = vocab_size, cfg.cell
        self.embed = nn.Embedding(vocab_size, cfg.embed_dim)
        self.drop = nn.Dropout(cfg.dropout)
        kw = dict(num_layers=cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        if cfg.cell == "lstm":
            self.rnn = nn.LSTM(cfg.embed_dim, cfg.hidden, **kw)
        elif cfg.cell == "gru":
            self.rnn = nn.GRU(cfg.embed_dim, cfg.hidden, **kw)
        else:
            self.rnn = nn.RNN(cfg.embed_dim, cfg.hidden, nonlinearity=cfg.cell.removeprefix("rnn_"), **kw)
        self.head = nn.Linear(cfg.hidden, vocab_size)
        if cfg.tie_weights:
            self.head.weight = self.embed.weight  # [V, H] == [V, E] (the config checks E == H)
        for p in self.parameters():
            nn.init.uniform_(p, -cfg.init_scale, cfg.init_scale)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())  # parameters() counts a tied matrix once

    def forward(
        self, x: torch.Tensor, hidden: Hidden | None = None, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Hidden]:
        """x: [B, T] ids -> logits [B, T, V] and the state after each row's last real step.

        `lengths` ([B], CPU) marks rows right-padded beyond their length: they are packed, so
        padding never enters the recurrence; the logits at padded positions are meaningless
        (the loss must ignore them)."""
        emb = self.drop(self.embed(x))  # [B, T, E]
        if lengths is None:
            out, hidden = self.rnn(emb, hidden)  # [B, T, H]
        else:
            # Rows already sorted by decreasing length (the trainer's batches) skip the
            # host->device copy of a sort permutation, which would sync CUDA every batch.
            is_sorted = bool((lengths[:-1] >= lengths[1:]).all())
            packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=is_sorted)
            out, hidden = self.rnn(packed, hidden)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))  # zeros at padding
        return self.head(self.drop(out)), hidden

    @staticmethod
    def detach_hidden(h: Hidden | None) -> Hidden | None:
        """Cut the graph at a TBPTT window boundary, keeping the values."""
        if h is None:
            return None
        return tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach()
