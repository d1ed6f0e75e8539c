"""The report's numbers, as tables of cells: a pivot per LM type, the main effects of the
factors, the n-gram baselines, the cost of each run, the best run per LM type, tuned against
default schedules."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

from pipeline import paths
from pipeline.evaluation import Segments
from pipeline.reporting.compare import Comparison, cell_summary, compare
from pipeline.reporting.markup import Cell, Table
from pipeline.reporting.runs import (FACTORS, RNN_LMS, TRAIN_AXES, UNITS, Design, Tuned, bpc, closed_vocab,
                                     fmt_bpc, fmt_delta, fmt_int, fmt_ppl, fmt_seconds, is_ngram, scored, status,
                                     train_budget)

CLOSED = "\u2020"  # dagger: a closed-vocabulary figure (footnote in the report)


def score_cell(m: dict | None, best: bool = False, anchor: bool = False) -> Cell:
    """Test bits/char with word perplexity beneath; a diverged run says when; no run is blank."""
    if m is None:
        return Cell(kind="missing")
    run = m["run"]
    if m.get("diverged"):
        return Cell(status(m), run=run, anchor=anchor, kind="diverged")
    if not scored(m):
        return Cell("n/a", run=run, anchor=anchor)
    closed = closed_vocab(m)
    return Cell(fmt_bpc(bpc(m)) + (CLOSED if closed else ""), sub=f"ppl {fmt_ppl(m['test'].get('word_ppl'))}",
                run=run, anchor=anchor, best=best, kind="closed" if closed else "")


def seeds_cell(runs: list[dict] | None, best: bool = False, anchor: bool = False) -> Cell:
    """A grid cell over its seeds: as `score_cell` with one seed; else the mean test bits/char
    ± its sample sd, with the number of seeds (and of diverged ones) beneath."""
    if not runs or len(runs) == 1:
        return score_cell(runs[0] if runs else None, best, anchor)
    s, run = cell_summary(runs), runs[0]["run"]
    lost = len(runs) - s.n
    if s.n == 0:
        return Cell(f"all {len(runs)} seeds diverged", run=run, anchor=anchor, kind="diverged")
    closed = any(closed_vocab(m) for m in runs)
    text = fmt_bpc(s.mean) + (f" \u00b1 {s.sd:.3f}" if s.n > 1 else "") + (CLOSED if closed else "")
    return Cell(text, sub=f"n = {s.n}" + (f", {lost} diverged" if lost else ""), run=run, anchor=anchor, best=best,
                kind="closed" if closed else "")


def best_cell(cells: list[list[dict]]) -> list[dict] | None:
    """The cell of the lowest mean test bits/char over its scored seeds."""
    done = [c for c in cells if cell_summary(c).n]
    return min(done, key=lambda c: (cell_summary(c).mean, c[0]["run"])) if done else None


def best_run(rows: list[dict]) -> dict | None:
    done = [m for m in rows if scored(m)]
    return min(done, key=lambda m: (bpc(m), m["run"])) if done else None


def lm_groups(design: Design, cells: dict[str, list[dict]]) -> list[tuple[str, str, list[list[dict]]]]:
    """(corpus, lm, the cells of that corpus and RNN LM type present, each its runs by seed) in
    grid order."""
    out = []
    for corpus, lm in itertools.product(design.levels["corpus"], design.levels["lm"]):
        found = [cells[r] for r, w in design.where.items() if w["corpus"] == corpus and w["lm"] == lm and r in cells]
        out.append((corpus, lm, found))
    return out


def clip_label(clip: str) -> str:
    try:
        return f"clip {clip}" + (" (off)" if float(clip) == 0 else "")
    except ValueError:
        return f"clip {clip}"


def pivot(design: Design, cells: dict[str, list[dict]], corpus: str, lm: str) -> Table:
    """Rows: cell; columns: dropout x clip; each cell test bits/char (word ppl; over several
    seeds mean ± sd); best starred."""
    lv = design.levels
    cols = list(itertools.product(lv["dropout"], lv["clip"]))

    def member(cell: str, dropout: str, clip: str) -> list[dict] | None:
        return cells.get(design.run(corpus=corpus, lm=lm, cell=cell, dropout=dropout, clip=clip))

    best = best_cell([m for c in lv["cell"] for d, k in cols if (m := member(c, d, k)) is not None])
    rows = [[Cell(cell, kind="label")] + [seeds_cell(m, best=m is not None and m is best, anchor=True)
                                          for m in (member(cell, d, k) for d, k in cols)]
            for cell in lv["cell"]]
    suffix = f"-{corpus}" if len(lv["corpus"]) > 1 else ""
    return Table(id=f"pivot-{lm}{suffix}", columns=["cell"] + [clip_label(k) for _, k in cols],
                 groups=[""] + [f"dropout {d}" for d, _ in cols], rows=rows)


# ----------------------------------------------------------------------------- main effects


@dataclass
class Effect:
    """Mean change of test bits/char from the reference level to `level` of `factor`, for one
    LM type, over the grid members that differ only in that factor and both scored (their
    seeds averaged), with its seed and segment spread (`cmp`)."""

    factor: str
    ref: str
    level: str
    lm: str
    delta: float  # nan when no pair scored
    pairs: int  # pairs averaged
    possible: int  # pairs in the grid
    cmp: Comparison | None = None

    @property
    def label(self) -> str:
        return f"{self.ref} \u2192 {self.level}"


def main_effects(design: Design, cells: dict[str, list[dict]],
                 segments_of: Callable[[str], Segments | None]) -> list[Effect]:
    lv = design.levels
    out = []
    for factor in FACTORS:
        ref, *others = lv[factor]
        rest = [a for a in TRAIN_AXES if a not in (factor, "lm")]
        for level, lm in itertools.product(others, lv["lm"]):
            pairs, possible = [], 0
            for combo in itertools.product(*(lv[a] for a in rest)):
                at = dict(zip(rest, combo), lm=lm)
                new, base = cells.get(design.run(**at, **{factor: level})), cells.get(design.run(**at, **{factor: ref}))
                possible += 1
                if new is not None and base is not None:
                    pairs.append((base, new))
            c = compare(pairs, segments_of)
            out.append(Effect(factor, ref, level, lm, c.delta if c else math.nan, c.pairs if c else 0, possible, c))
    return out


NOT_RESOLVED = "not resolved"


def spread_note(c: Comparison | None) -> str:
    """The two intervals of a comparison, in words: the test segments' (always) and the seeds'
    (with two seeds or more)."""
    if c is None:
        return ""
    parts = []
    if c.bootstrap is not None:
        b = c.bootstrap
        parts.append(f"segments [{b.lo:+.3f}, {b.hi:+.3f}]" + ("" if b.excludes_zero else f" {NOT_RESOLVED}"))
    if c.resolved is not None:
        parts.append(f"seeds (n = {min(c.a.n, c.b.n)}) " + ("resolved" if c.resolved else NOT_RESOLVED))
    return "; ".join(parts)


def effects_table(effects: list[Effect], lms: list[str]) -> Table:
    rows = []
    for (factor, label), group in itertools.groupby(effects, key=lambda e: (e.factor, e.label)):
        by_lm = {e.lm: e for e in group}
        row = [Cell(factor, kind="label"), Cell(label, kind="label")]
        for lm in lms:
            e = by_lm[lm]
            notes = [n for n in (spread_note(e.cmp), f"{e.pairs} of {e.possible} pairs" if e.pairs < e.possible
                                 else "") if n]
            row.append(Cell(fmt_delta(e.delta), sub="; ".join(notes)))
        rows.append(row)
    return Table(id="main-effects", columns=["factor", "change"] + lms, rows=rows)


# ----------------------------------------------------------------------------- n-gram, cost


def run_cell(run: str, anchor: bool = False) -> Cell:
    return Cell(run, run=run, anchor=anchor, is_run_id=True, kind="run")


def ngram_table(rows: list[dict]) -> Table:
    out = []
    for m in rows:
        t = m.get("test") or {}
        closed = closed_vocab(m)
        out.append([
            run_cell(m["run"], anchor=True),
            Cell(str(m.get("order", ""))),
            Cell(str(m.get("unit", ""))),
            score_cell(m),
            Cell(fmt_bpc(bpc(m, "valid"))),
            Cell(f"closed vocab {CLOSED}" if closed else "open", kind="closed" if closed else ""),
            Cell(f"{t['oov_rate']:.1%}" if isinstance(t.get("oov_rate"), (int, float)) else ""),
            data_cell(m),
            Cell(fmt_int(m.get("train_tokens")), sub=UNITS.get(m.get("unit", ""), "") if m.get("train_tokens") else ""),
        ])
    return Table(id="ngram-table", columns=["run", "order", "unit", "test bits/char", "valid bits/char", "vocabulary",
                                      "test OOV", "training text", "trained on (tokens)"], rows=out)


def data_cell(m: dict) -> Cell:
    """Which training text a run had: the whole train split, or its first characters (the RNNs'
    shared data budget, which the n-gram's `-matched` runs are estimated on)."""
    n = m.get("train_chars")
    if isinstance(n, int):
        return Cell("RNN budget" if is_ngram(m) else "budget", sub=f"first {n:,} characters")
    return Cell("whole split" if "train_chars" in m else "")


def unit_of(m: dict) -> str:
    return UNITS.get(m.get("unit", "word") if is_ngram(m) else m["lm"], "tokens")


def train_tokens_cell(m: dict, params: Any) -> Cell:
    """Tokens the model was trained on: recorded in its metrics, else the RNN's budget from
    params (an upper bound: the cap times the epochs), else blank."""
    if isinstance(m.get("train_tokens"), int):
        return Cell(fmt_int(m["train_tokens"]))
    budget = None if is_ngram(m) else train_budget(params, m["lm"])
    if budget is None:
        return Cell()
    cap, epochs = budget
    if cap is None:
        return Cell("whole split", sub=f"\u00d7 {epochs} epochs")
    return Cell(f"\u2264 {cap * epochs:,}", sub=f"{cap:,} \u00d7 {epochs} epochs")


def cost_table(rows: list[dict], params: Any) -> Table:
    out = []
    for m in rows:
        ngram = is_ngram(m)
        n = m.get("n_params")
        size = f"{n:,} {'stored n-grams' if ngram else 'weights'}" if isinstance(n, int) else ""
        hidden = ((m.get("sizes") or {}).get("model") or {}).get("hidden")
        solved = f"hidden {hidden}" + (f" (budget {m['param_budget']:,})" if m.get("param_budget") else "")
        speed = m.get("tokens_per_s")
        wall = m.get("wall_s", m.get("estimate_s"))
        out.append([
            run_cell(m["run"]),
            Cell(m["lm"]),
            Cell(size, sub=solved if hidden else ""),
            Cell(unit_of(m)),
            Cell(f"{speed:,.0f}" if isinstance(speed, (int, float)) else ""),
            Cell(fmt_seconds(wall), sub="estimation" if ngram and "wall_s" not in m and wall is not None else ""),
            data_cell(m),
            train_tokens_cell(m, params),
            Cell(status(m), kind="diverged" if m.get("diverged") else ""),
        ])
    columns = ["run", "LM type", "size", "unit", "train tokens/s", "wall time", "training text", "train tokens",
               "status"]
    keep = [i for i, _ in enumerate(columns) if any(row[i].text for row in out)]  # none known: no column
    return Table(id="cost-table", columns=[columns[i] for i in keep], rows=[[row[i] for i in keep] for row in out])


def best_table(design: Design, cells: dict[str, list[dict]], ngrams: list[dict],
               segments_of: Callable[[str], Segments | None]) -> Table:
    """The best cell of each LM type (and corpus; the n-gram once per training text), n-gram
    first, each against the best of all: the change in test bits/char and its spread."""
    multi = len(design.levels["corpus"]) > 1
    groups = []
    for c in design.levels["corpus"]:
        for data in dict.fromkeys(data_cell(m).text for m in ngrams):
            found = [[m] for m in ngrams if m.get("corpus", c) == c and data_cell(m).text == data]
            groups.append((c, f"ngram, {data}" if data else "ngram", found))
    groups += lm_groups(design, cells)
    best = {(corpus, lm): best_cell(found) for corpus, lm, found in groups if found}
    rows = []
    for (corpus, lm), b in best.items():
        label = f"{lm} ({corpus})" if multi else lm
        if b is None:
            rows.append([Cell(label, kind="label"), Cell("every run diverged", kind="diverged"), Cell(), Cell(),
                         Cell()])
            continue
        top = best_cell([x for (c, _), x in best.items() if c == corpus and x is not None])
        c = None if b is top else compare([(top, b)], segments_of)
        rows.append([Cell(label, kind="label"), run_cell(b[0]["run"]), seeds_cell(b),
                     Cell(f"closed vocab {CLOSED}" if closed_vocab(b[0]) else "open",
                          kind="closed" if closed_vocab(b[0]) else ""),
                     Cell("best", kind="label") if c is None else Cell(fmt_delta(c.delta), sub=spread_note(c))])
    return Table(id="best-table", columns=["LM type", "best run", "test bits/char", "vocabulary", "vs the best"],
                 rows=rows)


def data_note(ngrams: list[dict], rnn_lms: list[str], params: Any, rnn_rows: list[dict]) -> str:
    """Whether the models saw the same training data (they usually do not)."""
    parts = []
    for m in [m for m in ngrams if not isinstance(m.get("train_chars"), int)][:1]:
        n = m.get("train_tokens")
        whole = f" ({n:,} {unit_of(m)})" if isinstance(n, int) else ""
        parts.append(f"The n-gram models marked `whole split` count the whole train split{whole}.")
    chars = {m.get("train_chars") for m in rnn_rows}
    if rnn_rows and len(chars) == 1 and isinstance(n_chars := next(iter(chars)), int):
        parts.append(f"Every RNN run trained on the same text, the whole lines within the first {n_chars:,} "
                     "characters of the train split (`train.max_train_chars`), each LM type in its own tokens; the "
                     "n-gram runs marked `RNN budget` (`<corpus>-ngram-<order>-matched`) are estimated on exactly "
                     "that text. Compare LM types with the RNN-budget n-gram; the whole-split n-gram shows what "
                     "the rest of the data is worth.")
        return " ".join(parts)
    recorded = [m for m in rnn_rows if isinstance(m.get("train_tokens"), int)]
    if recorded and len(recorded) == len(rnn_rows):
        parts.append("The RNN runs' training tokens, all epochs, in their own units, are in the cost table's "
                     "`train tokens` column: compare LM types with the amounts of training data in mind.")
        return " ".join(parts)
    budgets = {lm: train_budget(params, lm) for lm in rnn_lms if lm in RNN_LMS}
    if budgets and all(b is not None and b[0] is None for b in budgets.values()):
        parts.append("RNN runs train on the whole train split too (no `max_train_tokens` cap), for "
                     + ", ".join(f"{b[1]} epochs ({lm})" for lm, b in budgets.items()) + ".")
        return " ".join(parts)
    if budgets and all(b is not None for b in budgets.values()):
        each = []
        for lm, (cap, epochs) in budgets.items():
            amount = "the whole train split" if cap is None else f"the first {cap:,} {UNITS[lm]}"
            each.append(f"{lm}: {amount} \u00d7 {epochs} epochs")
        parts.append("RNN runs train on at most " + "; ".join(each) + " (`train.max_train_tokens`, "
                     "`train.epochs` and `train_overrides`).")
    else:
        parts.append("RNN runs train only on the first `train.max_train_tokens` tokens of the train split (in "
                     "their own units; `train_overrides.<lm>` may change the cap per LM type, see params.yaml).")
    parts.append("So models did not see the same amount of training data: compare LM types with that in mind.")
    return " ".join(parts)


# ----------------------------------------------------------------------------- tuning


def tuning_table(tuned: list[Tuned]) -> Table:
    """Per target: test bits/char with the default schedule and with the tuned one, the change,
    the tuned values and the study's trial counts."""
    rows = []
    for t in tuned:
        change = bpc(t.tuned) - bpc(t.default) if t.default is not None else math.nan
        values = (t.tuned.get("tuned") or {}).get("params") or {}
        trials = (t.summary or {}).get("trials") or {}
        rows.append([
            Cell(t.target, kind="label"),
            score_cell(t.default) if t.default is not None else Cell("not in the grid", kind="missing"),
            score_cell(t.tuned, anchor=True, best=math.isfinite(change) and change < 0),
            Cell(fmt_delta(change) if math.isfinite(change) else ""),
            Cell("; ".join(f"{k.rsplit('.', 1)[-1]} {_short(v)}" for k, v in values.items())),
            Cell(", ".join(f"{n} {state}" for state, n in trials.items() if n)),
        ])
    return Table(id="tuning-table", columns=["target", "default schedule", "tuned schedule", "change",
                                             "tuned values", "trials"], rows=rows)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# ----------------------------------------------------------------------------- samples


def sample_lines(run: str, n: int = 3, width: int = 240) -> list[str] | None:
    """The first n lines of the run's first generated sample (models/<run>/samples.txt), or None."""
    f = paths.RunDir(run).file(paths.SAMPLES)
    if not f.is_file():
        return None
    lines = []
    for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("--- sample"):
            if lines:
                break
            continue
        lines.append(line if len(line) <= width else line[:width] + "\u2026")
        if len(lines) == n:
            break
    return lines
