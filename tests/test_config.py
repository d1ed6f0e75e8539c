"""params.yaml schema: every mistake is one message naming the key, the value and what is allowed."""

import re

import pytest
import yaml

from pipeline.config import load_params, parse_params
from pipeline.errors import UserError
from tests.helpers import repo_params, run_stage, set_key

DEFAULT = repo_params()


def with_change(path: str, value):
    return set_key(repo_params(), path, value)


def test_default_params_are_valid():
    p = parse_params(DEFAULT)
    assert set(p.grid.lm) == {"char", "word", "hybrid", "subword"}
    assert p.train_for("char").batching.bptt != p.train.batching.bptt or "char" not in p.train_overrides


@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("train.optim.nme", "sgd", r"train\.optim\.nme: unknown key"),
        ("train.epochs", "three", r"train\.epochs: .*integer.*'three'"),
        ("train.optim.name", "adagrad", r"train\.optim\.name: Input should be 'sgd' or 'adam'.*'adagrad'"),
        ("grid.cell", ["lstm", "transformer"], r"grid\.cell\.1: Input should be 'rnn_tanh'"),
        ("grid.dropout", [1.5], r"dropout values \[1\.5\]"),
        ("grid.corpus", ["wiki"], r"grid\.corpus names \['wiki'\], not in corpora"),
        ("tokenizers.subword.vocab_size", 100, r"tokenizers\.subword\.vocab_size: .*greater than or equal to 260"),
        ("corpora.shakespeare.sha256", "abc", r"corpora\.shakespeare\.sha256: String should match pattern"),
        ("train_overrides.char", {"batching": {"bptt": 0}}, r"train_overrides\.char: batching\.bptt: .*greater than or equal to 1"),
        ("train.model.tie_weights", True, None),
    ],
)
def test_bad_values_are_named(path, value, expected):
    raw = with_change(path, value)
    if expected is None:  # tie_weights with embed == hidden is fine
        parse_params(raw)
        return
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
        "params.yaml: corpora.pypi: Value error, give exactly one of 'path' or 'splits'",
    ]


def test_train_override_errors_name_the_callers_file():
    raw = with_change("train_overrides.char", {"epochs": 0})
    where = "params.yaml + presets/zaremba-small.yaml"
    expected = rf"^{re.escape(where)}: train_overrides\.char: epochs: .*greater than or equal to 1"
    with pytest.raises(UserError, match=expected):
        parse_params(raw, where)
    p = parse_params(DEFAULT).model_copy(update={"train_overrides": {"word": {"epochs": 0}}})  # unvalidated
    with pytest.raises(UserError, match=r"^elsewhere\.yaml: train_overrides\.word: epochs"):
        p.train_for("word", "elsewhere.yaml")


def test_tie_weights_needs_equal_sizes():
    raw = with_change("train.model.embed_dim", 64)
    with pytest.raises(UserError, match="tie_weights needs embed_dim == hidden"):
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
    r = run_stage(tmp_path, "stages.tokenize", "gutenberg", "word")
    assert r.returncode == 2 and "unknown corpus 'gutenberg'" in r.stderr
