"""One evaluator for every LM type: sums first, ratios derived.

A model plugs in through `Scorer`: given text segments (each a run of whole lines, each
line ending in "\\n"), it returns the summed natural-log NLL of every segment, scored from a
fresh state, with the number of tokens in its own units, how many of them were `<unk>` for a
unit outside the vocabulary (`n_oov`), and how many words of the text were the corpus' own
unknown-word marker (`n_unk_marker`, e.g. PTB's `<unk>`; counted for every LM type, whatever
its tokenizer makes of the marker). Either makes the score one of a closed vocabulary: the
text's real words are not what was scored.

The evaluator fixes what a token may condition on: the text is cut into segments of
`segment_lines` lines, taken from the raw text itself, and each segment is scored
independently. So the score depends on the text and the model only, not on the batch size,
the bptt window or padding (the scorer's batching is free, the context is not).

Character and word counts come from the raw text, never from a tokenizer (nanochat's
evaluate_bpb idea): `n_chars` counts every character, newlines included; `n_words` counts
whitespace-separated words plus one end-of-line per line, the unit of word-level perplexity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pipeline.text import count_words, split_lines


@dataclass(frozen=True)
class Score:
    """What a scorer returns for a list of segments: each segment's NLL, and sums."""

    segment_nll: np.ndarray  # [n_segments] float64: summed NLL (nats) of each segment, in input order
    n_tokens: int
    n_oov: int  # units outside the vocabulary, scored as <unk> (mass not spent on the real string)
    n_unk_marker: int  # words of the text that were the corpus' unknown-word marker

    @property
    def nll_nats(self) -> float:
        return float(self.segment_nll.sum())


class Scorer(Protocol):
    # True when the model gives every string a probability (char with full coverage,
    # subword, hybrid); False for closed vocabularies (word, ngram) whose <unk> swallows mass.
    # A text with an unknown-word marker is never scored open: its real words are unknown.
    open_vocab: bool

    def score(self, segments: list[str]) -> Score: ...


def segments(text: str, segment_lines: int) -> list[str]:
    lines = split_lines(text)
    return ["".join(lines[i : i + segment_lines]) for i in range(0, len(lines), segment_lines)]


@dataclass(frozen=True)
class Segments:
    """The test text's segments as scored: the paired bootstrap of the report resamples them."""

    nll: np.ndarray  # [S] float64, nats of each segment
    n_chars: np.ndarray  # [S] int64, characters of each segment (newlines included)


def evaluate(scorer: Scorer, text: str, segment_lines: int) -> dict:
    """Score `text` and return the sums and the derived metrics (see DESIGN.md)."""
    return evaluate_segments(scorer, text, segment_lines)[0]


def evaluate_segments(scorer: Scorer, text: str, segment_lines: int) -> tuple[dict, Segments]:
    """`evaluate`'s metrics, and each segment's NLL and characters (which sum to them)."""
    segs = segments(text, segment_lines)
    s = scorer.score(segs)
    n_chars, n_words = len(text), count_words(text)
    nll = s.nll_nats
    finite = math.isfinite(nll)
    metrics = {
        "nll_nats": nll,
        "n_tokens": s.n_tokens,
        "n_chars": n_chars,
        "n_words": n_words,
        "n_oov": s.n_oov,
        "n_unk_marker": s.n_unk_marker,
        "token_ppl": math.exp(min(nll / s.n_tokens, 700)) if finite and s.n_tokens else float("inf"),
        "bits_per_char": nll / (math.log(2) * n_chars) if n_chars else float("nan"),
        "nats_per_char": nll / n_chars if n_chars else float("nan"),
        "word_ppl": math.exp(min(nll / n_words, 700)) if finite and n_words else float("inf"),
        "oov_rate": s.n_oov / s.n_tokens if s.n_tokens else 0.0,
        "open_vocab": bool(scorer.open_vocab and s.n_oov == 0 and s.n_unk_marker == 0),
    }
    return metrics, Segments(np.asarray(s.segment_nll, dtype=np.float64), np.array([len(g) for g in segs], np.int64))
