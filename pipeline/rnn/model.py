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
from pipeline.errors import UserError


Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # [layers, B, H], (h, c) for LSTM


def n_params(vocab_size: int, cfg: ModelConfig) -> int:
    """The size of RNNLM(vocab_size, cfg), counted without allocating it (on the meta device):
    the one place a model's size is computed."""
    with torch.device("meta"):
        return RNNLM(vocab_size, cfg).n_params


def solve_size(vocab_size: int, cfg: ModelConfig, budget: int | None = None, what: str = "model") -> ModelConfig:
    """`cfg` with concrete sizes, ready for RNNLM: hidden as given (embed_dim null: equal to it),
    or, with a `param_budget`, the largest hidden H with embed_dim = H whose n_params stays
    within it. `budget` overrides the config's (the hybrid's word model gets what its speller
    leaves). n_params grows with H, so bisection finds H; the model falls short of the budget by
    less than one step of H. A budget that not even H = 1 fits is the params' error."""
    if cfg.param_budget is None:
        return cfg if cfg.embed_dim is not None else cfg.model_copy(update={"embed_dim": cfg.hidden})
    budget = cfg.param_budget if budget is None else budget

    def sized(h: int) -> ModelConfig:
        return cfg.model_copy(update={"hidden": h, "embed_dim": h, "param_budget": None})

    smallest = n_params(vocab_size, sized(1))
    if smallest > budget:
        raise UserError(f"params.yaml: train.model.param_budget: {cfg.param_budget:,} parameters are too few for the {what}: "
                        f"its smallest ({cfg.layers} x {cfg.cell}, hidden 1, vocabulary {vocab_size:,}) has "
                        f"{smallest:,}")
    lo, hi = 1, 2  # n_params(lo) <= budget < n_params(hi)
    while n_params(vocab_size, sized(hi)) <= budget:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if n_params(vocab_size, sized(mid)) <= budget else (lo, mid)
    return sized(lo)


class RNNLM(nn.Module):
    def __init__(self, vocab_size: int, cfg: ModelConfig):
        super().__init__()
        if cfg.hidden is None or cfg.embed_dim is None:
            raise ValueError("a model config with a param_budget or no embed_dim: solve_size() it first")
        self.vocab_size, self.cell = vocab_size, cfg.cell
        # a weight of its own spares Embedding's normal_ init, which the uniform_ below replaces
        # (and which, on the meta device of n_params, imports sympy: 1.4 s)
        self.embed = nn.Embedding(vocab_size, cfg.embed_dim, _weight=torch.empty(vocab_size, cfg.embed_dim))
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
