"""The report's figures, as PNG bytes (matplotlib, Agg; imported only when drawing)."""

from __future__ import annotations

import io
import itertools
import math

from pipeline import paths
from pipeline.io import read_csv
from pipeline.reporting.analysis import Effect
from pipeline.reporting.runs import FACTORS, Design, bpc, closed_vocab, scored

LM_COLORS = {"ngram": "#777777", "char": "#1f77b4", "word": "#ff7f0e", "hybrid": "#2ca02c", "subword": "#d62728"}
CELL_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
DASHES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P"]
DPI = 110


def _pyplot():
    """pyplot, headless, imported only when drawing: whoever imports the package for its
    tables needs no plotting library."""
    import matplotlib

    matplotlib.use("Agg")  # the report stage renders files, never windows
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    _pyplot().close(fig)
    return buf.getvalue()


def bar_figure(rows: list[dict]) -> bytes:
    """Test bits/char per run, best first; closed-vocabulary bars hatched; diverged runs left out."""
    from matplotlib.patches import Patch

    done = sorted((m for m in rows if scored(m)), key=lambda m: (bpc(m), m["run"]))
    fig, ax = _pyplot().subplots(figsize=(9, 0.2 * len(done) + 1.4))
    y = range(len(done))
    bars = ax.barh(y, [bpc(m) for m in done], color=[LM_COLORS.get(m["lm"], "k") for m in done], height=0.75)
    for bar, m in zip(bars, done):
        if closed_vocab(m):
            bar.set_hatch("//")
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {bpc(m):.3f}", va="center", fontsize=6.5)
    ax.set_yticks(list(y), [m["run"] for m in done], fontsize=7)
    ax.set_ylim(max(len(done), 1) - 0.5, -0.5)
    if not done:
        ax.text(0.5, 0, "no run has a test score", ha="center", va="center", transform=ax.get_yaxis_transform())
    ax.set_xlim(0, max((bpc(m) for m in done), default=1) * 1.08)
    ax.set_xlabel("test bits per character (lower is better; hatched = closed vocabulary)")
    ax.grid(axis="x", alpha=0.3)
    lms = list(dict.fromkeys(m["lm"] for m in done))
    handles = [Patch(color=LM_COLORS.get(lm, "k"), label=lm) for lm in lms]
    ax.legend(handles=handles, loc="upper right", fontsize=8)  # best first: the top bars are short
    fig.tight_layout()
    return _png(fig)


def effects_figure(effects: list[Effect], lms: list[str]) -> bytes:
    """One panel per factor; per change of level, a bar per LM type (mean change in test bits/char)."""
    plt = _pyplot()
    factors = [f for f in FACTORS if any(e.factor == f for e in effects)]
    widths = [max(1, len({e.label for e in effects if e.factor == f})) for f in factors]
    fig, axes = plt.subplots(1, max(len(factors), 1), figsize=(3.2 + 2.2 * sum(widths), 3.6), squeeze=False,
                             sharey=True, gridspec_kw={"width_ratios": widths or [1]})
    width = 0.8 / max(len(lms), 1)
    for ax, factor in zip(axes[0], factors):
        labels = list(dict.fromkeys(e.label for e in effects if e.factor == factor))
        for j, lm in enumerate(lms):
            vals = [next((e.delta for e in effects if e.factor == factor and e.label == lb and e.lm == lm),
                         math.nan) for lb in labels]
            xs = [i + (j - (len(lms) - 1) / 2) * width for i in range(len(labels))]
            ax.bar(xs, [0 if math.isnan(v) else v for v in vals], width, color=LM_COLORS.get(lm, "k"),
                   label=lm)
            for x, lb in zip(xs, labels):  # the 95% segment-bootstrap interval of the change
                e = next((e for e in effects if e.factor == factor and e.label == lb and e.lm == lm), None)
                b = e.cmp.bootstrap if e is not None and e.cmp is not None else None
                if b is not None:
                    ax.errorbar(x, e.delta, yerr=[[e.delta - b.lo], [b.hi - e.delta]], fmt="none", ecolor="k",
                                elinewidth=0.8, capsize=2)
            for x, v in zip(xs, vals):
                text = "n/a" if math.isnan(v) else f"{v:+.2f}"
                ax.text(x, 0 if math.isnan(v) else v, text, ha="center", va="bottom" if not v < 0 else "top",
                        fontsize=6.5, color="#555")
        ax.axhline(0, color="k", lw=0.8)
        ax.margins(y=0.12)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_title(factor)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("\u0394 test bits/char (< 0: better)")
    if factors:
        handles, names = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncol=len(lms), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return _png(fig)


def cost_figure(rows: list[dict]) -> bytes:
    """Test bits/char of every scored RNN run against its parameters (left) and its training wall
    time (right), one point per run, coloured by LM type."""
    plt = _pyplot()
    done = [m for m in rows if scored(m) and m["lm"] != "ngram"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, key, label in ((axes[0], "n_params", "parameters"), (axes[1], "wall_s", "training wall time (s)")):
        for lm in dict.fromkeys(m["lm"] for m in done):
            pts = [(m[key], bpc(m)) for m in done if m["lm"] == lm and isinstance(m.get(key), (int, float))]
            if pts:
                ax.scatter(*zip(*pts), s=14, color=LM_COLORS.get(lm, "k"), label=lm, alpha=0.8)
        if ax.collections:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("test bits/char")
    if axes[0].collections:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _floats(recs: list[dict], x: str, y: str) -> tuple[list[float], list[float]]:
    """(x, y) of the rows where both are finite numbers; other rows and columns are ignored
    (a curve file may gain columns, or rows that lack a valid score)."""
    xs, ys = [], []
    for r in recs:
        try:
            a, b = float(r.get(x) or "nan"), float(r.get(y) or "nan")
        except ValueError:
            continue
        if math.isfinite(a) and math.isfinite(b):
            xs.append(a)
            ys.append(b)
    return xs, ys


def curves_figure(rows: list[dict], design: Design) -> bytes:
    """Per LM type (columns): valid bits/char per epoch (top) and train loss (bottom), one line
    per run; colour = cell, line style = dropout, marker = clip. A panel whose values span more
    than a factor 2.5 gets a log y axis: a run that blew up stays on the chart without
    flattening the others."""
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    lv = design.levels
    lms = [lm for lm in lv["lm"] if any(m["lm"] == lm for m in rows)]
    n = max(len(lms), 1)
    fig, axes = plt.subplots(2, n, figsize=(3.6 * n + 0.6, 6.4), squeeze=False)
    style = {
        "cell": dict(zip(lv["cell"], itertools.cycle(CELL_COLORS))),
        "dropout": dict(zip(lv["dropout"], itertools.cycle(DASHES))),
        "clip": dict(zip(lv["clip"], itertools.cycle(MARKERS))),
    }
    for col, lm in enumerate(lms):
        top, bottom = axes[0][col], axes[1][col]
        for m in rows:
            w = design.where.get(m["run"])
            f = paths.curve_file(m["run"])
            if m["lm"] != lm or w is None or not f.is_file():
                continue
            recs = read_csv(f)
            kw = dict(color=style["cell"].get(w["cell"], "k"), ls=style["dropout"].get(w["dropout"], "-"),
                      marker=style["clip"].get(w["clip"], "o"), lw=1.2, ms=4, alpha=0.85)
            for ax, key in ((top, "valid_bits_per_char"), (bottom, "train_loss")):
                xs, ys = _floats(recs, "epoch", key)
                if xs:
                    ax.plot(xs, ys, markevery=None if len(xs) <= 25 else max(1, len(xs) // 25), **kw)
        top.set_title(lm)
        top.set_ylabel("valid bits/char" if col == 0 else "")
        bottom.set_ylabel("train loss (nats/token)" if col == 0 else "")
        bottom.set_xlabel("epoch")
        for ax in (top, bottom):
            ys = [y for line in ax.lines for y in line.get_ydata()]
            if ys and min(ys) > 0 and max(ys) / min(ys) > 2.5:  # a run far off the others: log y
                ax.set_yscale("log")
                ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
                ax.yaxis.set_major_formatter(ScalarFormatter())
                ax.yaxis.set_minor_formatter(NullFormatter())
                ax.set_ylabel(ax.get_ylabel() + (" (log scale)" if ax.get_ylabel() else ""))
            if ax.lines:
                ax.xaxis.get_major_locator().set_params(integer=True)
            ax.grid(alpha=0.3, which="both")
            ax.tick_params(labelsize=8)
    handles = ([Line2D([], [], color=c, lw=2, label=k) for k, c in style["cell"].items()]
               + [Line2D([], [], color="k", ls=s, label=f"dropout {k}") for k, s in style["dropout"].items()]
               + [Line2D([], [], color="k", marker=s, ls="", label=f"clip {k}") for k, s in style["clip"].items()])
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _png(fig)
