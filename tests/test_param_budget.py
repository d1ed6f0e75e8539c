"""train.model.param_budget: every LM type's model (the hybrid's speller counted) is solved to
at most the budget and within 2% of it; a budget too small is the params' error, naming the key."""

import pytest
import torch

from pipeline.config import (CELLS, CharTokenizerConfig, ModelConfig, SubwordTokenizerConfig, TrainConfig,
                             WordTokenizerConfig, parse_params)
from pipeline.errors import UserError
from pipeline.rnn.lm import build_lm
from pipeline.rnn.model import RNNLM, n_params, solve_size
from pipeline.tokenizers import train_tokenizer
from tests.helpers import repo_params, set_key
from tests.test_rnn_model import count_params

# vocabulary sizes of the default profile's tokenizers: char, subword, word/hybrid
VOCABS = {"char": 77, "subword": 2000, "word": 5000}


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("vocab", VOCABS.values(), ids=VOCABS.keys())
@pytest.mark.parametrize("layers, tie", [(1, True), (2, False)])
def test_solved_size_meets_the_budget(cell, vocab, layers, tie):
    budget = 1_500_000
    cfg = solve_size(vocab, ModelConfig(cell=cell, hidden=None, embed_dim=None, param_budget=budget,
                                        layers=layers, tie_weights=tie))
    n = n_params(vocab, cfg)
    assert cfg.embed_dim == cfg.hidden and cfg.param_budget is None  # a plain config, ready for RNNLM
    assert n == count_params(vocab, cfg, cell)  # the model's own size formula
    assert 0.98 * budget <= n <= budget
    assert n_params(vocab, cfg.model_copy(update={"hidden": cfg.hidden + 1, "embed_dim": cfg.hidden + 1})) > budget


TEXT = "".join(f"the {w} said word{i % 97} and then w{i % 13}rd{i % 11} went {w}\n"
               for i, w in enumerate(["king", "queen", "fool", "ghost", "zounds"] * 80))


def lm_parts(kind: str, model: dict, speller: dict | None = None):
    cfgs = {"char": CharTokenizerConfig(), "word": WordTokenizerConfig(max_size=60), "hybrid": WordTokenizerConfig(max_size=60),
            "subword": SubwordTokenizerConfig(vocab_size=300)}
    tok = train_tokenizer(kind, TEXT, cfgs[kind])
    cfg = TrainConfig(model=ModelConfig(**model), speller=TrainConfig(model=ModelConfig(**speller))
                      if kind == "hybrid" else None)
    lm = build_lm(tok, cfg, parse_params(repo_params()).eval, torch.device("cpu"))
    return lm, lm.parts(tok.encode(TEXT), TEXT[:200])


@pytest.mark.parametrize("kind", ["char", "word", "hybrid", "subword"])
def test_every_lm_type_fits_its_budget_speller_included(kind):
    budget = 400_000
    lm, parts = lm_parts(kind, {"cell": "gru", "hidden": None, "embed_dim": None, "param_budget": budget,
                                "tie_weights": True}, speller={"hidden": 64, "embed_dim": 32})
    for p in parts:
        lm.build(p)
    assert 0.98 * budget <= lm.n_params <= budget
    if kind == "hybrid":
        speller, word = parts
        assert (speller.cfg.model.hidden, speller.cfg.model.embed_dim) == (64, 32)  # its own, explicit
        assert word.cfg.model.hidden == word.cfg.model.embed_dim < 400
        assert lm.n_params == sum(n_params(p.vocab_size, p.cfg.model) for p in parts)


def test_explicit_sizes_are_kept_and_a_null_embedding_follows_hidden():
    cfg = ModelConfig(hidden=40, embed_dim=None)
    assert (solve_size(10, cfg).hidden, solve_size(10, cfg).embed_dim) == (40, 40)
    assert solve_size(10, ModelConfig(hidden=40, embed_dim=8)) == ModelConfig(hidden=40, embed_dim=8)
    with pytest.raises(ValueError, match="solve_size"):
        RNNLM(10, ModelConfig(hidden=None, embed_dim=None, param_budget=1000))


def test_a_budget_too_small_names_the_key():
    with pytest.raises(UserError, match=r"train\.model\.param_budget: 100 parameters are too few for the char "
                                        r"model: its smallest \(2 x lstm, hidden 1, vocabulary"):
        lm_parts("char", {"hidden": None, "embed_dim": None, "param_budget": 100})
    # the hybrid's budget covers its speller: what the speller leaves may not fit the word model
    with pytest.raises(UserError, match=r"train\.model\.param_budget: 30,000 parameters are too few for the hybrid "
                                        r"model once its speller's [\d,]+ are counted"):
        lm_parts("hybrid", {"hidden": None, "embed_dim": None, "param_budget": 30_000},
                 speller={"hidden": 64, "embed_dim": 32})


def test_the_schema_takes_one_size_and_a_layer_may_switch_it():
    raw = set_key(repo_params(), "train.model.param_budget", 500_000)
    with pytest.raises(UserError, match=r"train\.model: give either hidden \(and embed_dim\) or param_budget"):
        parse_params(raw)
    raw = set_key(repo_params(), "train.model.hidden", None)
    with pytest.raises(UserError, match=r"train\.model: give hidden .* or param_budget"):
        parse_params(raw)
    raw = set_key(repo_params(), "train_overrides.char", {"model": {"param_budget": 500_000}})
    p = parse_params(raw)
    char = p.train_for("char").model
    assert (char.param_budget, char.hidden, char.embed_dim) == (500_000, None, None)
    assert p.train_for("word").model.hidden == 128  # the other LM types keep train.model's size
    raw = set_key(repo_params(), "train.model", {"param_budget": 500_000, "hidden": None, "embed_dim": None,
                                                 "layers": 1, "tie_weights": True})
    hybrid = parse_params(raw).train_for("hybrid")
    assert hybrid.model.param_budget == 500_000
    assert (hybrid.speller.model.hidden, hybrid.speller.model.param_budget) == (64, None)  # its own size
