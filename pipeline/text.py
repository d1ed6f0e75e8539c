"""Line and word conventions of raw text, shared by tokenizers and the evaluator.

Only "\n" breaks a line (str.splitlines would also break at \r, \x1c, U+2028, ... and disagree
with the word and char tokenizers); a word is a run of non-whitespace (str.split).
"""

from __future__ import annotations

import re


def split_lines(text: str) -> list[str]:
    """Lines with their "\\n" kept; a last line without one is kept as it is."""
    *full, last = text.split("\n")
    return [line + "\n" for line in full] + ([last] if last else [])


def first_lines(text: str, max_chars: int | None) -> str:
    """The longest run of whole lines from the start of `text` with at most `max_chars`
    characters (newlines included); all of it for None. The data budget every LM type shares:
    the same text, whatever its tokens."""
    if max_chars is None or len(text) <= max_chars:
        return text
    cut = text.rfind("\n", 0, max_chars)  # the last line break within the budget ends the text
    return text[: cut + 1]


def count_words(text: str) -> int:
    """Words plus one end-of-line per line ("\\n" is whitespace: no word spans two lines)."""
    return len(text.split()) + len(split_lines(text))


def count_word(text: str, word: str) -> int:
    """How many of the whitespace-separated words of `text` are exactly `word` (no list of the
    text's words is built: a WikiText-103 split has 100M of them). `\\s` is the whitespace
    str.split() splits on."""
    return sum(1 for _ in re.finditer(rf"(?<!\S){re.escape(word)}(?!\S)", text))
