"""RNN models behind the common evaluator's `Scorer` protocol.

`sequence_nll` is the one scoring loop: each sequence is scored from a fresh state, its
first token conditioned on `newline_id` (the line-break unit), the state carried across bptt
windows. Sequences are batched by length (right-padded, so padding only ever follows the
real tokens of a row and never reaches their state), and the per-sequence sums are added in
float64 in input order. Batch size and bptt change the speed, not the score. Under DDP the
batches are dealt round-robin over the ranks and the per-sequence sums all-reduced (each rank
adds exact zeros for the others' sequences), so every rank holds the one-process numbers, bit
for bit: the same batches, the same kernels, the same order of addition.

Hybrid (open vocabulary, Mikolov-style word model with a character speller):
    log P(w | ctx) = log P_word(w | ctx)                             if w is in the vocabulary
                   = log P_word(<unk> | ctx) + log P_speller(w <eow>)  otherwise
The speller is a character RNN trained on the spellings of the train words that fell out of
the vocabulary (each occurrence counts), so its mass goes where <unk> words actually are.
Strictly the speller can also spell in-vocabulary words, a little mass that no string
receives; the hybrid's NLL is therefore an upper bound, never flattering, and its bits/char
compare directly with the char and subword models.
The corpus' unknown-word marker (PTB's `<unk>`), when named, is the `<unk>` with the empty
spelling: log P_word(<unk> | ctx) + log P_speller(<eow>). Spelled words are non-empty, so the
marker and the spelled words share P_word(<unk> | ctx) without counting it twice, and the
probabilities of all texts still sum to at most 1. Such a text is scored as it is written,
so it is not open-vocabulary (`n_unk_marker` > 0): its real words are unknown.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.config import EvalConfig
from pipeline.evaluation import Score
from pipeline.rnn import distributed
from pipeline.rnn.model import RNNLM
from pipeline.tokenizers import Tokenizer
from pipeline.tokenizers.hybrid import HybridTokenizer


@torch.no_grad()
def sequence_nll(
    model: RNNLM, seqs: list[np.ndarray], newline_id: int, batch_size: int, bptt: int, device: torch.device
) -> np.ndarray:
    """Summed NLL (nats, float64) of each sequence, in input order. seqs: 1-D int arrays. Every
    rank of the training group calls it alike and gets all of it."""
    group = distributed.group()
    was_training = model.training
    model.eval()
    out = np.zeros(len(seqs), dtype=np.float64)
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))  # similar lengths together
    for b in range(group.rank * batch_size, len(order), group.world * batch_size):  # this rank's batches
        rows = [i for i in order[b : b + batch_size] if len(seqs[i])]
        if not rows:
            continue
        lengths = torch.tensor([len(seqs[i]) for i in rows])
        T = int(lengths.max())
        tgt = torch.zeros(len(rows), T, dtype=torch.long)  # (B, T) right-padded targets
        for r, i in enumerate(rows):
            tgt[r, : len(seqs[i])] = torch.from_numpy(seqs[i].astype(np.int64))
        inp = torch.cat([torch.full((len(rows), 1), newline_id), tgt[:, :-1]], dim=1)  # shift right
        mask = torch.arange(T)[None, :] < lengths[:, None]
        inp, tgt, mask = inp.to(device), tgt.to(device), mask.to(device)
        sums = torch.zeros(len(rows), dtype=torch.float64, device=device)
        hidden = None
        for t in range(0, T, bptt):
            logits, hidden = model(inp[:, t : t + bptt], hidden)
            nll = F.cross_entropy(logits.float().transpose(1, 2), tgt[:, t : t + bptt], reduction="none")
            sums += (nll.double() * mask[:, t : t + bptt]).sum(dim=1)
        out[rows] = sums.cpu().numpy()
    model.train(was_training)
    return group.sum(torch.from_numpy(out).to(group.comm)).cpu().numpy()


def speller_nll(speller: RNNLM, spellings: list[np.ndarray], eow_id: int, cfg: EvalConfig,
                device: torch.device) -> np.ndarray:
    """Summed NLL of each spelling (its <eow> included), each from a fresh state after <eow>."""
    return sequence_nll(speller, spellings, eow_id, cfg.batch_size, cfg.bptt, device)


class RNNScorer:
    """The model predicts the tokenizer's ids directly (char, word, subword). `open_vocab`:
    whether the LM type gives every string a probability when nothing is scored as <unk>."""

    def __init__(self, model: RNNLM, tok: Tokenizer, cfg: EvalConfig, device: torch.device, open_vocab: bool):
        self.model, self.tok, self.cfg, self.device = model, tok, cfg, device
        self.open_vocab = open_vocab

    def score(self, segments: list[str]) -> Score:
        ids = [self.tok.encode(s) for s in segments]
        nll, n_tokens = self.nll(ids)
        oov, marked = (sum(c) for c in zip(*map(self.tok.unknowns, segments, ids))) if ids else (0, 0)
        return Score(nll, n_tokens, oov, marked)

    def nll(self, ids: list[np.ndarray]) -> tuple[np.ndarray, int]:
        """Each encoded segment's summed NLL ([S] float64), and the number of tokens the model predicts."""
        seqs = [self.tok.model_ids(a) for a in ids]
        nll = sequence_nll(self.model, seqs, self.tok.newline_id, self.cfg.batch_size, self.cfg.bptt, self.device)
        return nll, sum(map(len, seqs))


class HybridScorer(RNNScorer):
    """Word RNN + speller: every <unk> is charged log P_speller of its spelling (the marker's:
    <eow> alone)."""

    def __init__(self, model: RNNLM, speller: RNNLM, tok: HybridTokenizer, cfg: EvalConfig, device: torch.device):
        super().__init__(model, tok, cfg, device, open_vocab=True)
        self.speller = speller

    def nll(self, ids: list[np.ndarray]) -> tuple[np.ndarray, int]:
        words, n_tokens = super().nll(ids)
        per_segment = [self.tok.spellings(a) for a in ids]
        spellings = [np.asarray(s) for spelled in per_segment for s in spelled]
        spelled = speller_nll(self.speller, spellings, self.tok.eow_id, self.cfg, self.device)
        segment = np.repeat(np.arange(len(ids)), [len(p) for p in per_segment])  # each spelling's segment
        return words + np.bincount(segment, weights=spelled, minlength=len(ids)), n_tokens
