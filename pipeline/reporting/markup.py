"""The report as a list of blocks, rendered twice: Markdown (reports/README.md, figures linked)
and one self-contained HTML page (reports/index.html, figures inlined as base64 PNG).

Text in blocks is plain with two inline marks that both outputs understand: `code` and
**bold**. Table cells that show a run carry its id: in HTML a `data-run` and `title` on the
cell, `id="run-<run>"` on the one cell per run that anchors it, and a link to `links[run]`
(e.g. its MLflow run) when given; in Markdown the link only.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field

BEST = "\u2605"  # the best cell of a table


@dataclass
class Cell:
    text: str = ""
    sub: str = ""  # a second, smaller line (HTML); "(sub)" after the text (Markdown)
    run: str | None = None  # the run the cell shows
    anchor: bool = False  # the run's one anchor in the page: id="run-<run>"
    is_run_id: bool = False  # the text is the run id (linked when links has it)
    best: bool = False
    kind: str = ""  # css class: "label", "run", "diverged", "missing", "closed"


@dataclass
class Table:
    id: str
    columns: list[str]
    rows: list[list[Cell]]
    groups: list[str] | None = None  # a header row above `columns`, one label per column (merged)
    caption: str = ""


@dataclass
class Heading:
    text: str
    level: int = 2
    id: str = ""


@dataclass
class Para:
    text: str
    small: bool = False


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Figure:
    path: str  # relative to reports/, for README.md
    png: bytes  # inlined into index.html
    alt: str


@dataclass
class Pre:
    lines: list[str]
    caption: str = ""


@dataclass
class Section:
    """A group of blocks: a <section> in HTML (so a test or a reader can find it by id)."""

    id: str
    blocks: list = field(default_factory=list)


# ----------------------------------------------------------------------------- Markdown


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def _md_cell(c: Cell, links: dict[str, str]) -> str:
    body = _md_escape(c.text)
    if c.run and c.run in links and body:
        body = f"[{body}]({links[c.run]})"
    if c.sub:
        body += f" ({_md_escape(c.sub)})"
    if c.best and body:
        body = f"**{body}** {BEST}"
    return body


def _md_table(t: Table, links: dict[str, str]) -> str:
    heads = [f"{g}, {c}" if g else c for g, c in zip(t.groups, t.columns)] if t.groups else t.columns
    lines = [f"*{t.caption}*", ""] if t.caption else []
    lines += ["| " + " | ".join(map(_md_escape, heads)) + " |", "|" + " --- |" * len(heads)]
    lines += ["| " + " | ".join(_md_cell(c, links) for c in row) + " |" for row in t.rows]
    return "\n".join(lines)


def _fence(lines: list[str]) -> str:
    longest = max((len(m) for ln in lines for m in re.findall(r"`+", ln)), default=0)
    return "`" * max(3, longest + 1)


def markdown(blocks: list, links: dict[str, str] | None = None) -> str:
    links = links or {}
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Section):
            out.append(markdown(b.blocks, links).rstrip("\n"))
        elif isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            out.append(f"<sub>{b.text}</sub>" if b.small else b.text)
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {i}" for i in b.items))
        elif isinstance(b, Table):
            out.append(_md_table(b, links))
        elif isinstance(b, Figure):
            out.append(f"![{b.alt}]({b.path})")
        elif isinstance(b, Pre):
            fence = _fence(b.lines)
            out.append((f"{b.caption}\n\n" if b.caption else "") + "\n".join([fence, *b.lines, fence]))
    return "\n\n".join(out) + "\n"


# ----------------------------------------------------------------------------- HTML


def inline(text: str) -> str:
    """Escaped text with `code` and **bold** marks as HTML."""
    s = html.escape(text, quote=False)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)


def _attr(v: str) -> str:
    return html.escape(v, quote=True)


def _html_cell(c: Cell, links: dict[str, str], tag: str = "td") -> str:
    attrs = []
    if c.run:
        if c.anchor:
            attrs.append(f'id="run-{_attr(c.run)}"')
        attrs.append(f'data-run="{_attr(c.run)}" title="{_attr(c.run)}"')
    kinds = [k for k in (c.kind, "best" if c.best else "") if k]
    if kinds:
        attrs.append(f'class="{" ".join(kinds)}"')
    body = html.escape(c.text)
    if c.run and c.run in links and body:
        body = f'<a href="{_attr(links[c.run])}">{body}</a>'
    if c.best and body:
        body = f'<strong>{body}</strong> <span class="star">{BEST}</span>'
    if c.sub:
        body += f"<br><small>{html.escape(c.sub)}</small>"
    return f"<{tag}{' ' if attrs else ''}{' '.join(attrs)}>{body}</{tag}>"


def _html_table(t: Table, links: dict[str, str]) -> str:
    head = ""
    if t.groups:
        spans: list[list] = []
        for g in t.groups:
            if spans and spans[-1][0] == g:
                spans[-1][1] += 1
            else:
                spans.append([g, 1])
        head += "<tr>" + "".join(f'<th colspan="{n}" class="group">{html.escape(g)}</th>' if n > 1 else
                                 f'<th class="group">{html.escape(g)}</th>' for g, n in spans) + "</tr>"
    head += "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in t.columns) + "</tr>"
    body = "".join("<tr>" + "".join(_html_cell(c, links) for c in row) + "</tr>\n" for row in t.rows)
    caption = f"<caption>{inline(t.caption)}</caption>" if t.caption else ""
    return f'<table id="{_attr(t.id)}">{caption}<thead>{head}</thead><tbody>\n{body}</tbody></table>'


def _html_blocks(blocks: list, links: dict[str, str]) -> list[str]:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Section):
            out.append(f'<section id="{_attr(b.id)}">\n' + "\n".join(_html_blocks(b.blocks, links)) + "\n</section>")
        elif isinstance(b, Heading):
            ident = f' id="{_attr(b.id)}"' if b.id else ""
            out.append(f"<h{b.level}{ident}>{inline(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f'<p class="note">{inline(b.text)}</p>' if b.small else f"<p>{inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            out.append(f'<div class="scroll">{_html_table(b, links)}</div>')
        elif isinstance(b, Figure):
            data = base64.b64encode(b.png).decode("ascii")
            out.append(f'<figure><img alt="{_attr(b.alt)}" src="data:image/png;base64,{data}"></figure>')
        elif isinstance(b, Pre):
            cap = f"<figcaption>{inline(b.caption)}</figcaption>" if b.caption else ""
            out.append(f'<figure class="sample">{cap}<pre>{html.escape(chr(10).join(b.lines))}</pre></figure>')
    return out


STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#222;
  max-width:1180px;margin:1.5em auto;padding:0 1.5em}
h1{margin-bottom:.2em} h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
h3{margin:1.2em 0 .4em}
nav{font-size:14px;color:#555} nav a{margin-right:.9em}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:13.5px;margin:.4em 0 .8em;font-variant-numeric:tabular-nums}
caption{caption-side:top;text-align:left;color:#555;font-size:13px;padding-bottom:.3em}
th,td{border:1px solid #d4d4d4;padding:3px 9px;text-align:right;vertical-align:top}
th{background:#f3f4f6;font-weight:600;text-align:center} th.group{background:#e8eaee}
table[id^="pivot-"] td:not(.label){min-width:6.5em}
td.label{text-align:left;font-weight:600;background:#fafafa}
td.run{text-align:left;font:12.5px/1.5 ui-monospace,"DejaVu Sans Mono",Menlo,monospace}
td small{color:#666;font-size:11.5px}
td.best{background:#e6f4ea} td .star{color:#1a7f37}
td.diverged{color:#b42318;background:#fdf0ef;font-size:12.5px}
td.missing{background:repeating-linear-gradient(45deg,#fff,#fff 4px,#f4f4f4 4px,#f4f4f4 8px)}
td.closed{background:#fff8e6}
td a{color:inherit}
figure{margin:.6em 0} img{max-width:100%;height:auto;border:1px solid #eee}
figure.sample pre{background:#f6f8fa;border:1px solid #e1e4e8;padding:.6em .8em;white-space:pre-wrap;
  font-size:12.5px;margin:.2em 0}
figcaption{font-size:13px;color:#555}
p.note{font-size:13px;color:#555}
code{background:#f3f4f6;padding:0 .25em;border-radius:3px;font-size:90%}
"""


def page(title: str, blocks: list, nav: list[tuple[str, str]], links: dict[str, str] | None = None) -> str:
    """One HTML document; nav: (section id, label) pairs."""
    menu = "<nav>" + "".join(f'<a href="#{_attr(i)}">{html.escape(t)}</a>' for i, t in nav) + "</nav>"
    body = "\n".join(_html_blocks(blocks, links or {}))
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{menu}\n{body}\n</body></html>\n")
