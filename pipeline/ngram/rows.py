"""Text of many rows at once, built with numpy: what writing a 20 MB ARPA file line by line
in Python (an f-string per line, a join per n-gram) spent most of its time on.

A column of strings is `Strings`: byte strings stored end to end. `format_g7` formats a whole
float array exactly as Python's "%.7g" does; `join_rows` concatenates, row by row,
one string taken from each column, with one gather over the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# i = 0..9999 as "dddd", 4 ASCII bytes seen as one uint32, and its trailing zeros (4 for 0)
_I4 = np.arange(10_000)
_DIGITS4 = (48 + _I4[:, None] // np.array([1000, 100, 10, 1]) % 10).astype(np.uint8).view(np.uint32).ravel()
_ZEROS4 = sum(_I4 % 10**j == 0 for j in range(1, 5))
# |x| * 10^(6-e) is exact but for one rounding (relative 1e-16), so rounding it to an integer is
# certain unless the fraction is this close to one half; those values go to Python.
HALFWAY_MARGIN = 1e-6
_POW10 = 10.0 ** np.arange(11)  # exact
# Every fixed-point "%.7g" string is some of these bytes, in order: the sign, "0.000", the 7
# digits up to the point, the point, the 7 digits after it. Which ones: a row of _KEEP.
LAYOUT = b"-0.000" + b"0" * 7 + b"." + b"0" * 7


@dataclass(frozen=True)
class Strings:
    """n byte strings stored end to end: string i is buf[start[i] : start[i] + length[i]]."""

    buf: np.ndarray  # uint8
    start: np.ndarray  # int64 (n,)
    length: np.ndarray  # int64 (n,)

    @classmethod
    def of(cls, items: list[bytes]) -> "Strings":
        length = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
        return cls(np.frombuffer(b"".join(items), dtype=np.uint8), np.cumsum(length) - length, length)


def format_g7(x: np.ndarray, end: bytes = b"", where: np.ndarray | None = None) -> Strings:
    """Each value as `f"{v:.7g}".encode() + end`, byte for byte (the empty string where
    `where` is False).

    The fixed-point case, -4 <= e < 7 (e: the decimal exponent), is done in numpy: |x| *
    10^(6-e) rounded to a 7-digit integer, whose digits are laid out as "%g" does, trailing
    zeros and a bare point dropped. The rest (exponent notation, zeros, infinities, NaN) and
    values within HALFWAY_MARGIN of a rounding tie (where correct rounding needs the exact
    binary value) are formatted by Python: for log10 probabilities and back-offs, a handful
    per million."""
    x = np.asarray(x, dtype=np.float64)
    if where is not None:
        some = format_g7(x[where], end)
        start, length = np.zeros(len(x), dtype=np.int64), np.zeros(len(x), dtype=np.int64)
        start[where], length[where] = some.start, some.length
        return Strings(some.buf, start, length)
    a = np.abs(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.floor(np.log10(a))
    slow = ~((e >= -4) & (e <= 6))  # exponent notation, zero, infinities, NaN
    a, e = np.where(slow, 1.0, a), np.where(slow, 0, e).astype(np.int64)  # placeholders
    scaled = a * _POW10[6 - e]
    r = np.floor(scaled + 0.5).astype(np.int64)
    # to Python too: near-ties, and the rare value whose rounding carries to 10^7 (9.9999996)
    # or whose log10 was one off (next to a power of ten)
    slow |= (np.abs(scaled - np.floor(scaled) - 0.5) < HALFWAY_MARGIN) | (r < 1_000_000) | (r >= 10_000_000)
    r = np.where(slow, 1_000_000, r)  # placeholder digits
    hi, lo = r // 10_000, r % 10_000
    sig = 7 - np.where(lo == 0, 4 + _ZEROS4[hi], _ZEROS4[lo])  # digits up to the last nonzero one
    layout = _layout(np.signbit(x), e, sig)

    # one row per value: LAYOUT with its digits, then `end`; each byte kept or not
    width = len(LAYOUT) + len(end)
    chars = np.empty((len(x), width), dtype=np.uint8)
    chars[:] = np.frombuffer(LAYOUT + end, dtype=np.uint8)
    digits = np.stack([_DIGITS4[hi], _DIGITS4[lo]], axis=1).view(np.uint8)[:, 1:]  # "0hhh" "llll"
    chars[:, 6:13], chars[:, 14:21] = digits, digits
    keep = np.ones((len(x), width), dtype=bool)
    keep[:, : len(LAYOUT)] = _KEEP[layout]
    length = _LENGTH[layout] + len(end)

    if slow.any():
        texts = [f"{v:.7g}".encode() + end for v in x[slow].tolist()]
        length[slow] = [len(t) for t in texts]
        chars[slow] = np.array(texts, dtype=f"S{width}").view(np.uint8).reshape(-1, width)
        keep[slow] = np.arange(width) < length[slow, None]
    # np.compress on the flat arrays: several times faster than chars[keep] on 2-D ones
    return Strings(np.compress(keep.ravel(), chars.ravel()), np.cumsum(length) - length, length)


def _layout(negative: np.ndarray, e: np.ndarray, sig: np.ndarray) -> np.ndarray:
    """The row of _KEEP of values with this sign, decimal exponent (-4..6) and number of
    significant digits (1..7)."""
    return ((e + 4) * 7 + sig - 1) * 2 + negative


def _keep_table() -> np.ndarray:
    """Which bytes of LAYOUT "%.7g" writes, for every sign, exponent and significant digits."""
    negative, e, sig = (a.ravel() for a in np.meshgrid([False, True], np.arange(-4, 7), np.arange(1, 8), indexing="ij"))
    j = np.arange(7)
    point = np.where(e < 0, -1, e)[:, None]  # digits 0..point go before the point
    keep = np.zeros((len(e), len(LAYOUT)), dtype=bool)
    keep[:, 0] = negative
    keep[:, 1:3] = (e < 0)[:, None]  # 0.
    keep[:, 3:6] = j[:3] < (-e - 1)[:, None]  # 0.000ddd
    keep[:, 6:13] = j <= point
    keep[:, 13] = (e >= 0) & (sig > e + 1)
    keep[:, 14:21] = (j > point) & (j < sig[:, None])
    table = np.empty_like(keep)
    table[_layout(negative, e, sig)] = keep
    return table


_KEEP = _keep_table()
_LENGTH = np.count_nonzero(_KEEP, axis=1)


def join_rows(columns: list[tuple[Strings, np.ndarray]]) -> bytes:
    """Row i is the concatenation over the columns (strings, index) of strings[index[i]]; the
    rows are concatenated too (each brings its own separators and line end)."""
    sizes = [len(s.buf) for s, _ in columns]
    src = np.concatenate([s.buf for s, _ in columns])
    offset = np.cumsum(sizes) - sizes
    start = np.stack([s.start[i] + o for (s, i), o in zip(columns, offset)], axis=1).ravel()
    length = np.stack([s.length[i] for s, i in columns], axis=1).ravel()
    start, length = start[length > 0], length[length > 0]
    # The source index of each output byte, as a running sum: +1 within a piece, and at a
    # piece's first byte the jump from the previous piece's last byte (fewer passes over the
    # bytes than np.repeat + np.arange).
    step = np.ones(int(length.sum()), dtype=np.int64)
    if len(step):
        firsts = np.cumsum(length[:-1])
        step[0] = start[0]
        step[firsts] = start[1:] - (start[:-1] + length[:-1] - 1)
        np.cumsum(step, out=step)
    return np.take(src, step).tobytes()
