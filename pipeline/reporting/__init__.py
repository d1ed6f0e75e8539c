"""The ablation report: every run's metrics in one table and two figures.

Rows come from metrics/<run>.json of exactly the runs params.yaml names (RNN grid members and
n-gram baselines alike; see `expected_runs`), sorted by test bits/char, the one unit every LM
type shares. Closed-vocabulary rows are flagged: their `<unk>` swallows mass that open models
must spend, so they look better than they are.
Diverged runs stay in the table with the epoch they diverged in.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline import paths
from pipeline.config import GridConfig
from pipeline.errors import UserError
from pipeline.io import atomic_open, read_json, write_text
from pipeline.artifacts import read_curve

TRAIN_AXES = ("corpus", "lm", "cell", "dropout", "clip")  # dvc.yaml's train matrix, in key order

COLUMNS = [  # (header, how to get it from a metrics dict)
    ("run", lambda m: m["run"]),
    ("lm", lambda m: m["lm"]),
    ("cell", lambda m: m.get("cell", f"order {m.get('order', '')}")),
    ("dropout", lambda m: m.get("dropout", "")),
    ("clip", lambda m: m.get("clip", "")),
    ("test bits/char", lambda m: _f(m["test"], "bits_per_char", 4)),
    ("test word ppl", lambda m: _f(m["test"], "word_ppl", 1)),
    ("valid bits/char", lambda m: _f(m["valid"], "bits_per_char", 4)),
    ("vocab", lambda m: "n/a" if not m["test"] else "open" if m["test"]["open_vocab"] else "closed"),
    # an RNN's size is its weights, an n-gram model's the n-grams it stores: not one unit
    ("size", lambda m: f"{m['n_params']:,} {'n-grams' if m['lm'] == 'ngram' else 'weights'}"),
    ("status", lambda m: f"diverged (epoch {m['diverged_epoch']})" if m.get("diverged") else "ok"),
]
LM_COLORS = {"ngram": "#777777", "char": "#1f77b4", "word": "#ff7f0e", "hybrid": "#2ca02c", "subword": "#d62728"}


def _f(scores: dict | None, key: str, digits: int) -> str:
    if not scores or not math.isfinite(scores[key]):
        return "n/a"
    return f"{scores[key]:.{digits}f}" if abs(scores[key]) < 1e6 else f"{scores[key]:.3g}"


def _bpc(m: dict) -> float:
    return m["test"]["bits_per_char"] if m["test"] else math.inf


def _pyplot():
    """pyplot, headless, imported only when drawing: the train stage imports this package for
    the curve format and needs no plotting library."""
    import matplotlib

    matplotlib.use("Agg")  # the report stage renders files, never windows
    import matplotlib.pyplot as plt

    return plt


def expected_runs(grid: GridConfig, orders: Sequence[int]) -> list[str]:
    """The run ids of dvc.yaml's `ngram` (corpus x [ngram] x order) and `train`
    (corpus x lm x cell x dropout x clip) matrices: the runs the report shows. Metrics files
    of members no longer in the grid (DVC never deletes them) are not reported."""
    ngram = [paths.run_id(c, "ngram", o) for c in grid.corpus for o in orders]
    train = [paths.run_id(*v) for v in itertools.product(*(getattr(grid, k) for k in TRAIN_AXES))]
    return ngram + train


def collect(runs: Iterable[str]) -> list[dict]:
    """metrics/<run>.json of each run, best test bits/char first; a missing one is an error."""
    rows = []
    for run in runs:
        path = paths.metrics_file(run)
        if not path.is_file():
            raise UserError(f"{path}: not found, but params.yaml (grid, ngram.orders) has run {run!r}; "
                            "run `dvc repro` to make it")
        rows.append(read_json(path))
    return sorted(rows, key=lambda m: (_bpc(m), m["run"]))


def markdown(rows: list[dict]) -> str:
    head = [h for h, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(str(get(m)) for _, get in COLUMNS) + " |" for m in rows]
    return "\n".join(lines) + "\n"


def html_table(rows: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _ in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(get(m)))}</td>" for _, get in COLUMNS) + "</tr>" for m in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bar_figure(rows: list[dict], path: Path) -> None:
    """Test bits/char per run, best first; closed-vocabulary bars hatched."""
    done = [m for m in rows if m["test"]]
    fig, ax = _pyplot().subplots(figsize=(8, 0.22 * len(done) + 1.2))
    y = range(len(done))
    bars = ax.barh(y, [_bpc(m) for m in done], color=[LM_COLORS.get(m["lm"], "k") for m in done])
    for bar, m in zip(bars, done):
        if not m["test"]["open_vocab"]:
            bar.set_hatch("//")
    ax.set_yticks(list(y), [m["run"] for m in done], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("test bits per character (lower is better; hatched = closed vocabulary)")
    fig.tight_layout()
    _save(fig, path)


def curves_figure(rows: list[dict], path: Path) -> None:
    """Valid bits/char per epoch (curves/<run>.csv), one panel per LM type."""
    lms = [lm for lm in LM_COLORS if lm != "ngram" and any(m["lm"] == lm for m in rows)]
    fig, axes = _pyplot().subplots(1, max(len(lms), 1), figsize=(4 * max(len(lms), 1), 3.2), squeeze=False)
    for ax, lm in zip(axes[0], lms):
        for m in rows:
            f = paths.curve_file(m["run"])
            if m["lm"] != lm or not f.exists():
                continue
            recs = read_curve(f)
            if recs:
                ax.plot([int(r["epoch"]) for r in recs], [float(r["valid_bits_per_char"]) for r in recs],
                        marker="o", lw=1, label=m["run"].split(f"-{lm}-", 1)[-1])
        ax.set_title(lm)
        ax.set_xlabel("epoch")
        ax.set_ylabel("valid bits/char")
        if ax.lines:
            ax.legend(fontsize=5)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: Path) -> None:
    with atomic_open(path) as f:
        fig.savefig(f, format="png", dpi=110)
    _pyplot().close(fig)


def render(runs: Iterable[str]) -> list[dict]:
    """Write reports/{README.md, index.html, figures/*.png} for `runs`; returns the rows."""
    rows = collect(runs)
    bar, curves = paths.figure_file("test_bpc"), paths.figure_file("valid_curves")
    bar_figure(rows, bar)
    curves_figure(rows, curves)
    bar, curves = (f.relative_to(paths.REPORTS).as_posix() for f in (bar, curves))  # links from the report
    intro = ("All models scored on the same raw test text by one evaluator. Bits/char and word "
             "perplexity are derived from character and word counts of the text, not from tokenizers.")
    write_text(paths.REPORT_MD, f"# Ablation report\n\n{intro}\n\n{markdown(rows)}\n"
               f"![test bits/char]({bar})\n\n![valid curves]({curves})\n")
    write_text(paths.REPORT_HTML, f"""<!doctype html><meta charset="utf-8"><title>Ablation report</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} td:first-child{{text-align:left}}</style>
<h1>Ablation report</h1><p>{html.escape(intro)}</p>{html_table(rows)}
<p><img src="{bar}"></p><p><img src="{curves}"></p>
""")
    return rows
