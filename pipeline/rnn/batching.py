"""Training batches from a 1-D id stream, addressed by a global cursor (epoch, batch index).

Both modes know `n_batches` (per epoch) and `n_tokens` (target tokens per epoch) up front, and
`epoch(e, start=k)` yields batches k, k+1, ... of epoch e, identical however the epoch was
reached, so a resumed run continues at exactly batch k. Every target token of the stream is
predicted once per epoch (stream mode drops the tail that does not fill a row); the first
token is predicted from `newline_id`, the line-break unit.

- stream: contiguous TBPTT (PyTorch word_language_model). The stream is cut into batch_size
  rows read left to right in windows of bptt; row r of batch k continues row r of batch k-1,
  so the trainer carries the (detached) state across batches. The same order every epoch.
- sentences: the stream is split into lines at `newline_id`: each line is [bos] + its tokens +
  the closing bos, inputs line[:-1], targets line[1:]; lines with more than bptt targets are
  cut into chunks of bptt (each chunk then starts from a fresh state). Chunks are shuffled per
  epoch by np.random.default_rng((seed, epoch)), a pure function of the cursor, so there is
  no generator state to save. Batches are right-padded and carry lengths; padded targets are
  IGNORE, so they add exactly zero loss and zero gradient.

Under DDP (distributed.py) batch_size is the global batch and rank r of W gets rows
[r*B/W, (r+1)*B/W) of every batch above (stream: of the row layout; sentences: of the batch's
chunks in shuffled order), so the ranks together see what one process sees, in the same order.
Each batch says how many targets the global batch has (the loss is normalized by it). Only the
last sentences batch of an epoch may leave a rank without chunks: it gets one padding row that
carries no target, so it still joins the gradient all-reduce and adds exactly nothing.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np
import torch

from pipeline.config import BatchingConfig
from pipeline.errors import UserError

IGNORE = -100  # target id at padding: F.cross_entropy's default ignore_index


class Batch(NamedTuple):
    x: torch.Tensor  # [B, T] input ids, on the training device
    y: torch.Tensor  # [B, T] target ids, IGNORE at padding
    lengths: torch.Tensor | None  # [B] real lengths (CPU, decreasing); None: no padding
    n_tokens: int  # real targets of the global batch (all ranks), a host int: no device sync


def _with_bos(ids: np.ndarray, newline_id: int) -> np.ndarray:
    if len(ids) == 0:
        raise UserError("the training split is empty: no tokens to train on")
    return np.concatenate([[newline_id], ids]).astype(np.int64)


def _to(a: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(a)
    if device.type == "cuda":
        t = t.pin_memory()  # a pinned source makes non_blocking copies truly asynchronous
    return t.to(device, non_blocking=True)


class StreamBatches:
    carries_state = True

    def __init__(self, ids: np.ndarray, batch_size: int, bptt: int, newline_id: int, device: torch.device,
                 rows: slice = slice(None)):
        data = _with_bos(ids, newline_id)
        n = (len(data) - 1) // batch_size  # targets per row
        if n < 1:
            raise UserError(f"the training split has {len(ids)} tokens, fewer than batching.batch_size "
                            f"({batch_size}); lower the batch size")
        # row r: inputs data[r*n : (r+1)*n], targets shifted by one; rows overlap by one token
        # so the target that ends row r is the input that starts row r+1. This rank keeps `rows`.
        self.x = _to(data[: batch_size * n].reshape(batch_size, n)[rows], device)  # [B/W, n]
        self.y = _to(data[1 : batch_size * n + 1].reshape(batch_size, n)[rows], device)
        self.bptt, self.batch_size = bptt, batch_size
        self.n_batches = -(-n // bptt)
        self.n_tokens = batch_size * n

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        for k in range(start, self.n_batches):
            x = self.x[:, k * self.bptt : (k + 1) * self.bptt]  # [B/W, <=bptt]
            yield Batch(x, self.y[:, k * self.bptt : (k + 1) * self.bptt], None, self.batch_size * x.size(1))


class SentenceBatches:
    carries_state = False

    def __init__(self, ids: np.ndarray, batch_size: int, bptt: int, newline_id: int, seed: int,
                 device: torch.device, rows: slice = slice(None)):
        self.data = _with_bos(ids, newline_id)
        ends = np.flatnonzero(self.data[1:] == newline_id) + 1  # the bos that closes each line
        if len(ends) == 0 or ends[-1] != len(self.data) - 1:
            ends = np.append(ends, len(self.data) - 1)  # a last line without its closing bos
        starts = np.concatenate([[0], ends[:-1]])  # each line starts at the previous closing bos
        n = ends - starts  # targets per line, >= 1
        per_line = -(-n // bptt)  # chunks per line
        line = np.repeat(np.arange(len(n)), per_line)
        part = np.arange(per_line.sum()) - np.repeat(np.cumsum(per_line) - per_line, per_line)
        self.starts = starts[line] + part * bptt  # first input position of each chunk
        self.lens = np.minimum(bptt, n[line] - part * bptt)  # targets of each chunk
        self.batch_size, self.seed, self.newline_id, self.device = batch_size, seed, newline_id, device
        self.rows = rows
        self.n_batches = -(-len(self.lens) // batch_size)
        self.n_tokens = int(self.lens.sum())

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        order = np.random.default_rng((self.seed, epoch)).permutation(len(self.lens))
        for k in range(start, self.n_batches):
            chunks = order[k * self.batch_size : (k + 1) * self.batch_size]
            n_tokens = int(self.lens[chunks].sum())  # the global batch's
            chunks = chunks[self.rows]
            if len(chunks) == 0:  # a rank past the end of the last batch: one row, no target
                x, y = np.full((1, 1), self.newline_id), np.full((1, 1), IGNORE)
                yield Batch(_to(x, self.device), _to(y, self.device), torch.ones(1, dtype=torch.long), n_tokens)
                continue
            chunks = chunks[np.argsort(-self.lens[chunks], kind="stable")]  # longest first (see model)
            lens = self.lens[chunks]
            t = np.arange(lens[0])
            pos = self.starts[chunks, None] + t  # [B, T] input positions
            real = t < lens[:, None]
            x = np.where(real, self.data[np.minimum(pos, len(self.data) - 1)], self.newline_id)
            y = np.where(real, self.data[np.minimum(pos + 1, len(self.data) - 1)], IGNORE)
            yield Batch(_to(x, self.device), _to(y, self.device), torch.from_numpy(lens), n_tokens)


def first_tokens(ids: np.ndarray, max_tokens: int | None, newline_id: int, whole_lines: bool) -> np.ndarray:
    """At most `max_tokens` ids from the start; with `whole_lines`, up to the last line's
    closing `newline_id` that fits (the first line whole if none does)."""
    if max_tokens is None or len(ids) <= max_tokens:
        return ids
    if not whole_lines:
        return ids[:max_tokens]
    ends = np.flatnonzero(ids == newline_id) + 1  # one past each closing bos
    fits = ends[ends <= max_tokens]
    return ids[: fits[-1] if len(fits) else (ends[0] if len(ends) else len(ids))]


def make_batches(ids: np.ndarray, cfg: BatchingConfig, *, max_tokens: int | None, newline_id: int, seed: int,
                 device: torch.device, rows: slice = slice(None)) -> StreamBatches | SentenceBatches:
    """Batches of the first `max_tokens` ids (sentences mode: of whole lines); of each, the rows
    `rows` (a rank's share, distributed.Group.rows)."""
    ids = first_tokens(np.asarray(ids, dtype=np.int64), max_tokens, newline_id, whole_lines=cfg.mode == "sentences")
    if cfg.mode == "stream":
        return StreamBatches(ids, cfg.batch_size, cfg.bptt, newline_id, device, rows)
    return SentenceBatches(ids, cfg.batch_size, cfg.bptt, newline_id, seed, device, rows)
