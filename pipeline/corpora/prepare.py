"""The prepare stage's library call: raw corpus -> train/valid/test text + stats, the text every
model is trained on and scored on.

Two ways to turn a raw file into text (`prepare.mode`; `auto`, the default, picks by layout):

- verbatim (`auto` for a corpus with its own train/valid/test: PTB, WikiText, a local
  `splits:` entry): the file's text as published. Strict UTF-8 decode (a bad byte is an
  error naming the file, byte offset and line), a leading BOM dropped, "\\r\\n" -> "\\n" (a
  Windows copy of a corpus has the same lines as the original), and a final "\\n" added if
  the file has none. Nothing else changes: lines keep their leading and trailing spaces
  (every PTB and WikiText line starts and ends with one), blank lines and ` = Heading = `
  lines stay, so the standard word-level perplexity (one `</s>` per line, blank lines
  included) is computed on the very text its published numbers are.
- normalize (`auto` for a corpus.txt: Shakespeare, a local `path:`): strict UTF-8 decode,
  Unicode NFC, "\\r\\n" and "\\r" -> "\\n", every run of whitespace inside a line (spaces,
  tabs, no-break spaces, form feeds, ...) -> one space, each line stripped, empty lines
  dropped. Every output line is non-empty and its words are separated by single spaces.

`lowercase` lowercases the text in either mode.

Splits: a corpus with its own splits keeps them. Otherwise (`prepare.split.by`):
- `block`: the document blocks (runs of non-blank lines in corpus.txt) are shuffled with
  `seed`; the first blocks go to valid until it has `valid` of the characters, the next to
  test likewise, the rest to train. Each split keeps the blocks in corpus order. (Normalize
  only: the blank lines between blocks are dropped, so the text cannot be kept verbatim.)
- `contiguous`: the first 1 - valid - test of the characters go to train, then valid, then
  test, each cut at the first line end past its share (the nanoGPT-style split; verbatim
  keeps every line, blank ones included).
`max_chars` then keeps each split's first whole lines totalling at most that many characters.

Output: `{train,valid,test}.txt`, every line ending in "\\n", and `stats.json`, counted on the
text written. Same raw bytes + same params = same output bytes.

The corpus' unknown-word marker (`unk_marker` of its config, recorded in the raw source.json)
is part of how the text is written, so it travels with the text: `stats.json` holds it as it
reads in the output (lowercased with the text, NFC-normalized with it), and the tokenize stage
takes it from there (a tokenizer records it in turn, for the model stages and the evaluator).
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
from pipeline.paths import STATS_JSON, split_file

_WHITESPACE = re.compile(r"\s+")  # Unicode whitespace: exactly what str.split() splits on

Lines = list[str]  # the text's lines, without their "\n"


def normalize(text: str, lowercase: bool) -> Lines:
    """Normalized lines of `text`; "" where a line was blank (a document boundary)."""
    text = unicodedata.normalize("NFC", text.lower() if lowercase else text)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [_WHITESPACE.sub(" ", line).strip() for line in lines]


def verbatim(text: str, lowercase: bool) -> Lines:
    """The lines of `text` as they are ("\\r\\n" ends a line like "\\n"); a final line end is
    not a line of its own, and a missing one is added when the lines are written."""
    lines = (text.lower() if lowercase else text).replace("\r\n", "\n").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def documents(lines: Lines) -> list[Lines]:
    """Runs of non-empty lines."""
    return [list(run) for nonempty, run in itertools.groupby(lines, key=bool) if nonempty]


def _chars(lines: Lines) -> int:
    return sum(len(line) + 1 for line in lines)


def _has_words(lines: Lines) -> bool:
    return any(not line.isspace() for line in lines if line)


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
    """`words` are whitespace-separated words (end-of-lines not counted: add `lines`, blank
    ones included, for the evaluator's `n_words`); `chars` counts the newlines,
    `distinct_chars` includes "\\n". One pass, no copy of the text (a WikiText-103 train
    split has 100M words)."""
    chars, nbytes, words, char_set, word_set = 0, 0, 0, {"\n"}, set()
    for line in lines:
        ws = line.split()
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


def _keeps_verbatim(cfg: PrepareConfig, files: dict[str, Path]) -> bool:
    if cfg.mode == "auto":
        return "corpus" not in files  # a corpus' own splits are kept as published
    return cfg.mode == "verbatim"


def _read(path: Path, lowercase: bool, keep: bool) -> Lines:
    text = layout.decode_utf8(path.read_bytes(), str(path))
    return verbatim(text, lowercase) if keep else normalize(text, lowercase)


def _split_one_text(path: Path, cfg: PrepareConfig, keep: bool) -> tuple[dict[str, Lines], str]:
    """corpus.txt cut as `cfg.split` says, and a description of the cut for error messages."""
    by = cfg.split.by
    if keep and by == "block":
        raise UserError(
            f"{path}: prepare.mode verbatim keeps corpus.txt as it is, so prepare.split.by must be "
            "'contiguous' (block shuffles blank-line separated documents and drops the blank lines)"
        )
    lines = _read(path, cfg.lowercase, keep)
    if not _has_words(lines):
        raise UserError(f"{path}: empty corpus (no non-blank line)")
    hint = f"split.by={by}, valid={cfg.split.valid}, test={cfg.split.test}"
    if by == "contiguous":
        return split_contiguous(lines if keep else [line for line in lines if line], cfg.split), hint
    docs = documents(lines)
    return split_block(docs, cfg.split), f"{len(docs)} document block(s), {hint}"


def split_corpus(raw_dir: Path, cfg: PrepareConfig) -> tuple[str, dict[str, Lines]]:
    """(how it was split, {split: lines as written}), each split checked to have words."""
    files = layout.read_layout(raw_dir)
    keep = _keeps_verbatim(cfg, files)
    if "corpus" in files:
        how = cfg.split.by
        splits, hint = _split_one_text(files["corpus"], cfg, keep)
    else:
        how, hint = "own", "the corpus' own split"
        splits = {s: _read(files[s], cfg.lowercase, keep) for s in SPLITS}
        if not keep:
            splits = {s: [line for line in lines if line] for s, lines in splits.items()}
    if cfg.max_chars is not None:
        splits = {s: truncate(lines, cfg.max_chars) for s, lines in splits.items()}
        hint += f", max_chars={cfg.max_chars}"
    for s in SPLITS:
        if not _has_words(splits[s]):
            raise UserError(f"{raw_dir}: split {s!r} is empty ({hint})")
    return how, splits


def marker_in_text(marker: str | None, cfg: PrepareConfig, verbatim: bool) -> str | None:
    """The unknown-word marker as the prepared text spells it."""
    if marker is None:
        return None
    if cfg.lowercase:
        marker = marker.lower()
    return marker if verbatim else unicodedata.normalize("NFC", marker)


def prepare(raw_dir: str | Path, out_dir: str | Path, cfg: PrepareConfig) -> dict:
    """Write out_dir/{train,valid,test}.txt and stats.json; returns the stats."""
    raw_dir = Path(raw_dir)
    marker = layout.read_unk_marker(raw_dir)
    how, splits = split_corpus(raw_dir, cfg)
    keep = _keeps_verbatim(cfg, layout.read_layout(raw_dir))
    result = {"split_by": how, "unk_marker": marker_in_text(marker, cfg, keep),
              **{s: stats(splits[s]) for s in SPLITS}}
    result["total"] = stats([line for s in SPLITS for line in splits[s]])
    with staged_dir(out_dir) as build:
        for s in SPLITS:
            write_text(build / split_file(s), "".join(line + "\n" for line in splits[s]))
        write_json(build / STATS_JSON, result)
    return result
