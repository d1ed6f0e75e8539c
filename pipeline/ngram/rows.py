"""Text of many rows at once, built with numpy: what writing a 20 MB ARPA file line by line
in Python (an f-string per line, a join per n-gram) spent most of its time on.

A column of strings is `Strings`: byte strings stored end to end. `format_g7` formats a whole
float array exactly as Python's "%.7g" does; `join_rows` concatenates, row by row,
one string taken from each column, with one gather over the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# i = 0..9999 as "dddd": the value of those 4 ASCII bytes as a little-endian integer; and its
# trailing zeros (4 for 0)
_I4 = np.arange(10_000)
_DIGITS4 = (
    (48 + _I4[:, None] // np.array([1000, 100, 10, 1]) % 10).astype(np.uint8).view("<u4").ravel().astype(np.uint64)
)
_ZEROS4 = sum(_I4 % 10**j == 0 for j in range(1, 5))
# |x| * 10^(6-e) is exact but for one rounding (relative 1e-16), so rounding it to an integer is
# certain unless the fraction is this close to one half; those values go to Python.
HALFWAY_MARGIN = 1e-6
_POW10 = 10.0 ** np.arange(11)  # exact
WIDTH = 16  # bytes per value: the longest "%.7g" string (14) and a 1- or 2-byte `end`
_MINUS_ZERO_POINT, _ZEROS = int.from_bytes(b"-0.", "little"), int.from_bytes(b"000", "little")


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
    assert len(end) <= WIDTH - 14
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
    rows, length = _fixed_point(np.where(slow, 1_000_000, r), e)
    start = np.arange(len(x)) * WIDTH + 1  # after the "-"
    chars = rows.view(np.uint8).reshape(-1)
    for i, byte in enumerate(end):
        chars[start + length + i] = byte
    negative = np.signbit(x)
    start, length = start - negative, length + negative + len(end)

    if slow.any():
        texts = [f"{v:.7g}".encode() + end for v in x[slow].tolist()]
        rows[slow] = np.array(texts, dtype=f"S{WIDTH}").view("<u8").reshape(-1, 2)
        start[slow], length[slow] = np.flatnonzero(slow) * WIDTH, [len(t) for t in texts]
    return Strings(chars, start, length)


def _fixed_point(r: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The "%.7g" text of r * 10^(e-6) (r: 7 digits, -4 <= e <= 6) after a "-", each in a row of
    WIDTH bytes (two little-endian uint64s), and its length without the "-": for e >= 0 the
    digits with "." after digit e, for e < 0 "0.", -e-1 zeros and the digits; the length
    drops trailing zeros, and a bare point."""
    hi, lo = r // 10_000, r % 10_000
    digits = (_DIGITS4[hi] >> 8) | (_DIGITS4[lo] << 24)  # byte j: digit j
    sig = (7 - np.where(lo == 0, 4 + _ZEROS4[hi], _ZEROS4[lo])).astype(np.uint64)  # up to the last nonzero digit
    small = e < 0
    before = np.where(small, 0, e + 1).astype(np.uint64)  # digits before the point
    low = (1 << 8 * before) - 1
    with_point = (digits & low) | (ord(".") << 8 * before) | ((digits & ~low) << 8)  # 8 bytes
    zeros = np.where(small, -e - 1, 0).astype(np.uint64)
    leading = _MINUS_ZERO_POINT | (_ZEROS & ((1 << 8 * zeros) - 1)) << 24  # "-0." and the zeros
    rows = np.empty((len(r), 2), dtype="<u8")
    rows[:, 0] = np.where(small, leading | digits << 8 * (3 + zeros), ord("-") | with_point << 8)
    rows[:, 1] = np.where(small, digits >> 8 * (5 - zeros), with_point >> 56)
    length = np.where(small, 2 + zeros + sig, np.where(sig > before, sig + 1, before))
    return rows, length.astype(np.int64)


def join_rows(columns: list[tuple[Strings, np.ndarray]]) -> bytes:
    """Row i is the concatenation over the columns (strings, index) of strings[index[i]]; the
    rows are concatenated too (each brings its own separators and line end)."""
    sizes = [len(s.buf) for s, _ in columns]
    src = np.concatenate([s.buf for s, _ in columns])
    offset = np.cumsum(sizes) - sizes
    start = np.stack([s.start[i] + o for (s, i), o in zip(columns, offset)], axis=1).ravel()
    length = np.stack([s.length[i] for s, i in columns], axis=1).ravel()
    end = np.cumsum(length)
    # output byte p of piece q is src[start[q] + p - (end[q] - length[q])]
    gather = np.repeat(start - (end - length), length)
    gather += np.arange(len(gather))
    return np.take(src, gather).tobytes()
