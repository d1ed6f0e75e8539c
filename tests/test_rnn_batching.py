"""Training batches: every target once per epoch, the cursor addresses any batch exactly."""

import numpy as np
import pytest
import torch

from pipeline.config import BatchingConfig
from pipeline.errors import UserError
from pipeline.rnn.batching import IGNORE, first_tokens, make_batches

BOS = 0
CPU = torch.device("cpu")


def _stream(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 50, n)
    ids[rng.random(n) < 0.1] = BOS  # lines of ~10 tokens, some longer than bptt
    return ids


def _batches(ids, mode, batch_size=4, bptt=6, seed=0):
    return make_batches(ids, BatchingConfig(mode=mode, batch_size=batch_size, bptt=bptt), max_tokens=None,
                        newline_id=BOS, seed=seed, device=CPU)


def _pairs(b) -> list[tuple[int, int]]:
    """(input, target) pairs of the real positions of a batch."""
    real = b.y != IGNORE
    return list(zip(b.x[real].tolist(), b.y[real].tolist()))


def test_stream_rows_are_contiguous_and_cover_the_stream():
    ids = _stream(203)
    bs = _batches(ids, "stream")
    batches = list(bs.epoch(0))
    assert len(batches) == bs.n_batches == -(-(203 // 4) // 6)
    x, y = torch.cat([b.x for b in batches], 1), torch.cat([b.y for b in batches], 1)  # [B, n]
    data = np.concatenate([[BOS], ids])
    assert x.flatten().tolist() == data[: x.numel()].tolist()  # row r continues where row r-1 ended
    assert y.flatten().tolist() == data[1 : x.numel() + 1].tolist()
    assert sum(b.n_tokens for b in batches) == bs.n_tokens == 4 * (203 // 4)
    assert all(b.lengths is None for b in batches)


def test_sentences_predict_every_token_once_from_its_line():
    ids = _stream(500)
    bs = _batches(ids, "sentences")
    batches = list(bs.epoch(0))
    assert len(batches) == bs.n_batches and sum(b.n_tokens for b in batches) == bs.n_tokens == len(ids)
    data = np.concatenate([[BOS], ids])
    expected = sorted(zip(data[:-1].tolist(), data[1:].tolist()))
    assert sorted(p for b in batches for p in _pairs(b)) == expected
    for b in batches:
        assert b.x.shape[1] <= 6 and b.lengths.tolist() == sorted(b.lengths.tolist(), reverse=True)
        assert b.n_tokens == int(b.lengths.sum()) == int((b.y != IGNORE).sum())
    # a chunk starts with bos exactly when it starts a line (the others continue a line cut at bptt)
    firsts = [int(b.x[r, 0]) for b in batches for r in range(len(b.x))]
    assert firsts.count(BOS) == (ids == BOS).sum() + (ids[-1] != BOS)


@pytest.mark.parametrize("mode", ["stream", "sentences"])
def test_cursor_resumes_at_any_batch(mode):
    bs = _batches(_stream(400), mode)
    full = list(bs.epoch(2))
    for k in (0, 3, bs.n_batches - 1):
        tail = list(_batches(_stream(400), mode).epoch(2, start=k))  # a fresh object: no hidden state
        assert len(tail) == len(full) - k
        assert all(torch.equal(a.x, b.x) and torch.equal(a.y, b.y) for a, b in zip(tail, full[k:]))


def test_sentences_shuffle_per_epoch_and_seed():
    def order(epoch, seed):
        return [b.x.tolist() for b in _batches(_stream(400), "sentences", seed=seed).epoch(epoch)]

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(1, 0)
    assert order(0, 0) != order(0, 1)


def test_too_little_data_is_a_user_error():
    with pytest.raises(UserError, match="batch_size"):
        _batches(np.array([1, 2]), "stream", batch_size=4)
    with pytest.raises(UserError, match="empty"):
        _batches(np.array([], dtype=np.int64), "sentences")


def test_max_tokens_cut_keeps_whole_lines_in_sentences_mode():
    ids = np.array([5, 6, BOS, 7, BOS, 8, 9, 9, BOS])
    assert first_tokens(ids, 6, BOS, whole_lines=False).tolist() == [5, 6, BOS, 7, BOS, 8]
    assert first_tokens(ids, 6, BOS, whole_lines=True).tolist() == [5, 6, BOS, 7, BOS]
    assert first_tokens(ids, 2, BOS, whole_lines=True).tolist() == [5, 6, BOS]  # the first line, whole
    assert first_tokens(ids, None, BOS, whole_lines=True).tolist() == ids.tolist()
    assert first_tokens(ids[:2], 1, BOS, whole_lines=True).tolist() == [5, 6]  # no closing bos at all
    b = make_batches(ids, BatchingConfig(mode="sentences", batch_size=4, bptt=6), max_tokens=6, newline_id=BOS,
                     seed=0, device=CPU)
    assert b.n_tokens == 5  # targets of [BOS 5 6 BOS] and [BOS 7 BOS]
