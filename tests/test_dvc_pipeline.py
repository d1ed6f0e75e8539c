"""The real DAG with real DVC in a temporary git repo, on a small local corpus.

Checks what a user relies on: the pipeline runs end to end, a second `dvc repro` runs
nothing, and a param or code change re-runs only the stages that read it.
"""

import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.io import read_json
from tests.helpers import dvc_project, ran, repo_params, set_param, write_scenes

WORDS = "the king and queen of rome speak to a fool who sings while lords come and go".split()

pytestmark = pytest.mark.slow


def toy_params(corpus: Path) -> dict:
    params = repo_params()
    params["corpora"] = {"toy": {"source": "local", "path": str(corpus)}}
    params["grid"] = {"corpus": ["toy"], "lm": ["word"], "cell": ["lstm"], "dropout": [0.0], "clip": [5], "seed": []}
    params["ngram"]["orders"] = [2]
    params["tokenizers"]["subword"]["vocab_size"] = 300
    params["train"].update(epochs=1, max_train_chars=8000, max_train_tokens=2000, samples=1, sample_tokens=10)
    params["train"]["model"].update(embed_dim=16, hidden=16)
    params["prepare"]["split"].update(valid=0.1, test=0.1)
    return params


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    d = tmp_path_factory.mktemp("dvcrepo")
    write_scenes(d.parent / f"{d.name}-toy.txt", WORDS, n_scenes=60, n_lines=12)
    return d, dvc_project(d, toy_params(d.parent / f"{d.name}-toy.txt"))


def test_full_run_then_nothing_then_only_what_changed(repo):
    d, run = repo
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == {
        "code", "check_params", "sources@toy", "download@toy", "prepare@toy", "tokenize@toy-char", "tokenize@toy-word",
        "tokenize@toy-hybrid", "tokenize@toy-subword", "ngram@toy-ngram-2", "ngram_matched@toy-ngram-2",
        "train@toy-word-lstm-0.0-5", "report",
    }
    m = read_json(d / "results" / "toy-word-lstm-0.0-5.json")
    assert m["test"]["n_chars"] == len((d / "data/text/toy/test.txt").read_text(encoding="utf-8"))
    assert m["test"]["open_vocab"] is False and m["diverged"] is False
    assert (d / "curves" / "toy-word-lstm-0.0-5.csv").read_text().startswith("epoch")
    assert read_json(d / "results" / "toy-ngram-2.json")["test"]["n_words"] == m["test"]["n_words"]
    matched = read_json(d / "results" / "toy-ngram-2-matched.json")
    assert m["train_chars"] == matched["train_chars"] <= 8000  # the n-gram's second estimate: the RNN's text
    report = (d / "reports" / "README.md").read_text()
    assert "toy-word-lstm-0.0-5" in report and "toy-ngram-2" in report

    r = run("dvc", "repro")
    assert r.returncode == 0 and ran(r.stdout) == set(), r.stdout
    assert "up to date" in run("dvc", "status").stdout

    set_param(d / "params.yaml", "tokenizers.char.min_count", 2)
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == {"check_params", "tokenize@toy-char"}  # any edit of params.yaml is checked

    set_param(d / "params.yaml", "tokenizers.word.max_size", 12)
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == {"check_params", "tokenize@toy-word", "ngram@toy-ngram-2", "ngram_matched@toy-ngram-2",
                             "train@toy-word-lstm-0.0-5", "report"}

    # the train params reach a train stage through the digest of its own LM type only
    set_param(d / "params.yaml", "train_overrides.char.optim.lr", 0.01)
    r = run("dvc", "repro")
    assert r.returncode == 0 and ran(r.stdout) == {"check_params"}, r.stdout + r.stderr
    set_param(d / "params.yaml", "train.epochs", 2)
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == {"check_params", "train@toy-word-lstm-0.0-5", "report"}

    # a code change re-runs the stages that import the changed file and no other
    with open(d / "pipeline" / "reporting" / "figures.py", "a") as f:
        f.write("# an edit\n")
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == {"code", "report"}, r.stdout
    with open(d / "pipeline" / "ngram" / "arpa.py", "a") as f:
        f.write("# an edit\n")
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == {"code", "ngram@toy-ngram-2", "ngram_matched@toy-ngram-2"}, r.stdout  # same results


def test_bad_params_fail_the_stage_with_exit_2(repo):
    d, run = repo
    good = (d / "params.yaml").read_text()
    try:
        set_param(d / "params.yaml", "tokenizers.hybrid.min_count", "two")
        r = run("dvc", "repro", "tokenize@toy-hybrid")
        assert r.returncode != 0
        assert "tokenizers.hybrid.min_count" in r.stderr and "Traceback" not in r.stderr
    finally:
        (d / "params.yaml").write_text(good)


def test_report_shows_only_the_runs_params_name(repo):
    """DVC keeps metrics of matrix members dropped from the grid; the report must not show them."""
    d, run = repo
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    set_param(d / "params.yaml", "ngram.orders", [3])
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == {"check_params", "ngram@toy-ngram-3", "ngram_matched@toy-ngram-3", "report"}
    assert (d / "metrics" / "toy-ngram-2.json").exists()  # stale, left by DVC
    report = (d / "reports" / "README.md").read_text()
    assert "toy-ngram-3" in report and "toy-word-lstm-0.0-5" in report and "toy-ngram-2" not in report


def test_adding_a_seed_runs_only_the_new_seed(repo):
    d, run = repo
    assert run("dvc", "repro").returncode == 0
    first = (d / "results/toy-word-lstm-0.0-5.json").read_bytes()
    set_param(d / "params.yaml", "grid.seed", [7])
    try:
        r = run("dvc", "repro")
        assert r.returncode == 0, r.stdout + r.stderr
        assert ran(r.stdout) == {"check_params", "train_seed@toy-word-lstm-0.0-5-7", "report"}
        seven = read_json(d / "results/toy-word-lstm-0.0-5-7.json")
        assert (seven["seed"], seven["group"]) == (7, "toy-word-lstm-0.0-5")
        assert (d / "results/toy-word-lstm-0.0-5.json").read_bytes() == first
        assert "(n = 2)" in (d / "reports" / "README.md").read_text()  # the member's cell over its two seeds
    finally:
        set_param(d / "params.yaml", "grid.seed", [])
    r = run("dvc", "repro")
    assert r.returncode == 0 and ran(r.stdout) == {"check_params", "report"}, r.stdout + r.stderr


def test_reverted_params_restore_from_the_run_cache_without_training(repo):
    d, run = repo
    assert run("dvc", "repro").returncode == 0
    first = [(d / f).read_bytes() for f in ("results/toy-word-lstm-0.0-5.json", "models/toy-word-lstm-0.0-5/cost.json")]
    good = (d / "params.yaml").read_text()
    set_param(d / "params.yaml", "train.optim.lr", 1.0)
    r = run("dvc", "repro")
    assert r.returncode == 0 and "train@toy-word-lstm-0.0-5" in ran(r.stdout), r.stdout + r.stderr
    assert (d / "results/toy-word-lstm-0.0-5.json").read_bytes() != first[0]
    (d / "params.yaml").write_text(good)
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "train@toy-word-lstm-0.0-5" not in ran(r.stdout)  # restored, not run
    assert "Stage 'train@toy-word-lstm-0.0-5' is cached - skipping run, checking out outputs" in r.stdout
    # the cached outputs came back: the wall time of the first run too
    assert [(d / f).read_bytes() for f in ("results/toy-word-lstm-0.0-5.json", "models/toy-word-lstm-0.0-5/cost.json")] == first


def test_an_lm_type_may_have_no_train_overrides_entry(repo):
    """No stage lists train_overrides.<lm> for DVC any more (its digest holds null): leaving the
    word entry out ({} before, the same config) re-runs the word member, which finds its finished
    checkpoint and writes the same results, so the report stays as it is."""
    d, run = repo
    assert run("dvc", "repro").returncode == 0
    good = (d / "params.yaml").read_text()
    params = yaml.safe_load(good)
    assert params["train_overrides"].pop("word") == {}
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        r = run("dvc", "repro")
        assert r.returncode == 0, r.stdout + r.stderr
        assert ran(r.stdout) == {"check_params", "train@toy-word-lstm-0.0-5"}, r.stdout
    finally:
        (d / "params.yaml").write_text(good)


@pytest.mark.parametrize("edit, key", [
    (lambda p: p.update(foo=1), "foo: unknown key"),
    (lambda p: p["grid"].update(cell=["lstmx"]), "grid.cell.0: Input should be"),
    (lambda p: p["grid"].update(lm=["words"]), "grid.lm.0: Input should be"),
    (lambda p: p["grid"].update(dropout=[0.0, 0]), "grid.dropout: duplicate value 0"),
])
def test_every_repro_checks_the_whole_params_file_first(repo, edit, key):
    d, run = repo
    assert run("dvc", "repro").returncode == 0
    good = (d / "params.yaml").read_text()
    params = yaml.safe_load(good)
    edit(params)
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        r = run("dvc", "repro")
        assert r.returncode != 0 and ran(r.stdout) == {"check_params"}, r.stdout + r.stderr
        assert f"error: params.yaml: {key}" in r.stderr + r.stdout and "Traceback" not in r.stderr + r.stdout
        assert "exited with 2" in r.stderr + r.stdout
    finally:
        (d / "params.yaml").write_text(good)
    r = run("dvc", "repro")  # the valid file again: nothing but the check re-runs
    assert r.returncode == 0 and ran(r.stdout) <= {"check_params"}, r.stdout


def test_two_clones_write_the_same_bytes_and_a_rerun_leaves_the_report_alone(repo, tmp_path):
    """Same params and seed in another clone: results, metrics and curves byte-identical (clock
    readings live in models/<run>/cost.json). A forced re-run of a stage changes its cost file
    only, so the report, which depends on results/ and curves/, does not run again."""
    d, run = repo
    assert run("dvc", "repro").returncode == 0
    other = tmp_path / "clone"
    other.mkdir()
    run2 = dvc_project(other, yaml.safe_load((d / "params.yaml").read_text()))
    r = run2("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    for folder in ("results", "metrics", "curves"):
        names = [p.name for p in (other / folder).iterdir() if p.suffix in (".json", ".csv")]
        assert names  # (d may also hold stale files of runs earlier tests dropped from its grid)
        for name in names:
            assert (d / folder / name).read_bytes() == (other / folder / name).read_bytes(), (folder, name)
    m = read_json(d / "metrics" / "toy-word-lstm-0.0-5.json")  # what `dvc metrics show` tabulates
    assert set(m) == {"test_bits_per_char", "test_word_ppl", "valid_bits_per_char", "valid_word_ppl", "open_vocab",
                      "n_params", "diverged"}

    cost = (d / "models/toy-word-lstm-0.0-5/cost.json").read_bytes()
    shutil.rmtree(d / "checkpoints")  # else the finished run would come back from its checkpoint untrained
    r = run("dvc", "repro", "-f", "-s", "train@toy-word-lstm-0.0-5")
    assert r.returncode == 0 and ran(r.stdout) == {"train@toy-word-lstm-0.0-5"}, r.stdout + r.stderr
    r = run("dvc", "repro")
    assert r.returncode == 0 and ran(r.stdout) == set(), r.stdout
    assert (d / "models/toy-word-lstm-0.0-5/cost.json").read_bytes() != cost  # it did train again
