"""The query side of a back-off n-gram model: sorted key arrays, vectorised lookups.

An order-k n-gram `u1 .. uk` is stored under the integer key `prefix * V + uk`, where
`prefix` is the row of `u1 .. u(k-1)` in order k-1 (order 1 is dense: row = key = word id)
and V the vocabulary size. Keys are exact (no hashing) and fit int64 for any real model.

Queries follow the ARPA back-off recursion exactly as KenLM evaluates it:
    log P(w | h) = logp(longest stored suffix g of h+w) + sum of backoff(c)
                   over the stored contexts c (suffixes of h) longer than g's context,
which equals the interpolated probability when the file came from `kneser_ney.estimate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.ngram.vocab import BOS_SYM


@dataclass(frozen=True)
class Order:
    """The stored n-grams of one length k, sorted by key; all arrays (n,)."""

    keys: np.ndarray  # int64: prefix row * V + last word id
    logp: np.ndarray  # float64: log10 P(last word | prefix), interpolated
    backoff: np.ndarray  # float64: log10 back-off weight as a context (0: not a context)

    def find(self, keys: np.ndarray) -> np.ndarray:
        """Rows of `keys`, -1 where absent."""
        if not len(self.keys):
            return np.full(len(keys), -1)
        pos = np.searchsorted(self.keys, keys).clip(max=len(self.keys) - 1)
        return np.where(self.keys[pos] == keys, pos, -1)


def history(tokens: np.ndarray, bos_id: int) -> np.ndarray:
    """h[..., i] = tokens before i that i may condition on: back to the row's last <s> (which
    counts) or the row start."""
    col = np.arange(tokens.shape[-1])
    return col - np.maximum.accumulate(np.where(tokens == bos_id, col, 0), axis=-1)


def _previous(rows: np.ndarray) -> np.ndarray:
    """rows shifted right by one: the value at i-1, -1 at i = 0."""
    out = np.empty_like(rows)
    out[:1], out[1:] = -1, rows[:-1]
    return out


class NgramModel:
    def __init__(self, symbols: list[str], orders: list[Order]):
        self.symbols, self.orders = symbols, orders
        self.bos_id = symbols.index(BOS_SYM)
        if not np.array_equal(orders[0].keys, np.arange(len(symbols))):
            raise ValueError("order 1 must hold every symbol, row = id")

    @property
    def order(self) -> int:
        return len(self.orders)

    @property
    def n_params(self) -> int:
        """Stored n-grams, all orders (the vocabulary included)."""
        return sum(len(o.keys) for o in self.orders)

    def ngrams(self, k: int) -> np.ndarray:
        """(n_k, k) word ids of the order-k n-grams, in row order (walks the prefix chain)."""
        V = len(self.symbols)
        rows = np.arange(len(self.orders[k - 1].keys))
        out = np.empty((len(rows), k), dtype=np.int64)
        for j in range(k, 0, -1):
            keys = self.orders[j - 1].keys[rows]
            out[:, j - 1], rows = keys % V, keys // V
        return out

    def logprob10(self, tokens: np.ndarray) -> np.ndarray:
        """log10 P(tokens[..., i] | its history) for every position, NaN at <s> (never predicted).

        tokens: int ids, shape (..., L); each row is read left to right, context restarting at
        every <s> (a sentence stream is one row: `<s> a b </s> <s> c </s>`)."""
        tokens = np.asarray(tokens, dtype=np.int64)
        t = tokens.ravel()
        is_bos = t == self.bos_id
        h = np.minimum(history(tokens, self.bos_id).ravel(), self.order - 1)
        V = len(self.symbols)

        # rows[k][i]: row in order k of the k-gram ending at i, -1 if it or a shorter suffix is
        # not stored (KenLM stops extending at the first miss)
        rows, longest = [None, t], np.ones(len(t), dtype=np.int64)
        for k in range(2, self.order + 1):
            prefix = _previous(rows[k - 1])
            ok = np.flatnonzero((h >= k - 1) & (prefix >= 0) & (rows[k - 1] >= 0))
            r = np.full(len(t), -1, dtype=np.int64)
            r[ok] = self.orders[k - 1].find(prefix[ok] * V + t[ok])
            rows.append(r)
            longest[r >= 0] = k

        lp = np.empty(len(t))
        for k in range(1, self.order + 1):
            at = longest == k
            lp[at] = self.orders[k - 1].logp[rows[k][at]]
        for j in range(1, self.order):  # back off from every stored context longer than the match
            ctx = _previous(rows[j])
            at = (j >= longest) & (j <= h) & (ctx >= 0)
            lp[at] += self.orders[j - 1].backoff[ctx[at]]
        lp[is_bos] = np.nan
        return lp.reshape(tokens.shape)
