"""ARPA back-off files: write (optionally gzipped, atomically) and read back into an NgramModel.

    \\data\\
    ngram 1=V
    ngram 2=n2
    \\1-grams:
    log10 p<TAB>w<TAB>log10 backoff
    ...
    \\end\\

Probabilities are written as "%.7g" writes them (7 significant digits; KenLM keeps float32
anyway); a back-off weight is written only where it is not 0 (= log10 1, the value a reader
assumes when absent). The unigram symbols, in file order, are the vocabulary: id = line order.
The text is made in blocks of n-grams by numpy (rows.py), not line by line. Gzip is chosen by
the `.gz` suffix when writing (level 1) and by the magic bytes when reading; the gzip header
carries no name or time, so the same model gives the same bytes. (KenLM's query module loads
orders >= 2 only; `read_arpa` takes order 1 too.)
"""

from __future__ import annotations

import gc
import gzip
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from itertools import repeat
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np

from pipeline.errors import UserError
from pipeline.io import atomic_open
from pipeline.ngram.model import NgramModel, Order
from pipeline.ngram.rows import Strings, format_g7, join_rows
from pipeline.ngram.vocab import RESERVED

# Level 1: about 3x faster than gzip's default 6 on ARPA text, for a file about 15% bigger.
GZIP_LEVEL = 1
CHUNK = 1 << 15  # n-grams per block of text: its gather index (~10 MB) stays in the L3 cache


def write_arpa(model: NgramModel, path: str | Path) -> None:
    path = Path(path)
    with atomic_open(path, "wb") as raw, _maybe_gzip(raw, path.suffix == ".gz") as f:
        _write_behind(f, _text(model))


def _text(model: NgramModel) -> Iterator[bytes]:
    """The file's bytes, in blocks: each block of n-gram lines is formatted whole (rows.py)."""
    counts = "".join(f"ngram {k}={len(o.keys)}\n" for k, o in enumerate(model.orders, 1))
    yield f"\\data\\\n{counts}".encode()
    symbols = [s.encode() for s in model.symbols]
    V = len(symbols)
    # each word brings its separator: " " before the next word; after the last one "\t" before
    # a back-off (symbol id) or "\n" (id + V)
    inner = Strings.of([s + b" " for s in symbols])
    last = Strings.of([s + b"\t" for s in symbols] + [s + b"\n" for s in symbols])
    for k, o in enumerate(model.orders, 1):
        yield f"\n\\{k}-grams:\n".encode()
        grams = model.ngrams(k)
        for s in range(0, len(o.keys), CHUNK):
            rows = slice(s, s + CHUNK)
            backoff = o.backoff[rows]
            has_backoff = backoff != 0  # 0 = log10 1 is what a reader assumes when absent
            each = np.arange(len(backoff))
            yield join_rows([
                (format_g7(o.logp[rows], b"\t"), each),
                *((inner, grams[rows, j]) for j in range(k - 1)),
                (last, grams[rows, k - 1] + V * ~has_backoff),
                (format_g7(backoff, b"\n", where=has_backoff), each),
            ])
    yield b"\n\\end\\\n"


def _write_behind(f: IO[bytes], blocks: Iterable[bytes]) -> None:
    """f.write each block in a worker thread while the next one is made: zlib releases the GIL,
    so compression runs on a second core beside the formatting. One write in flight, in order."""
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending = None
        for block in blocks:
            if pending is not None:
                pending.result()
            pending = writer.submit(f.write, block)
        if pending is not None:
            pending.result()


def _maybe_gzip(raw: IO[bytes], gz: bool):
    """No name or time in the gzip header: the same model gives the same bytes."""
    return (
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL, mtime=0)
        if gz
        else nullcontext(raw)
    )


def _read_lines(path: Path) -> list[str]:
    """The whole file as lines (line i+1 = [i]); gzip recognised by its magic bytes, a UTF-8
    byte-order mark (some editors write one) dropped."""
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        return data.decode("utf-8").removeprefix("\ufeff").split("\n")
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as e:
        raise UserError(f"{path}: cannot read ARPA file ({getattr(e, 'strerror', None) or e})") from None


def read_arpa(path: str | Path) -> NgramModel:
    """Load an ARPA(.gz) file written by `write_arpa` or KenLM's lmplz (unpruned: every stored
    n-gram's prefix must be stored too). A malformed file raises UserError with its line.

    Sections are parsed whole (split, numpy float conversion, one dict lookup per word); a
    line-by-line scan runs only to name the line of an error."""
    gc_was_on = gc.isenabled()
    gc.disable()  # millions of small lists, no cycles: the collector would rescan them all
    try:
        return _Parser(Path(path)).model()
    finally:
        if gc_was_on:
            gc.enable()


class _Parser:
    def __init__(self, path: Path):
        self.path, self.lines = path, _read_lines(path)
        # section marks (\data\, \k-grams:, \end\) start their line; SRILM allows free text before \data\
        marks = [i for i, line in enumerate(self.lines) if line.startswith("\\")]
        data = [i for i in marks if self.lines[i].strip() == "\\data\\"]
        if not data:
            raise self.error(self.last_line(), "no \\data\\ header found")
        self.marks = [i for i in marks if i >= data[0]]

    def error(self, i: int, msg: str) -> UserError:
        """An error at 0-based line index i."""
        return UserError(f"{self.path}: line {i + 1}: {msg}")

    def last_line(self) -> int:
        return max((i for i, line in enumerate(self.lines) if line.strip()), default=0)

    def mark(self, j: int, wanted: str) -> None:
        if j >= len(self.marks):
            raise self.error(self.last_line(), f"expected {wanted!r}, got end of file")
        if (got := self.lines[self.marks[j]].strip()) != wanted:
            raise self.error(self.marks[j], f"expected {wanted!r}, got {got!r}")

    def body(self, j: int) -> tuple[list[int], list[str]]:
        """Line indices and stripped texts of the non-blank lines after mark j, up to the next."""
        end = self.marks[j + 1] if j + 1 < len(self.marks) else len(self.lines)
        pairs = [(i, t) for i in range(self.marks[j] + 1, end) if (t := self.lines[i].strip())]
        return [i for i, _ in pairs], [t for _, t in pairs]

    def model(self) -> NgramModel:
        sizes = self.header()
        symbols: list[str] = []
        orders: list[Order] = []
        for k, size in enumerate(sizes, 1):
            nos, words, logp, backoff = self.entries(k, size)
            if k == 1:
                symbols = [w[0] for w in words]
                stoi: dict[str, int] = {}
                for i, w in enumerate(symbols):
                    if stoi.setdefault(w, i) != i:
                        raise self.error(nos[i], f"duplicate 1-gram {w!r}")
                keys = np.arange(len(symbols))
            else:
                flat = [w for ws in words for w in ws]
                ids = np.fromiter(map(stoi.get, flat, repeat(-1)), dtype=np.int64, count=len(flat)).reshape(
                    -1, k
                )
                if (ids < 0).any():
                    i = int(np.argmax((ids < 0).any(axis=1)))
                    raise self.error(nos[i], f"word {words[i][int(np.argmax(ids[i] < 0))]!r} is not a 1-gram")
                keys = self.keys(orders, len(symbols), ids, nos)
            by_key = np.argsort(keys, kind="stable")
            keys = keys[by_key]
            dup = np.flatnonzero(keys[1:] == keys[:-1])
            if len(dup):
                raise self.error(nos[by_key[dup[0] + 1]], f"duplicate {k}-gram")
            orders.append(Order(keys, logp[by_key], backoff[by_key]))
        self.mark(len(sizes) + 1, "\\end\\")
        missing = [s for s in RESERVED if s not in symbols]
        if missing:
            raise UserError(f"{self.path}: the 1-grams lack {missing}")
        return NgramModel(symbols, orders)

    def header(self) -> list[int]:
        """The n-gram counts after \\data\\, order 1 first."""
        sizes = []
        for no, line in zip(*self.body(0)):
            m = re.fullmatch(r"ngram\s+(\d+)\s*=\s*(\d+)", line)
            if not m or int(m[1]) != len(sizes) + 1:
                raise self.error(no, f"expected 'ngram {len(sizes) + 1}=<count>', got {line!r}")
            sizes.append(int(m[2]))
        if not sizes:
            raise self.error(self.marks[0], "no 'ngram 1=<count>' line after \\data\\")
        return sizes

    def entries(self, k: int, size: int) -> tuple[list[int], list[list[str]], np.ndarray, np.ndarray]:
        """The \\k-grams: section: line indices, words, log10 probabilities, back-offs."""
        self.mark(k, f"\\{k}-grams:")
        nos, texts = self.body(k)
        if len(texts) != size:
            at = (
                nos[size]
                if len(texts) > size
                else self.marks[k + 1]
                if k + 1 < len(self.marks)
                else self.last_line()
            )
            raise self.error(at, f"\\{k}-grams: header says {size} entries, found {len(texts)}")
        fields = [t.split() for t in texts]
        bad = [i for i, f in enumerate(fields) if len(f) not in (k + 1, k + 2)]
        if bad:
            raise self.error(
                nos[bad[0]], f"expected 'log10prob <{k} words> [backoff]', got {texts[bad[0]]!r}"
            )
        logp = self.floats([f[0] for f in fields], nos)
        backoff = self.floats([f[k + 1] if len(f) > k + 1 else "0" for f in fields], nos)
        bad = np.flatnonzero(~(np.isfinite(logp) & np.isfinite(backoff) & (logp <= 0)))
        if len(bad):
            raise self.error(
                nos[bad[0]], f"log10 probability must be finite and <= 0, backoff finite: {texts[bad[0]]!r}"
            )
        return nos, [f[1 : k + 1] for f in fields], logp, backoff

    def floats(self, strings: list[str], nos: list[int]) -> np.ndarray:
        try:
            return np.array(strings, dtype=np.float64)
        except ValueError:
            for no, s in zip(nos, strings):
                try:
                    float(s)
                except ValueError:
                    raise self.error(no, f"not a number: {s!r}") from None
            raise

    def keys(self, orders: list[Order], V: int, ids: np.ndarray, nos: list[int]) -> np.ndarray:
        """model.py keys of (n, k) word ids, k >= 2: walk the prefix chain through the lower orders."""
        rows = ids[:, 0]
        for j in range(1, ids.shape[1] - 1):
            rows = orders[j].find(rows * V + ids[:, j])
            if (rows < 0).any():
                raise self.error(
                    nos[int(np.argmax(rows < 0))],
                    f"{ids.shape[1]}-gram whose prefix {j + 1}-gram is not stored "
                    "(pruned files are not supported)",
                )
        return rows * V + ids[:, -1]
