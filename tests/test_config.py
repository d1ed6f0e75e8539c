"""params.yaml schema: every mistake is one message naming the key, the value and what is allowed."""

import json
import re

import pytest
import yaml

from pipeline.config import load_params, parse_params, train_params_digest
from pipeline.errors import UserError
from tests.helpers import repo_params, run_stage, set_key

DEFAULT = repo_params()


def with_change(path: str, value):
    return set_key(repo_params(), path, value)


def test_default_params_are_valid():
    p = parse_params(repo_params(tune=True))
    assert set(p.grid.lm) == {"char", "word", "hybrid", "subword"}


def test_one_training_config_per_grid_member():
    """train, then train_overrides[lm] merged key by key, then the grid factors; the hybrid's
    speller merged over the hybrid's config, without the word model's factors."""
    raw = with_change("train_overrides", {"char": {"batching": {"bptt": 7}, "optim": {"lr": 0.01}},
                                          "hybrid": {"epochs": 5, "speller": {"model": {"hidden": 9, "tie_weights": False}}}})
    raw["train"]["batching"]["batch_size"] = 3
    p = parse_params(raw)
    char = p.train_for("char", {"cell": "gru", "dropout": 0.25, "clip": 2})
    assert (char.batching.bptt, char.batching.batch_size, char.optim.lr, char.optim.name) == (7, 3, 0.01, "sgd")
    assert (char.model.cell, char.model.dropout, char.optim.clip) == ("gru", 0.25, 2.0)
    assert char.speller is None and p.train_for("word").batching.bptt == raw["train"]["batching"]["bptt"]
    hybrid = p.train_for("hybrid", {"cell": "gru", "dropout": 0.25, "clip": 2})
    assert hybrid.epochs == 5 and hybrid.speller.epochs == 5 and hybrid.speller.model.hidden == 9
    assert hybrid.speller.model.embed_dim == raw["train"]["model"]["embed_dim"]
    assert (hybrid.speller.model.cell, hybrid.speller.model.dropout, hybrid.speller.optim.clip) == ("lstm", 0.0, 0.0)


def test_the_train_params_digest_changes_with_its_own_values_alone():
    raw = repo_params()
    word, char = train_params_digest(raw, "word"), train_params_digest(raw, "char")
    assert json.loads(word) == {"train": raw["train"], "train_overrides.word": raw["train_overrides"]["word"],
                                "eval": raw["eval"]}
    other_lm = set_key(repo_params(), "train_overrides.char.optim.lr", 0.5)
    assert train_params_digest(other_lm, "word") == word and train_params_digest(other_lm, "char") != char
    assert train_params_digest(set_key(repo_params(), "eval.bptt", 7), "word") != word
    assert train_params_digest(set_key(repo_params(), "ngram.orders", [2]), "word") == word
    assert train_params_digest(dict(reversed(raw.items())), "word") == word  # the file's key order is no change
    del raw["eval"]
    assert json.loads(train_params_digest(raw, "word"))["eval"] is None


@pytest.mark.parametrize("lm, over, expected", [
    ("word", {"speller": {"epochs": 1}}, r"train_overrides\.word\.speller: only the hybrid LM has a speller"),
    ("hybrid", {}, r"train_overrides\.hybrid\.speller: the hybrid LM needs its speller"),
    ("hybrid", {"speller": {"epochs": 0}}, r"train_overrides\.hybrid: speller\.epochs: .*greater than or equal to 1"),
])
def test_speller_section_errors(lm, over, expected):
    with pytest.raises(UserError, match=expected):
        parse_params(with_change(f"train_overrides.{lm}", over))


@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("train.optim.nme", "sgd", r"train\.optim\.nme: unknown key"),
        ("train.epochs", "three", r"train\.epochs: .*integer.*'three'"),
        ("train.optim.name", "adagrad", r"train\.optim\.name: Input should be 'sgd' or 'adam'.*'adagrad'"),
        ("grid.cell", ["lstm", "transformer"], r"grid\.cell\.1: Input should be 'rnn_tanh'"),
        ("grid.dropout", [1.5], r"grid\.dropout: \[1\.5\]: each value must be in \[0, 1\)"),
        ("grid.dropout", [0.0, 0], r"grid\.dropout: duplicate value 0 \(equal to 0\.0\)"),
        ("grid.cell", ["lstmx"], r"grid\.cell\.0: Input should be 'rnn_tanh'.*'lstmx'"),
        ("grid.seed", [1, 1], r"grid\.seed: duplicate value 1"),
        ("grid.seed", [2, 1337], r"grid\.seed lists 1337, the top-level `seed`"),
        ("grid.lm", ["words"], r"grid\.lm\.0: Input should be 'char'.*'words'"),
        ("grid.clip", ["five"], r"^params\.yaml: grid\.clip\.0: Input should be a valid integer or .*number \(got 'five'\)$"),
        ("train.model.hidden", 64, r"train\.model\.tie_weights: tie_weights needs embed_dim == hidden \(here 128 and 64\)"),
        ("grid.corpus", ["wiki"], r"grid\.corpus names \['wiki'\], not in corpora"),
        ("tokenizers.subword.vocab_size", 100, r"tokenizers\.subword\.vocab_size: .*greater than or equal to 260"),
        ("corpora.shakespeare.sha256", "abc", r"corpora\.shakespeare\.sha256: String should match pattern"),
        ("prepare.mode", "raw", r"prepare\.mode: Input should be 'auto', 'verbatim' or 'normalize'.*'raw'"),
        ("train_overrides.char", {"batching": {"bptt": 0}}, r"train_overrides\.char: batching\.bptt: .*greater than or equal to 1"),
        ("train.schedule.unit", "epoch", r"train\.schedule\.unit: unknown key"),
    ],
)
def test_bad_values_are_named(path, value, expected):
    raw = with_change(path, value)
    with pytest.raises(UserError, match=expected):
        parse_params(raw)


def test_union_tag_is_not_part_of_the_key_path():
    """pydantic puts a discriminated union's tag into the error location; the message names
    the key as written in the file (also where a field has the tag's name, as `url` does)."""
    raw = with_change("corpora.shakespeare.sha256", "abc")
    raw["corpora"]["web"] = {"source": "url", "url": "ftp://example.org/c.txt"}
    raw["corpora"]["pypi"] = {"source": "local", "path": "c.txt", "splits": {}}
    with pytest.raises(UserError) as e:
        parse_params(raw)
    assert str(e.value).splitlines() == [
        "params.yaml: corpora.shakespeare.sha256: String should match pattern '^[0-9a-f]{64}$' (got 'abc')",
        "params.yaml: corpora.web.url: String should match pattern '^https?://' (got 'ftp://example.org/c.txt')",
        "params.yaml: corpora.pypi: give exactly one of 'path' or 'splits'",
    ]


def test_train_override_errors_name_the_callers_file():
    raw = with_change("train_overrides.char", {"epochs": 0})
    where = "params.yaml + presets/zaremba-small.yaml"
    expected = rf"^{re.escape(where)}: train_overrides\.char: epochs: .*greater than or equal to 1"
    with pytest.raises(UserError, match=expected):
        parse_params(raw, where)
    p = parse_params(DEFAULT).model_copy(update={"train_overrides": {"word": {"epochs": 0}}})  # unvalidated
    with pytest.raises(UserError, match=r"^elsewhere\.yaml: train_overrides\.word: epochs"):
        p.train_for("word", where="elsewhere.yaml")


def test_tie_weights_needs_equal_sizes():
    raw = with_change("train.model.embed_dim", 64)
    with pytest.raises(UserError, match=r"train\.model\.tie_weights: tie_weights needs embed_dim == hidden"):
        parse_params(raw)


def test_unknown_corpus_source():
    raw = with_change("corpora.shakespeare.source", "ftp")
    with pytest.raises(UserError, match=r"corpora\.shakespeare: .*'pypi', 'url', 'hf', 'local'"):
        parse_params(raw)


def test_missing_and_malformed_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("grid: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")


def test_stage_exits_2_with_one_line_before_any_work(tmp_path):
    raw = with_change("train.optim.lr", "fast")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    r = run_stage(tmp_path, "stages.tokenize", "shakespeare", "word")
    assert r.returncode == 2
    assert r.stderr.startswith("error: params.yaml: train.optim.lr:") and "Traceback" not in r.stderr
    assert not (tmp_path / "data").exists()


def test_unknown_tokenizer_name_exits_2(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(DEFAULT))
    r = run_stage(tmp_path, "stages.tokenize", "shakespeare", "morse")
    assert r.returncode == 2 and "invalid choice: 'morse' (choose from" in r.stderr


@pytest.mark.parametrize("argv", [
    ["stages.download", "gutenberg"], ["stages.prepare", "gutenberg"], ["stages.tokenize", "gutenberg", "word"],
    ["stages.ngram", "gutenberg", "3"],
    ["stages.train", "gutenberg", "r", "--lm", "word", "--cell", "lstm", "--dropout", "0", "--clip", "0",
     "--seed", "1"],
])
def test_every_stage_names_an_unknown_corpus_with_exit_2(tmp_path, argv):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(DEFAULT))
    r = run_stage(tmp_path, *argv)
    assert r.returncode == 2 and "unknown corpus 'gutenberg'" in r.stderr and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "params.yaml"]  # no work started
