"""RNNLM: every cell runs, sizes agree with the closed form, padding is invisible to the loss."""

import numpy as np
import pytest
import torch

from pipeline.config import CELLS, ModelConfig
from pipeline.rnn.batching import IGNORE, Batch
from pipeline.rnn.model import RNNLM, n_params
from pipeline.rnn.trainer import batch_loss

V = 23


def count_params(vocab_size: int, cfg: ModelConfig, cell: str) -> int:
    """Trainable parameters of an RNNLM(vocab_size, cfg) with this cell, in closed form."""
    g = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}[cell]  # weight blocks per layer
    V, E, H = vocab_size, cfg.embed_dim, cfg.hidden
    inputs = [E] + [H] * (cfg.layers - 1)
    rnn = sum(g * H * (i + H) + 2 * g * H for i in inputs)  # W_ih, W_hh, b_ih, b_hh per layer
    head = (0 if cfg.tie_weights else H * V) + V  # a tied softmax shares the embedding matrix
    return V * E + rnn + head


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers,tie", [(1, False), (2, True), (3, False)])
def test_cells_run_and_count_params(cell, layers, tie):
    cfg = ModelConfig(cell=cell, embed_dim=12, hidden=12 if tie else 9, layers=layers, tie_weights=tie, dropout=0.3)
    torch.manual_seed(0)
    model = RNNLM(V, cfg)
    assert model.n_params == n_params(V, cfg) == count_params(V, cfg, cell)
    assert (model.head.weight is model.embed.weight) == tie
    assert all(p.abs().max() <= cfg.init_scale for p in model.parameters())

    x = torch.randint(0, V, (4, 7))
    logits, h = model(x)
    assert logits.shape == (4, 7, V)
    states = h if isinstance(h, tuple) else (h,)
    assert len(states) == (2 if cell == "lstm" else 1)  # (h, c) for LSTM
    for a in states:
        assert a.shape == (layers, 4, cfg.hidden)
    # the state carries over: continuing from h differs from a fresh start
    model.eval()
    logits2, _ = model(x, model.detach_hidden(h))
    assert not torch.allclose(logits2, model(x)[0])
    lengths = torch.tensor([3, 7, 1, 5])  # unsorted
    assert model(x, lengths=lengths)[0].shape == (4, 7, V)


def _padded(seqs: list[np.ndarray], T: int, junk: int) -> Batch:
    """Rows [bos] + seq as inputs, seq as targets, right-padded to T with `junk` input ids."""
    x = torch.full((len(seqs), T), junk)
    y = torch.full((len(seqs), T), IGNORE)
    for r, s in enumerate(seqs):
        x[r, : len(s)] = torch.as_tensor(np.concatenate([[0], s[:-1]]))
        y[r, : len(s)] = torch.as_tensor(s)
    lengths = torch.tensor([len(s) for s in seqs])
    return Batch(x, y, lengths, int(lengths.sum()))


def _loss_and_grads(model: RNNLM, batches: list[Batch]) -> tuple[float, list[torch.Tensor]]:
    """Mean NLL per real token over all batches, and its gradient."""
    model.zero_grad()
    n = sum(b.n_tokens for b in batches)
    loss = sum(batch_loss(model, b)[0] for b in batches) / n
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_padding_changes_neither_loss_nor_gradients(cell):
    torch.manual_seed(0)
    model = RNNLM(V, ModelConfig(cell=cell, embed_dim=8, hidden=10, layers=2))
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, V, n) for n in (7, 5, 3, 6)]

    tight = _loss_and_grads(model, [_padded(seqs, 7, junk=0)])
    wide = _loss_and_grads(model, [_padded(seqs, 15, junk=V - 1)])  # longer padding, other pad ids
    shuffled = _loss_and_grads(model, [_padded([seqs[i] for i in (2, 0, 3, 1)], 11, junk=5)])  # unsorted
    alone = _loss_and_grads(model, [_padded([s], len(s), junk=0)._replace(lengths=None) for s in seqs])
    for loss, grads in (wide, shuffled, alone):
        assert loss == pytest.approx(tight[0], abs=1e-6)
        for g, g0 in zip(grads, tight[1]):
            torch.testing.assert_close(g, g0, atol=1e-6, rtol=0)


def test_padded_positions_get_zero_gradient():
    torch.manual_seed(0)
    model = RNNLM(V, ModelConfig(cell="lstm", embed_dim=8, hidden=10, layers=1))
    batch = _padded([np.array([1, 2, 3]), np.array([4])], 6, junk=V - 1)
    batch_loss(model, batch)[0].backward()
    assert model.embed.weight.grad[V - 1].abs().sum() == 0  # the pad id is used only at padding
