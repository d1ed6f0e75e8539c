"""The prepare stage's library call: raw corpus -> normalized train/valid/test text + stats.

Normalization (in this order): strict UTF-8 decode (a bad byte is an error naming the file
and byte offset), optional lowercase, Unicode NFC, "\\r\\n" and "\\r" -> "\\n", every run of
whitespace inside a line (spaces, tabs, no-break spaces, form feeds, ...) -> one space, each
line stripped, empty lines dropped. So every output line is non-empty and its words are
separated by single spaces: splitting on " " is lossless, and every tokenizer sees the
same text.

Splits: a corpus with its own splits keeps them. Otherwise (`prepare.split.by`):
- `block`: the document blocks (runs of non-blank lines in corpus.txt) are shuffled with
  `seed`; the first blocks go to valid until it has `valid` of the characters, the next to
  test likewise, the rest to train. Each split keeps the blocks in corpus order.
- `contiguous`: the first 1 - valid - test of the characters go to train, then valid, then
  test, each cut at the first line end past its share (the nanoGPT-style split).
`max_chars` then keeps each split's first whole lines totalling at most that many characters.

Output: `{train,valid,test}.txt`, every line ending in "\\n", and `stats.json`. Same raw
bytes + same params = same output bytes.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
import unicodedata
from pathlib import Path

from pipeline.config import SPLITS, PrepareConfig, SplitConfig
from pipeline.corpora import layout
from pipeline.corpora.staging import staged_dir
from pipeline.errors import UserError
from pipeline.io import write_json, write_text
from pipeline.paths import STATS_JSON

_WHITESPACE = re.compile(r"\s+")  # Unicode whitespace: exactly what str.split() splits on

Lines = list[str]


def normalize(text: str, lowercase: bool) -> Lines:
    """Normalized lines of `text`; "" where a line was blank (a document boundary)."""
    text = unicodedata.normalize("NFC", text.lower() if lowercase else text)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [_WHITESPACE.sub(" ", line).strip() for line in lines]


def documents(lines: Lines) -> list[Lines]:
    """Runs of non-empty lines."""
    return [list(run) for nonempty, run in itertools.groupby(lines, key=bool) if nonempty]


def _chars(lines: Lines) -> int:
    return sum(len(line) + 1 for line in lines)


def split_block(docs: list[Lines], cfg: SplitConfig) -> dict[str, Lines]:
    order = list(range(len(docs)))
    random.Random(cfg.seed).shuffle(order)
    sizes = [_chars(d) for d in docs]
    total = sum(sizes)
    where = ["train"] * len(docs)
    taken = iter(order)
    for split, fraction in (("valid", cfg.valid), ("test", cfg.test)):
        got = 0
        while got < fraction * total and (i := next(taken, None)) is not None:
            where[i] = split
            got += sizes[i]
    return {s: [line for d, w in zip(docs, where, strict=True) if w == s for line in d] for s in SPLITS}


def split_contiguous(lines: Lines, cfg: SplitConfig) -> dict[str, Lines]:
    ends = list(itertools.accumulate(len(line) + 1 for line in lines))  # chars up to each line end
    a = bisect.bisect_left(ends, (1 - cfg.valid - cfg.test) * ends[-1]) + 1
    b = bisect.bisect_left(ends, (1 - cfg.test) * ends[-1]) + 1
    return {"train": lines[:a], "valid": lines[a:b], "test": lines[b:]}


def truncate(lines: Lines, max_chars: int) -> Lines:
    ends = itertools.accumulate(len(line) + 1 for line in lines)
    return [line for line, end in zip(lines, ends, strict=True) if end <= max_chars]


def stats(lines: Lines) -> dict:
    """`words` are the " "-separated words (end-of-lines not counted: add `lines` for that);
    `chars` counts the newlines, `distinct_chars` includes "\\n". One pass, no copy of the text
    (a WikiText-103 train split has 100M words)."""
    chars, nbytes, words, char_set, word_set = 0, 0, 0, {"\n"}, set()
    for line in lines:
        ws = line.split(" ")
        chars += len(line) + 1
        nbytes += len(line.encode("utf-8")) + 1
        words += len(ws)
        char_set.update(line)
        word_set.update(ws)
    return {
        "chars": chars,
        "bytes": nbytes,
        "lines": len(lines),
        "words": words,
        "distinct_chars": len(char_set) if lines else 0,
        "distinct_words": len(word_set),
    }


def _read(path: Path, lowercase: bool) -> Lines:
    return normalize(layout.decode_utf8(path.read_bytes(), str(path)), lowercase)


def split_corpus(raw_dir: Path, cfg: PrepareConfig) -> tuple[str, dict[str, Lines]]:
    """(how it was split, {split: normalized lines}), checked non-empty."""
    files = layout.read_layout(raw_dir)
    if "corpus" in files:
        docs = documents(_read(files["corpus"], cfg.lowercase))
        if not docs:
            raise UserError(f"{files['corpus']}: empty corpus (no non-blank line)")
        how = cfg.split.by
        if how == "block":
            splits = split_block(docs, cfg.split)
        else:
            splits = split_contiguous([line for d in docs for line in d], cfg.split)
        hint = (
            f"{len(docs)} document block(s), split.by={how}, valid={cfg.split.valid}, test={cfg.split.test}"
        )
    else:
        how = "own"
        splits = {s: [line for line in _read(files[s], cfg.lowercase) if line] for s in SPLITS}
        hint = "the corpus' own split"
    if cfg.max_chars is not None:
        splits = {s: truncate(lines, cfg.max_chars) for s, lines in splits.items()}
        hint += f", max_chars={cfg.max_chars}"
    for s in SPLITS:
        if not splits[s]:
            raise UserError(f"{raw_dir}: split {s!r} is empty ({hint})")
    return how, splits


def prepare(raw_dir: str | Path, out_dir: str | Path, cfg: PrepareConfig) -> dict:
    """Write out_dir/{train,valid,test}.txt and stats.json; returns the stats."""
    how, splits = split_corpus(Path(raw_dir), cfg)
    result = {"split_by": how, **{s: stats(splits[s]) for s in SPLITS}}
    result["total"] = stats([line for s in SPLITS for line in splits[s]])
    with staged_dir(out_dir) as build:
        for s in SPLITS:
            write_text(build / layout.split_file(s), "".join(line + "\n" for line in splits[s]))
        write_json(build / STATS_JSON, result)
    return result
