"""The report: exactly the runs params.yaml names, pivot tables, main effects, the n-gram
baseline's closed-vocabulary flag, links to runs, and the curve file format."""

import html
import itertools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline import paths
from pipeline.artifacts import write_curve, write_segments
from pipeline.config import GridConfig, parse_params
from pipeline.errors import UserError
from pipeline.evaluation import Segments
from pipeline.io import read_csv, write_json, write_text
from pipeline.reporting import expected_runs, render
from pipeline.reporting.analysis import main_effects
from pipeline.reporting.runs import collect, design
from stages import report as report_stage
from tests.helpers import ROOT, repo_params


def metrics(run: str, lm: str, bpc: float, **extra) -> dict:
    scores = {"bits_per_char": bpc, "word_ppl": 100.0, "open_vocab": lm != "word"}
    return {"run": run, "lm": lm, "test": scores, "valid": scores, "n_params": 10, **extra}


# ----------------------------------------------------------------------------- synthetic results
# (also used by tests/test_report_browser.py)


def scoped_params(grid: dict, orders=(3,), keys=("grid", "ngram.orders"), **sections):
    """The report stage's view of params.yaml with this grid (and other sections replaced)."""
    raw = repo_params()
    raw["grid"] = grid
    raw["corpora"].update({c: raw["corpora"]["shakespeare"] for c in grid["corpus"]})
    raw["ngram"]["orders"] = list(orders)
    raw.update(sections)
    return parse_params(raw).scoped(list(keys))


def rnn_metrics(run: str, lm: str, cell: str, dropout, clip, bpc: float | None, diverged_epoch: int | None = None,
                **extra) -> dict:
    """results/<run>.json (with its cost) of an RNN run as the trainer writes it (bpc None: diverged)."""
    scores = None if bpc is None else {
        "bits_per_char": bpc, "word_ppl": round(2 ** (bpc * 4.68), 3), "open_vocab": lm != "word",
        "oov_rate": 0.1445 if lm == "word" else 0.0, "n_chars": 1000, "n_words": 200,
    }
    return {"run": run, "corpus": run.split("-")[0], "lm": lm, "cell": cell, "dropout": float(dropout),
            "clip": float(clip), "diverged": bpc is None, "diverged_epoch": diverged_epoch, "epochs": 2,
            "test": scores, "valid": scores and {**scores, "bits_per_char": bpc + 0.02},
            "n_params": 100_000, "tokens_per_s": 5000.0, "wall_s": 42.0, **extra}


def ngram_metrics(run: str, order: int, bpc: float, open_vocab: bool = False, unit: str = "word") -> dict:
    scores = {"bits_per_char": bpc, "word_ppl": 87.4, "open_vocab": open_vocab, "oov_rate": 0.1445}
    return {"run": run, "corpus": run.split("-")[0], "lm": "ngram", "order": order, "unit": unit,
            "test": scores, "valid": {**scores, "bits_per_char": bpc + 0.01}, "n_params": 629_289,
            "train_tokens": 968_015, "estimate_s": 0.33}


BASE = {"char": 2.9, "word": 1.7, "hybrid": 2.6, "subword": 3.0}
CELL = {"rnn_tanh": 0.4, "lstm": 0.05, "gru": 0.0}


def write_results(grid: dict, orders=(3, 5), diverged=(), bpc=None, samples: str | None = None) -> list[str]:
    """Metrics, curves (2 epochs) and samples of every run of the grid; returns the run ids.
    bpc(lm, cell, dropout, clip) -> test bits/char (default: a smooth made-up function)."""
    bpc = bpc or (lambda lm, cell, d, c: round(BASE[lm] + CELL[cell] + 0.1 * float(d)
                                                + (0.5 if cell == "rnn_tanh" and float(c) == 0 else 0), 4))
    for c, o, matched in itertools.product(grid["corpus"], orders, (False, True)):
        run = paths.run_id(c, "ngram", o, *(["matched"] if matched else []))
        write_json(paths.result_file(run), {**ngram_metrics(run, o, 1.38 + 0.001 * o + 0.5 * matched),
                                            "train_chars": 300_000 if matched else None})
    for combo, seed in itertools.product(itertools.product(*(grid[a] for a in ("corpus", "lm", "cell", "dropout",
                                                                              "clip"))), [None, *grid.get("seed", [])]):
        group = paths.run_id(*combo)
        run = paths.run_id(*combo, *([seed] if seed is not None else []))
        _, lm, cell, d, c = combo
        value = None if run in diverged else bpc(lm, cell, d, c) if seed is None else bpc(lm, cell, d, c, seed)
        write_json(paths.result_file(run), rnn_metrics(run, lm, cell, d, c, value, 1 if value is None else None,
                                                       group=group, seed=seed or 1337))
        last = value if value is not None else 9.0
        write_curve(paths.curve_file(run), [
            {"epoch": 1, "lr": 2.0, "train_loss": 2.2 * last, "grad_norm": 1.0, "valid_bits_per_char": last + 0.3,
             "valid_loss": last, "tokens_per_s": 4000.0, "wall_s": 20.0},
            {"epoch": 2, "lr": 1.0, "train_loss": 2.0 * last, "grad_norm": 0.8, "valid_bits_per_char": last,
             "valid_loss": last, "tokens_per_s": 6000.0, "wall_s": 22.0},
        ])
        if samples is not None:
            write_text(paths.RunDir(run).file(paths.SAMPLES), samples.format(run=run))
    return expected_runs(GridConfig(**grid), orders)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cells_of(table_md: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in table_md.splitlines()
            if line.startswith("|")]


def md_table_after(md: str, heading: str) -> list[list[str]]:
    """The rows of the first Markdown table after a heading line."""
    rest = md[md.index(heading):]
    block = re.search(r"(^\|.*\n)+", rest, re.M).group(0)
    return cells_of(block)


def td(page: str, run: str) -> str:
    """The HTML cell anchoring a run."""
    return re.search(rf'<td id="run-{re.escape(run)}"[^>]*>.*?</td>', page).group(0)


# ----------------------------------------------------------------------------- which runs


def test_expected_runs_are_dvc_matrix_keys():
    grid = GridConfig(corpus=["c"], lm=["word", "char"], cell=["lstm"], dropout=[0.0, 0.5], clip=[0, 5])
    assert expected_runs(grid, [3, 5]) == [
        "c-ngram-3", "c-ngram-3-matched", "c-ngram-5", "c-ngram-5-matched",
        "c-word-lstm-0.0-0", "c-word-lstm-0.0-5", "c-word-lstm-0.5-0", "c-word-lstm-0.5-5",
        "c-char-lstm-0.0-0", "c-char-lstm-0.0-5", "c-char-lstm-0.5-0", "c-char-lstm-0.5-5",
    ]


def test_stale_metrics_are_not_reported(project):
    write_json(paths.result_file("c-ngram-3"), metrics("c-ngram-3", "ngram", 2.5, order=3))
    write_json(paths.result_file("c-word-lstm-0.0-5"), metrics("c-word-lstm-0.0-5", "word", 2.0,
                                                                  cell="lstm", dropout=0.0, clip=5))
    write_json(paths.result_file("c-word-gru-0.0-5"), metrics("c-word-gru-0.0-5", "word", 1.0))  # stale
    write_curve(paths.curve_file("c-word-lstm-0.0-5"), [{"epoch": 1, "valid_bits_per_char": 2.2}])
    rows = render(["c-ngram-3", "c-word-lstm-0.0-5"])
    assert [m["run"] for m in rows] == ["c-word-lstm-0.0-5", "c-ngram-3"]
    readme = (paths.REPORTS / "README.md").read_text()
    assert "c-word-lstm-0.0-5" in readme and "c-word-gru" not in readme
    assert "c-word-gru" not in (paths.REPORTS / "index.html").read_text()
    for fig in ("learning_curves", "test_bpc"):  # no main effects: each factor has one level
        assert paths.figure_file(fig).stat().st_size > 0


def test_missing_expected_metrics_is_a_user_error_naming_the_file(project):
    write_json(paths.result_file("c-ngram-3"), metrics("c-ngram-3", "ngram", 2.5, order=3))
    with pytest.raises(UserError, match=r"results/c-ngram-5\.json: not found"):
        render(["c-ngram-3", "c-ngram-5"])


def test_report_stage_reports_the_params_grid_as_dvc_names_it(project):
    params = repo_params()
    params["grid"] = {"corpus": ["shakespeare"], "lm": ["word"], "cell": ["lstm"], "dropout": [0.0], "clip": [5]}
    params["ngram"]["orders"] = [3]
    Path("params.yaml").write_text(yaml.safe_dump(params))
    # clip 5 in the YAML is run ...-5 (DVC's key), not ...-5.0
    for run, lm in [("shakespeare-ngram-3", "ngram"), ("shakespeare-ngram-3-matched", "ngram"),
                    ("shakespeare-word-lstm-0.0-5", "word"), ("shakespeare-ngram-5", "ngram"),
                    ("shakespeare-word-lstm-0.0-0", "word")]:
        write_json(paths.result_file(run), metrics(run, lm, 2.0))
    report_stage.main([])
    readme = (paths.REPORTS / "README.md").read_text()
    page = (paths.REPORTS / "index.html").read_text()
    for text in (readme, page):
        assert "shakespeare-ngram-3" in text and "shakespeare-word-lstm-0.0-5" in text
        assert "shakespeare-ngram-3-matched" in text
        assert "shakespeare-ngram-5" not in text and "shakespeare-word-lstm-0.0-0" not in text
    assert 'id="run-shakespeare-word-lstm-0.0-5"' in page and 'id="run-shakespeare-ngram-3"' in page


def test_the_report_stage_sets_each_tuned_run_against_its_grid_member(project):
    params = repo_params(tune=True)
    params["corpora"]["c"] = params["corpora"].pop("shakespeare")
    params["grid"] = {"corpus": ["c"], "lm": ["word"], "cell": ["lstm"], "dropout": [0.0], "clip": [5]}
    params["ngram"]["orders"] = [3]
    params["tune"]["targets"] = {"w": {"corpus": "c", "lm": "word", "cell": "lstm", "dropout": 0.0, "clip": 5},
                                 "g": {"corpus": "c", "lm": "word", "cell": "gru", "dropout": 0.0, "clip": 5}}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    write_json(paths.result_file("c-word-lstm-0.0-5"), metrics("c-word-lstm-0.0-5", "word", 2.0))
    for run in ("c-ngram-3", "c-ngram-3-matched"):
        write_json(paths.result_file(run), metrics(run, "ngram", 2.2, order=3))
    for target, value in (("w", 1.75), ("g", 2.5)):
        tuned = metrics(f"{target}-tuned", "word", value)
        tuned["tuned"] = {"from": f"tuning/{target}/best_params.json",
                          "params": {"train.optim.lr": 0.123456, "train.schedule.kind": "plateau"}}
        write_json(paths.result_file(f"{target}-tuned"), tuned)
    write_json(paths.tuning_dir("w") / paths.TUNING_SUMMARY, {"trials": {"complete": 4, "pruned": 2, "fail": 0}})
    report_stage.main([])
    rows = {r[0]: r for r in md_table_after((paths.REPORTS / "README.md").read_text(), "Tuned learning-rate")}
    assert rows["w"][1].startswith("2.000") and rows["w"][2].startswith("**1.750") and rows["w"][3] == "-0.250"
    assert rows["w"][4] == "lr 0.1235; kind plateau" and rows["w"][5] == "4 complete, 2 pruned"
    assert rows["g"][1] == "not in the grid" and rows["g"][3] == ""  # gru is not a grid member here
    assert 'id="run-w-tuned"' in (paths.REPORTS / "index.html").read_text()
    (paths.RESULTS / "g-tuned.json").unlink()
    with pytest.raises(UserError, match=r"results/g-tuned\.json: not found"):
        report_stage.main([])


def test_a_report_of_the_default_grid_shows_every_run_once_anchored(project):
    grid = repo_params()["grid"]
    runs = write_results(grid, samples="--- sample 0 (seed 1)\nline one of {run}\nline two\nline three\nline four\n")
    rows = render(runs, scoped_params(grid, orders=(3, 5)))
    assert len(rows) == len(runs) == 2 * 2 + 4 * 3 * 2 * 2  # n-gram orders x two data budgets, the grid
    page = (paths.REPORTS / "index.html").read_text()
    for run in runs:
        assert page.count(f'id="run-{run}"') == 1, run
    for lm in grid["lm"]:
        assert f'<table id="pivot-{lm}">' in page and f'<section id="lm-{lm}">' in page
    assert '<img alt="learning curves" src="data:image/png;base64,' in page  # one file: figures inline
    assert 'src="figures/' not in page
    readme = (paths.REPORTS / "README.md").read_text()
    assert "![learning curves](figures/learning_curves.png)" in readme
    # the best word run's sample: its first three lines, not the fourth
    assert "line one of shakespeare-word-gru-0.0-0" in readme and "line three" in readme
    assert "line four" not in readme


# ----------------------------------------------------------------------------- pivot tables


SMALL = {"corpus": ["c"], "lm": ["word", "char"], "cell": ["lstm", "gru"], "dropout": [0.0, 0.5], "clip": [0, 5]}
WORD_BPC = {  # (cell, dropout, clip) -> test bits/char of the word runs (None: diverged)
    ("lstm", 0.0, 0): 2.00, ("lstm", 0.0, 5): 1.90, ("lstm", 0.5, 0): 1.80, ("lstm", 0.5, 5): 1.70,
    ("gru", 0.0, 0): 1.95, ("gru", 0.0, 5): None, ("gru", 0.5, 0): 1.60, ("gru", 0.5, 5): 1.50,
}


def small_grid(grid=SMALL) -> list[str]:
    def bpc(lm, cell, d, c):
        return WORD_BPC[cell, d, c] if lm == "word" else 3.0 - 0.1 * (cell == "gru") - 0.01 * c
    diverged = {paths.run_id("c", "word", cell, d, c) for (cell, d, c), v in WORD_BPC.items() if v is None}
    return write_results(grid, orders=(3,), diverged=diverged, bpc=bpc)


def test_pivot_per_lm_type_marks_the_best_and_the_diverged(project):
    runs = small_grid()
    render(runs, scoped_params(SMALL))
    md = (paths.REPORTS / "README.md").read_text()
    word = md_table_after(md, "### word")
    ppl = {v: f"{2 ** (v * 4.68):.1f}" for v in (1.5, 1.6, 1.7, 1.8, 1.9, 1.95, 2.0)}
    assert word == [
        ["cell", "dropout 0.0, clip 0 (off)", "dropout 0.0, clip 5", "dropout 0.5, clip 0 (off)",
         "dropout 0.5, clip 5"],
        ["---"] * 5,
        ["lstm", f"2.000\u2020 (ppl {ppl[2.0]})", f"1.900\u2020 (ppl {ppl[1.9]})", f"1.800\u2020 (ppl {ppl[1.8]})",
         f"1.700\u2020 (ppl {ppl[1.7]})"],
        ["gru", f"1.950\u2020 (ppl {ppl[1.95]})", "diverged (epoch 1)", f"1.600\u2020 (ppl {ppl[1.6]})",
         f"**1.500\u2020 (ppl {ppl[1.5]})** \u2605"],
    ]
    assert "### word \u2014 closed vocabulary \u2020" in md and "### char\n" in md  # char is open
    char = md_table_after(md, "### char")
    assert char[3][2] == f"**2.850 (ppl {2 ** (2.85 * 4.68):,.0f})** \u2605"  # ppl >= 10,000: no decimals
    assert sum("\u2605" in c for row in word + char for c in row) == 2  # one best per LM type
    page = (paths.REPORTS / "index.html").read_text()
    best = td(page, "c-word-gru-0.5-5")
    assert 'class="closed best"' in best and "<strong>1.500\u2020</strong>" in best and "<br><small>ppl" in best
    assert 'class="diverged"' in td(page, "c-word-gru-0.0-5") and "diverged (epoch 1)" in td(page, "c-word-gru-0.0-5")
    assert 'title="c-word-lstm-0.0-0"' in td(page, "c-word-lstm-0.0-0")


def test_pivot_leaves_runs_not_given_blank(project):
    runs = small_grid()
    render([r for r in runs if r != "c-char-lstm-0.5-5"], scoped_params(SMALL))
    char = md_table_after((paths.REPORTS / "README.md").read_text(), "### char")
    assert char[2][4] == ""  # lstm, dropout 0.5, clip 5
    assert '<td class="missing"></td>' in (paths.REPORTS / "index.html").read_text()


def test_without_params_the_grid_comes_from_the_run_ids(project):
    """render(runs) alone (as the train tests call it): levels as the run ids spell them."""
    runs = small_grid()
    render(runs, scoped_params(SMALL))
    with_params = (paths.REPORTS / "README.md").read_text()
    render(runs)
    md = (paths.REPORTS / "README.md").read_text()
    assert md_table_after(md, "### word") == md_table_after(with_params, "### word")
    assert md_table_after(md, "## Main effects") == md_table_after(with_params, "## Main effects")


# ----------------------------------------------------------------------------- main effects


def test_main_effects_average_pairs_where_both_runs_scored(project):
    runs = small_grid()
    rows = collect(runs)
    d = design(rows, GridConfig(**SMALL), [3])
    effects = {(e.factor, e.level, e.lm): e for e in main_effects(d, {m["run"]: [m] for m in rows}, lambda run: None)}
    # by hand, word (gru-0.0-5 diverged, so each factor loses the one pair that holds it):
    # lstm -> gru: (1.95-2.00) + (1.60-1.80) + (1.50-1.70) over 3 pairs = -0.15
    # dropout 0.0 -> 0.5: (1.80-2.00) + (1.70-1.90) + (1.60-1.95) over 3 = -0.25
    # clip 0 -> 5: (1.90-2.00) + (1.70-1.80) + (1.50-1.60) over 3 = -0.10
    for key, delta in [(("cell", "gru", "word"), -0.15), (("dropout", "0.5", "word"), -0.25),
                       (("clip", "5", "word"), -0.10)]:
        assert effects[key].delta == pytest.approx(delta) and (effects[key].pairs, effects[key].possible) == (3, 4)
    # char: gru is 0.1 better everywhere, clip 5 is 0.05 better, dropout changes nothing
    assert effects["cell", "gru", "char"].delta == pytest.approx(-0.1) and effects["cell", "gru", "char"].pairs == 4
    assert effects["clip", "5", "char"].delta == pytest.approx(-0.05)
    assert effects["dropout", "0.5", "char"].delta == pytest.approx(0.0)

    render(runs, scoped_params(SMALL))
    table = md_table_after((paths.REPORTS / "README.md").read_text(), "## Main effects")
    assert table[0] == ["factor", "change", "word", "char"]
    assert table[2:] == [
        ["cell", "lstm \u2192 gru", "-0.150 (3 of 4 pairs)", "-0.100"],
        ["dropout", "0.0 \u2192 0.5", "-0.250 (3 of 4 pairs)", "+0.000"],
        ["clip", "0 \u2192 5", "-0.100 (3 of 4 pairs)", "-0.050"],
    ]


def test_the_reference_level_is_the_first_in_params_grid(project):
    grid = {**SMALL, "cell": ["gru", "lstm"]}
    render(small_grid(grid), scoped_params(grid))
    table = md_table_after((paths.REPORTS / "README.md").read_text(), "## Main effects")
    assert table[2] == ["cell", "gru \u2192 lstm", "+0.150 (3 of 4 pairs)", "+0.100"]


# ----------------------------------------------------------------------------- n-gram, data, cost


def test_closed_vocabulary_ngram_figures_are_flagged_and_explained(project):
    grid = {"corpus": ["c"], "lm": ["char"], "cell": ["lstm"], "dropout": [0.0], "clip": [5]}
    runs = write_results(grid, orders=(3, 5))
    write_json(paths.result_file("c-ngram-5"), ngram_metrics("c-ngram-5", 5, 1.9, open_vocab=True, unit="char"))
    render(runs, scoped_params(grid, orders=(3, 5)))
    md = (paths.REPORTS / "README.md").read_text()
    table = md_table_after(md, "## n-gram baseline")
    assert table[0] == ["run", "order", "unit", "test bits/char", "valid bits/char", "vocabulary", "test OOV",
                        "training text", "trained on (tokens)"]
    rows = {row[0]: row for row in table[2:]}
    assert rows["c-ngram-3"][1:6] == ["3", "word", "1.383\u2020 (ppl 87.4)", "1.393", "closed vocab \u2020"]
    assert rows["c-ngram-5"][1:6] == ["5", "char", "1.900 (ppl 87.4)", "1.910", "open"]
    assert rows["c-ngram-3"][7:] == ["whole split", "968,015 (words)"]
    assert rows["c-ngram-3-matched"][7] == "RNN budget (first 300,000 characters)"  # both budgets shown
    assert "<unk>` swallows the probability mass" in md and "14.4% of the test words" in md
    assert "The n-gram models marked `whole split` count the whole train split (968,015 words)" in md
    page = (paths.REPORTS / "index.html").read_text()
    assert 'class="closed">closed vocab \u2020</td>' in page
    assert "<code>&lt;unk&gt;</code> swallows" in page


def test_training_data_note_reads_the_budget_when_the_stage_declares_it(project):
    grid = {"corpus": ["c"], "lm": ["char", "word"], "cell": ["lstm"], "dropout": [0.0], "clip": [5]}
    runs = write_results(grid, orders=(3,))
    render(runs, scoped_params(grid))  # the stage's params today: grid and ngram.orders only
    md = (paths.REPORTS / "README.md").read_text()
    assert "RNN runs train only on the first `train.max_train_tokens` tokens of the train split" in md
    keys = ("grid", "ngram.orders", "train.max_train_tokens", "train.epochs", "train_overrides")
    train = {**repo_params()["train"], "max_train_tokens": 100_000, "max_train_chars": None}
    budgets = {**repo_params()["train_overrides"], "char": {"max_train_tokens": 300_000}}
    render(runs, scoped_params(grid, keys=keys, train=train, train_overrides=budgets))
    md = (paths.REPORTS / "README.md").read_text()
    assert ("RNN runs train on at most char: the first 300,000 characters \u00d7 2 epochs; "
            "word: the first 100,000 words \u00d7 2 epochs") in md
    cost = {row[0]: row for row in md_table_after(md, "## Cost")}
    assert cost["c-char-lstm-0.0-5"][1:] == ["char", "100,000 weights", "characters", "5,000", "42.0 s", "",
                                             "\u2264 600,000 (300,000 \u00d7 2 epochs)", "ok"]
    assert cost["c-ngram-3"][1:] == ["ngram", "629,289 stored n-grams", "words", "", "0.3 s (estimation)",
                                     "whole split", "968,015", "ok"]
    # a count recorded by the run wins
    m = rnn_metrics("c-word-lstm-0.0-5", "word", "lstm", 0.0, 5, 1.7, train_tokens=123_456)
    write_json(paths.result_file("c-word-lstm-0.0-5"), m)
    render(runs, scoped_params(grid, keys=keys, train=train, train_overrides=budgets))
    cost = {row[0]: row for row in md_table_after((paths.REPORTS / "README.md").read_text(), "## Cost")}
    assert cost["c-word-lstm-0.0-5"][7] == "123,456"


# ----------------------------------------------------------------------------- links, samples, curves


def test_links_turn_run_ids_into_links(project):
    runs = small_grid()
    links = {r: f"http://127.0.0.1:5000/#/runs/{i}?a=1&b=2" for i, r in enumerate(runs)}
    render(runs, scoped_params(SMALL), links=links)
    page = (paths.REPORTS / "index.html").read_text()
    url = html.escape(links["c-word-gru-0.5-5"])
    assert f'<a href="{url}">1.500\u2020</a>' in td(page, "c-word-gru-0.5-5")
    assert f'<a href="{html.escape(links["c-ngram-3"])}">c-ngram-3</a>' in page
    md = (paths.REPORTS / "README.md").read_text()
    assert f"[c-ngram-3]({links['c-ngram-3']})" in md
    assert f"**[1.500\u2020]({links['c-word-gru-0.5-5']}) (ppl" in md


def test_samples_are_escaped_and_curves_may_grow_columns_and_rows(project):
    grid = {"corpus": ["c"], "lm": ["word"], "cell": ["lstm"], "dropout": [0.0], "clip": [5]}
    runs = write_results(grid, orders=(3,), samples="--- sample 0 (seed 1)\n<b>KING</b> & ``` fool\nx\n")
    write_curve(paths.curve_file("c-word-lstm-0.0-5"), [  # finer points: train-only rows, a new column
        {"epoch": 0.5, "train_loss": 5.0, "step": 10},
        {"epoch": 1, "train_loss": 4.0, "valid_bits_per_char": 2.0, "step": 20},
        {"epoch": 1.5, "train_loss": float("nan"), "step": 30},
        {"epoch": 2, "train_loss": 3.5, "valid_bits_per_char": 1.7, "step": 40},
    ])
    assert read_csv(paths.curve_file("c-word-lstm-0.0-5"))[0]["valid_bits_per_char"] == ""
    render(runs, scoped_params(grid))
    page = (paths.REPORTS / "index.html").read_text()
    assert "<pre>&lt;b&gt;KING&lt;/b&gt; &amp; ``` fool\nx</pre>" in page
    md = (paths.REPORTS / "README.md").read_text()
    assert "````\n<b>KING</b> & ``` fool\nx\n````" in md  # a fence longer than any in the text
    assert paths.figure_file("learning_curves").stat().st_size > 0


def test_stale_figures_are_removed(project):
    grid = {"corpus": ["c"], "lm": ["word"], "cell": ["lstm"], "dropout": [0.0], "clip": [5]}
    write_text(paths.figure_file("valid_curves"), "old")
    render(write_results(grid, orders=(3,)), scoped_params(grid))
    assert not paths.figure_file("valid_curves").exists() and paths.figure_file("test_bpc").exists()


# ----------------------------------------------------------------------------- curve files


def test_curve_file_round_trip(tmp_path):
    records = [{"epoch": 1, "lr": 0.5, "valid_bits_per_char": 2.5, "note": "x"},
               {"epoch": 2, "lr": 0.25, "valid_bits_per_char": 2.25, "extra": 7}]
    write_curve(tmp_path / "c.csv", records)
    assert (tmp_path / "c.csv").read_text().splitlines()[0] == "epoch,lr,valid_bits_per_char,extra"
    assert read_csv(tmp_path / "c.csv") == [
        {"epoch": "1", "lr": "0.5", "valid_bits_per_char": "2.5", "extra": ""},
        {"epoch": "2", "lr": "0.25", "valid_bits_per_char": "2.25", "extra": "7"},
    ]


def test_train_stage_does_not_import_matplotlib():
    """The train stage writes curves through the artifact writer; it needs no plotting library."""
    code = "import sys, stages.train; assert 'matplotlib' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_importing_the_report_package_does_not_import_matplotlib():
    code = "import sys, pipeline.reporting; assert 'matplotlib' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ----------------------------------------------------------------------------- seeds, segments


def test_seeds_read_as_mean_sd_and_effects_carry_both_spreads(project):
    grid = {"corpus": ["c"], "lm": ["word"], "cell": ["lstm", "gru"], "dropout": [0.0, 0.5], "clip": [5],
            "seed": [1, 2]}
    noise = {1337: 0.0, 1: 0.01, 2: -0.012}
    values = {}

    def bpc(lm, cell, d, c, seed=1337):  # gru 0.3 better, far above the seed noise; dropout 0.5: +0.002
        v = values[cell, d, seed] = round(2.0 - 0.3 * (cell == "gru") + 0.002 * float(d) + noise[seed], 6)
        return v

    runs = write_results(grid, orders=(3,), bpc=bpc)
    rng = np.random.default_rng(0)
    chars = rng.integers(900, 1100, 30)
    for m in collect(runs):  # each segment's NLL: the run's bits/char, give or take 3%
        per_char = m["test"]["bits_per_char"] * np.log(2) * rng.normal(1, 0.03, chars.size)
        write_segments(paths.segments_file(m["run"]), Segments(per_char * chars, chars))
    render(runs, scoped_params(grid))
    md = (paths.REPORTS / "README.md").read_text()

    word = md_table_after(md, "### word")
    lstm = [values["lstm", 0.0, s] for s in (1337, 1, 2)]
    assert word[2][1] == f"{np.mean(lstm):.3f} \u00b1 {np.std(lstm, ddof=1):.3f}\u2020 (n = 3)"
    effects = {row[0]: row for row in md_table_after(md, "## Main effects")[2:]}
    assert re.fullmatch(r"-0\.300 \(segments \[-0\.\d+, -0\.\d+\]; seeds \(n = 3\) resolved\)", effects["cell"][2])
    assert re.fullmatch(r"\+0\.00\d \(segments \[-0\.\d+, \+0\.\d+\] not resolved; seeds \(n = 3\) not resolved\)",
                        effects["dropout"][2])
    best = {row[0]: row for row in md_table_after(md, "## Best run per LM type")[2:]}
    assert set(best) == {"ngram, whole split", "ngram, RNN budget", "word"}
    assert best["ngram, whole split"][4] == "best" and best["word"][4].startswith("+0.")
    assert "seeds not resolved" in md and "paired bootstrap" in md
