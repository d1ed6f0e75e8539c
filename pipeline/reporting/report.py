"""Assemble the report: blocks of text, tables and figures, written as reports/README.md and
reports/index.html, the figures also as reports/figures/*.png (README.md links them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline import paths
from pipeline.io import write_bytes, write_text
from pipeline.reporting import analysis, figures
from pipeline.reporting.analysis import CLOSED
from pipeline.reporting.markup import BEST, Bullets, Figure, Heading, Para, Pre, Section, Table, markdown, page
from pipeline.reporting.compare import by_group
from pipeline.reporting.runs import (MISSING, by_score, closed_vocab, collect, declared, design, is_ngram,
                                     segments)

TITLE = "Ablation report"

INTRO = (
    "Every run is scored on the same raw test text (`data/text/<corpus>/test.txt`) by one evaluator, "
    "which sums the model's negative log-likelihood (NLL) over that text. **Bits per character** "
    "(bits/char) is that sum in bits divided by the number of characters of the text, newlines "
    "included: how many bits the model needs per character on average. Lower is better, and it is the "
    "one unit all LM types share, whatever they predict (characters, words or BPE pieces). **Word "
    "perplexity** (ppl) is the same sum per word: exp(NLL / words), one end-of-line counted per line."
)


SPREAD = (
    "Two kinds of uncertainty, answering different questions. **Seeds** (here up to {seeds} per grid member, "
    "`grid.seed`): how much a result moves when the same config is trained again from another random start; "
    "a cell with several seeds shows mean \u00b1 sample sd with n, and a change between two factor levels whose "
    "95% t-intervals over seeds overlap is marked \"seeds not resolved\". **Segments**: how much a difference "
    "between two trained models depends on the test text; the evaluator scores the test text as independent "
    "segments of `eval.segment_lines` lines, and a paired bootstrap over them (1000 resamples, seeded) gives a 95% "
    "interval on the change in bits/char (\"segments [lo, hi]\"; \"not resolved\" when it holds 0). The "
    "second works with one seed but says nothing about retraining; the first says nothing about the test set. "
    "With one seed, single-run rankings of close results (the vanilla RNN's in particular) are not reliable: "
    "floating-point results differ across machines, and chaotic training amplifies it."
)


def _legend(oov: float | None) -> list[str]:
    oov_text = f" ({oov:.1%} of the test words here)" if oov is not None else ""
    return [
        f"{BEST} marks the best run of an LM type; \"diverged (epoch N)\": training blew up in epoch N "
        "(NaN/inf or exploding loss), so the run has no score; a blank cell: no such run.",
        f"{CLOSED} **closed vocabulary**: the model maps every word outside its training vocabulary to one "
        f"`<unk>` token{oov_text} and is charged only for predicting `<unk>`, not for the word itself. "
        "`<unk>` swallows the probability mass of all unseen words, so these figures look better than "
        "those of open-vocabulary models (char, hybrid, subword), which pay for every character.",
    ]


def _oov_rate(rows: list[dict]) -> float | None:
    for m in rows:
        if closed_vocab(m) and isinstance(m["test"].get("oov_rate"), (int, float)):
            return m["test"]["oov_rate"]
    return None


def _figure(name: str, png: bytes, alt: str) -> Figure:
    path = paths.figure_file(name)
    write_bytes(path, png)
    return Figure(path.relative_to(paths.REPORTS).as_posix(), png, alt)


def _anchor_unanchored(blocks: list, tables: list[Table]) -> None:
    """Give each run shown but not yet anchored its id="run-<run>" on its first run-id cell."""
    seen = {c.run for t in _tables(blocks) for row in t.rows for c in row if c.anchor}
    for t in tables:
        for row in t.rows:
            for c in row:
                if c.run and c.is_run_id and c.run not in seen:
                    c.anchor = True
                    seen.add(c.run)


def _tables(blocks: list) -> Iterable[Table]:
    for b in blocks:
        if isinstance(b, Section):
            yield from _tables(b.blocks)
        elif isinstance(b, Table):
            yield b


def render(runs: Iterable[str], params: Any = None, links: dict[str, str] | None = None,
           tuned: list[analysis.Tuned] | None = None) -> list[dict]:
    """Write reports/{README.md, index.html, figures/*.png} for `runs` (results/<run>.json each,
    curves/<run>.csv where there is one). `params`: the stage's params (its `grid` fixes the
    factors' levels and their order, the first being the reference of the main effects; with
    `train` and `train_overrides` declared, the RNN runs' token budgets are stated); without
    them, both come from the metrics. `links`: run id -> URL (e.g. its MLflow run), to link
    every run the report shows. `tuned`: tuning targets to compare with their grid members.
    Returns the runs' results, best test bits/char first."""
    rows = collect(runs)
    grid = declared(lambda: params.grid) if params is not None else MISSING
    orders = declared(lambda: params.ngram.orders) if params is not None else MISSING
    d = design(rows, None if grid is MISSING else grid, None if orders is MISSING else orders)
    ngrams = [m for m in rows if is_ngram(m)]
    rnn = [m for m in rows if not is_ngram(m)]
    cells = by_group(rnn)  # group id (a grid member) -> its runs, one per seed
    lms = [lm for lm in d.levels["lm"] if any(m["lm"] == lm for m in rnn)]
    groups = [g for g in analysis.lm_groups(d, cells) if g[2]]
    multi = len(d.levels["corpus"]) > 1
    nav: list[tuple[str, str]] = []
    seeds = max((len(c) for c in cells.values()), default=1)
    blocks: list = [Para(INTRO), Bullets(_legend(_oov_rate(rows))), Para(SPREAD.format(seeds=seeds))]

    def section(ident: str, title: str, *content) -> None:
        nav.append((ident, title))
        blocks.append(Section(ident, [Heading(title, 2, ident + "-title"), *content]))

    section("best", "Best run per LM type", analysis.best_table(d, cells, ngrams, segments))

    if groups:
        pivots = []
        for corpus, lm, found in groups:
            title = f"{lm} ({corpus})" if multi else lm
            table = analysis.pivot(d, cells, corpus, lm)
            flag = f" \u2014 closed vocabulary {CLOSED}" if any(closed_vocab(m) for c in found for m in c) else ""
            pivots.append(Section(f"lm-{table.id.removeprefix('pivot-')}", [Heading(title + flag, 3), table]))
        section("grid", "Test bits/char of every grid run",
                Para("One table per LM type: a row per recurrent cell, a column per dropout and gradient-clipping "
                     "setting (clip = the maximum global gradient norm; 0 = no clipping). Each cell holds test "
                     f"bits/char with word perplexity beneath (over several seeds: mean \u00b1 sd, n beneath); {BEST} "
                     "marks the LM type's best."),
                *pivots)

        effects = analysis.main_effects(d, cells, segments)
        if effects:
            refs = ", ".join(f"{f} {d.levels[f][0]}" for f in ("cell", "dropout", "clip") if len(d.levels[f]) > 1)
            section("effects", "Main effects",
                    Para("What changing one factor does, per LM type: the change in test bits/char from the "
                         f"reference level (the first listed in params.yaml's grid: {refs}) to each other level, "
                         "averaged over the levels of the other factors. Only pairs of runs that differ in this "
                         "factor alone and where both runs exist and did not diverge are averaged; where some "
                         "pairs were left out, the cell says how many were used. Negative = better. A mean: one "
                         "run far off the others (a vanilla RNN that nearly blew up) can carry it; the tables "
                         "above show every pair. Beneath each change: its 95% segment-bootstrap interval and, with "
                         "several seeds, whether the seeds resolve it (see above); the figure's error bars are the "
                         "segment intervals."),
                    analysis.effects_table(effects, lms),
                    _figure("main_effects", figures.effects_figure(effects, lms), "main effects"))

    if ngrams:
        section("ngram", "n-gram baseline",
                Para("Interpolated modified Kneser-Ney count models, scored by the same evaluator on the same text."),
                analysis.ngram_table(ngrams),
                Para(analysis.data_note(ngrams, lms, params, rnn), small=True))
    elif rnn:
        blocks.append(Para(analysis.data_note([], lms, params, rnn), small=True))

    if rnn:
        section("curves", "Learning curves",
                Para("Per epoch (`curves/<run>.csv`, also `dvc plots show`): validation bits/char after each "
                     "epoch (top) and the mean training loss of the epoch, in nats per token of the model's "
                     "own units (bottom; not comparable across LM types). A panel with a run far off the others has "
                     "a log scale."),
                _figure("learning_curves", figures.curves_figure(rnn, d), "learning curves"))

    section("ranking", "All runs by test bits/char",
            _figure("test_bpc", figures.bar_figure(rows), "test bits/char of every run"))

    cost = analysis.cost_table(rows, params)
    section("cost", "Cost",
            Para("Size: an RNN's weights, an n-gram model's stored n-grams (not the same unit). Tokens/s and "
                 "training tokens count the model's own units (see `unit`); wall time is the whole training "
                 "run (for an n-gram model, its estimation). Train tokens: as recorded by the run, else an RNN's "
                 "budget from params.yaml where the report reads it; blank: not known. The figure: test "
                 "bits/char of every RNN run against its parameters and its training wall time, one point per run "
                 "(each seed its own)."),
            cost,
            _figure("cost", figures.cost_figure(rows), "test bits/char against parameters and wall time"))

    if tuned:
        section("tuning", "Tuned learning-rate schedules",
                Para("Each `tune.targets` entry: its grid member trained with the default schedule (params.yaml's "
                     "`train`) and with the best values an Optuna study found (`train_tuned@<target>`, the same "
                     "budget as the grid), test bits/char (word perplexity beneath); negative change = the tuned "
                     f"schedule is better ({BEST}). The study chose on valid bits/char of short trials "
                     "(`tune.trial`); `tuning/<target>/` holds its trials and plots."),
                analysis.tuning_table(tuned))

    samples = []
    for corpus, lm, found in groups:
        best = analysis.best_run([m for c in found for m in c])
        lines = analysis.sample_lines(best["run"]) if best else None
        if lines:
            samples.append(Pre(lines, f"**{lm}**{f' ({corpus})' if multi else ''}: `{best['run']}`"))
    if samples:
        section("samples", "Generated text",
                Para("The first lines of a sample from the best run of each LM type (`models/<run>/samples.txt`)."),
                *samples)

    _anchor_unanchored(blocks, [cost])
    write_text(paths.REPORT_MD, markdown([Heading(TITLE, 1), *blocks], links))
    write_text(paths.REPORT_HTML, page(TITLE, blocks, nav, links))
    written = {b.path for b in _figures(blocks)}
    for old in paths.FIGURES.glob("*.png"):  # figures of an earlier report version
        if old.relative_to(paths.REPORTS).as_posix() not in written:
            old.unlink()
    return by_score(rows)


def _figures(blocks: list) -> Iterable[Figure]:
    for b in blocks:
        if isinstance(b, Section):
            yield from _figures(b.blocks)
        elif isinstance(b, Figure):
            yield b
