"""A corpus' own unknown-word marker (`unk_marker`, PTB's and tokenized WikiText's `<unk>`):
mapped to every tokenizer's unknown class where one is named, an ordinary word where none is,
counted apart from out-of-vocabulary words, and scored by the hybrid without double-counting
its `<unk>` mass. Ends with our n-gram against KenLM on WikiText-format text, through the
real stages."""

from __future__ import annotations

import itertools
import json
import math
import warnings
from pathlib import Path

import kenlm
import numpy as np
import pytest
import torch
import yaml

from pipeline import paths
from pipeline.config import (CharTokenizerConfig, ModelConfig, PrepareConfig, SubwordTokenizerConfig,
                             WordTokenizerConfig)
from pipeline.corpora.prepare import prepare
from pipeline.evaluation import evaluate
from pipeline.io import read_json
from pipeline.ngram import NgramScorer, NgramVocab, estimate, read_arpa, write_arpa
from pipeline.rnn.model import RNNLM
from pipeline.text import count_words
from pipeline.tokenizers import UNK, load_tokenizer, tokenize_splits, train_tokenizer
from pipeline.tokenizers.hybrid import EOW, HybridTokenizer
from stages import download, ngram, prepare as prepare_stage, tokenize
from tests.helpers import lm_of, repo_params

MARKER = "<unk>"
CFG = {
    "char": CharTokenizerConfig(),
    "word": WordTokenizerConfig(max_size=None),
    "hybrid": WordTokenizerConfig(max_size=None, min_count=2),
    "subword": SubwordTokenizerConfig(vocab_size=300, min_frequency=2),
}


def spelled(tok: HybridTokenizer, ids) -> list[list[str]]:
    return [[tok.alphabet[i] for i in s] for s in tok.spellings(ids)]


# ----------------------------------------------------------------------------- the spellings() shift


def test_marker_is_the_empty_spelling_so_spellings_stay_paired():
    """The case of issue 9: a literal <unk> used to have no spelling, so each <unk> was paired
    with the next word's <eow> (negative ids, 2 OOV instead of 1)."""
    tok = HybridTokenizer.train("a a b <unk> c\n", WordTokenizerConfig(max_size=3, min_count=1), MARKER)
    assert tok.vocab == [UNK, "<eos>", "a"]
    text = "<unk> a zz b\n"
    ids = tok.encode(text)
    assert spelled(tok, ids) == [[EOW], [UNK, UNK, EOW], ["b", EOW]]  # the marker, zz (z unseen), b
    assert all(min(s) >= 0 for s in tok.spellings(ids))
    assert tok.unknowns(text, ids) == (1, 1)  # zz cannot be spelled; one marker
    assert tok.n_unk_words(ids) == 2  # zz and b: spelled; the marker is no word
    assert tok.decode_words(tok.model_ids(ids)) == [UNK, "a", UNK, UNK, "<eos>"]
    assert tok.decode(ids) == "<unk> a \ufffd\ufffd b\n"


def test_without_a_marker_a_literal_unk_is_spelled_like_any_word():
    tok = HybridTokenizer.train("a a b <unk> c\n", WordTokenizerConfig(max_size=3, min_count=1))
    text = "<unk> a zz b\n"
    ids = tok.encode(text)
    assert spelled(tok, ids) == [[*"<unk>", EOW], [UNK, UNK, EOW], ["b", EOW]]
    assert tok.unknowns(text, ids) == (1, 0) and tok.n_unk_words(ids) == 3
    assert tok.decode(ids) == "<unk> a \ufffd\ufffd b\n"


def test_a_cut_stream_keeps_whole_spellings_only():
    tok = HybridTokenizer.train("a a b <unk> c\n", WordTokenizerConfig(max_size=3, min_count=1), MARKER)
    ids = tok.encode("b <unk> zz\n")
    assert spelled(tok, ids[:-3]) == [["b", EOW], [EOW]]  # zz's spelling is cut: not paired


# ----------------------------------------------------------------------------- no marker: ordinary words


SPECIAL_LOOKING = ["<unk>", "<s>", "</s>", "<eow>", "<eos>"]


@pytest.mark.parametrize("kind", ["word", "hybrid"])
def test_without_a_marker_special_looking_words_are_ordinary_words(kind):
    train = "a " + " ".join(SPECIAL_LOOKING) + " b\n"
    tok = train_tokenizer(kind, train * 3, CFG[kind])
    ids = tok.encode(train)
    for w in SPECIAL_LOOKING:
        assert tok.stoi[w] not in (tok.unk_id, tok.eos_id), w
    assert tok.model_ids(ids).tolist() == [tok.stoi[w] for w in train.split()] + [tok.eos_id]
    assert tok.decode(ids) == train and tok.unknowns(train, ids) == (0, 0)
    text = "ba <unk>\n"  # one word outside the vocabulary (spellable); the literal <unk> is a known word
    assert tok.unknowns(text, tok.encode(text)) == ((1, 0) if kind == "word" else (0, 0))


@pytest.mark.parametrize("kind", ["word", "hybrid"])
def test_with_the_marker_named_it_is_unk_and_never_a_word(kind):
    train = ("a <unk> b <unk>\n" + "<eos> <s>\n") * 3
    tok = train_tokenizer(kind, train, CFG[kind], MARKER)
    assert MARKER not in tok.stoi or tok.stoi[MARKER] == tok.unk_id
    assert tok.vocab.count(UNK) == 1  # the special alone
    text = "<unk> <eos> <s> ba\n"  # ba: outside the vocabulary, spellable
    ids = tok.encode(text)
    model = tok.model_ids(ids).tolist()
    assert model[0] == tok.unk_id and model[1:3] == [tok.stoi["<eos>"], tok.stoi["<s>"]]
    assert tok.unknowns(text, ids) == ((1, 1) if kind == "word" else (0, 1))
    assert tok.decode(ids) == ("<unk> <eos> <s> <unk>\n" if kind == "word" else text)


def test_ngram_without_a_marker_keeps_special_looking_words_apart_from_its_symbols(tmp_path):
    train = ("a b " + " ".join(SPECIAL_LOOKING) + " b a\n") * 5 + "b b a\n"
    tok = train_tokenizer("word", train, CFG["word"])
    vocab = NgramVocab.from_tokenizer(tok, "word")
    assert {"<U+003C>unk>", "<U+003C>s>", "<U+003C>/s>", "<eos>", "<eow>"} <= set(vocab.symbols)
    assert vocab.symbols.count("<unk>") == vocab.symbols.count("<s>") == vocab.symbols.count("</s>") == 1
    stream, n_oov = vocab.encode(train)
    assert n_oov == 0 and np.count_nonzero(stream == vocab.unk_id) == 0
    assert np.count_nonzero(stream == vocab.bos_id) == np.count_nonzero(stream == vocab.eos_id) == 6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # discount fallbacks on toy data
        fit = estimate(vocab, vocab.from_token_ids(tok, tok.encode(train)), 3)
    write_arpa(fit.model, tmp_path / "m.arpa")
    back = NgramScorer(read_arpa(tmp_path / "m.arpa"), "word")  # escaped symbols read back as the words
    text = "a <unk> <s> b\nzz </s>\n"
    m = evaluate(back, text, 1)
    assert (m["n_oov"], m["n_unk_marker"]) == (1, 0)
    assert m["nll_nats"] == pytest.approx(evaluate(NgramScorer(fit.model, "word"), text, 1)["nll_nats"], rel=1e-6)
    kenlm.Model(str(tmp_path / "m.arpa"))  # KenLM reads the escaped symbols


# ----------------------------------------------------------------------------- counts on PTB-format text


PTB_TRAIN = "".join(
    f" the {w} of {x} <unk> said the {y} \n" for w, x, y in itertools.product(
        ["market", "company", "stock"], ["rates", "shares", "<unk>"], ["analyst", "trader"])
) * 2
PTB_TEST = " the market of tears said <unk> \n the <unk> of shares <unk> said the analyst \n"
# test: 3 markers; "tears" is the one word outside the train vocabulary (its letters are not);
# 14 words + 2 line ends


def model_for(vocab_size: int, seed: int) -> RNNLM:
    torch.manual_seed(seed)
    return RNNLM(vocab_size, ModelConfig(cell="lstm", embed_dim=8, hidden=8, layers=1))


@pytest.mark.parametrize("kind", ["word", "hybrid", "char", "subword", "ngram"])
def test_markers_and_oov_words_are_counted_apart(kind):
    if kind == "ngram":
        tok = train_tokenizer("word", PTB_TRAIN, CFG["word"], MARKER)
        vocab = NgramVocab.from_tokenizer(tok, "word")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = estimate(vocab, vocab.from_token_ids(tok, tok.encode(PTB_TRAIN)), 3)
        scorer = NgramScorer(fit.model, "word", tok.unk_marker)
        assert vocab.encode(" <unk> \n")[0].tolist() == [vocab.bos_id, vocab.unk_id, vocab.eos_id]
    else:
        tok = train_tokenizer(kind, PTB_TRAIN, CFG[kind], MARKER)
        speller = model_for(len(tok.alphabet), 1) if kind == "hybrid" else None
        scorer = lm_of(tok, model_for(tok.vocab_size, 0), speller, batch_size=2, bptt=5).scorer()
    m = evaluate(scorer, PTB_TEST, 1)
    oov = {"word": 1, "ngram": 1}.get(kind, 0)  # tears: the hybrid spells it, char and subword write it
    assert m["n_unk_marker"] == 3 and m["n_oov"] == oov
    assert m["oov_rate"] == pytest.approx(m["n_oov"] / m["n_tokens"])
    assert m["open_vocab"] is False  # the text's real words are unknown: never an open-vocabulary score
    if kind in ("word", "ngram", "hybrid"):
        assert m["n_tokens"] == m["n_words"] == count_words(PTB_TEST) == 16
    clean = " the market of shares said the analyst \n"  # no marker, every word and char known
    assert evaluate(scorer, clean, 1)["open_vocab"] is (kind in ("hybrid", "char", "subword"))


@pytest.mark.parametrize("kind", ["char", "word", "hybrid", "subword"])
def test_tokenize_stats_and_saved_tokenizer_keep_the_marker(kind, tmp_path):
    texts = {"train": PTB_TRAIN, "valid": PTB_TEST, "test": PTB_TEST}
    tok, ids, stats = tokenize_splits(kind, texts, CFG[kind], MARKER)
    assert stats["unk_marker"] == MARKER and stats["splits"]["test"]["unk_markers"] == 3
    assert stats["splits"]["train"]["unk_markers"] == PTB_TRAIN.split().count(MARKER)
    tok.save(tmp_path / "tokenizer.json")
    again = load_tokenizer(tmp_path / "tokenizer.json")
    assert again.unk_marker == MARKER and np.array_equal(again.encode(PTB_TEST), ids["test"].astype(np.int64))
    if kind == "hybrid":
        assert stats["splits"]["test"]["unk_words"] == 1  # tears; the markers are not spelled words


def test_prepare_records_the_marker_as_the_text_spells_it(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / paths.SOURCE_JSON).write_text(json.dumps({"source": {"source": "local", "unk_marker": "<UNK>"}}))
    for split in ("train", "valid", "test"):
        (raw / paths.split_file(split)).write_text(" A <UNK> b \n")
    assert prepare(raw, tmp_path / "kept", PrepareConfig())["unk_marker"] == "<UNK>"
    assert prepare(raw, tmp_path / "lower", PrepareConfig(lowercase=True))["unk_marker"] == "<unk>"
    assert read_json(tmp_path / "lower" / paths.STATS_JSON)["unk_marker"] == "<unk>"
    (raw / paths.SOURCE_JSON).write_text(json.dumps({"source": {"source": "local", "unk_marker": None}}))
    assert prepare(raw, tmp_path / "none", PrepareConfig())["unk_marker"] is None


# ----------------------------------------------------------------------------- hybrid probabilities sum to <= 1


def fixed_distribution(net: RNNLM, probs: dict[int, float]) -> RNNLM:
    """The net's output made context-free: P(id) = probs[id], ~0 for the others."""
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.fill_(-60.0)
        for i, p in probs.items():
            net.head.bias[i] = math.log(p)
    return net


def test_hybrid_probabilities_of_a_closed_set_of_texts_sum_to_at_most_one():
    """Every one-line text of 0..2 words over the 3 words of the vocabulary, the marker and the
    out-of-vocabulary words over {a, b} of length 1..2: disjoint texts, so their probabilities
    must sum to at most 1. The nets are made to put their mass where a marker that drew on the
    whole P(<unk>) (as a spelled word also does) would push the sum over 1."""
    train = "x x x y y y z z z <unk> a b ab\n"  # vocab <unk> <eos> x y z; a, b, ab spelled
    tok = HybridTokenizer.train(train, WordTokenizerConfig(max_size=5, min_count=1), MARKER)
    assert tok.vocab == [UNK, "<eos>", "x", "y", "z"]
    words = ["x", "y", "z", MARKER] + ["".join(p) for n in (1, 2) for p in itertools.product("ab", repeat=n)]
    texts = [" ".join(ws) + "\n" for n in range(3) for ws in itertools.product(words, repeat=n)]
    assert len(texts) == 1 + 10 + 100

    markers = np.array([t.split().count(MARKER) for t in texts])

    def probs(model, speller) -> np.ndarray:
        scorer = lm_of(tok, model, speller, batch_size=7, bptt=3).scorer()
        return np.array([math.exp(-scorer.score([t]).nll_nats) for t in texts])

    assert 0 < probs(model_for(tok.vocab_size, 0), model_for(len(tok.alphabet), 1)).sum() <= 1 + 1e-9  # as initialised

    # nets with fixed outputs: P(<eos>) = .6, P(<unk>) = .37, x y z .01 each; the speller
    # P(<eow>) = q = .5, P(a) = P(b) = .25 at every step
    a, b, eow = (tok.alphabet.index(c) for c in ("a", "b", EOW))
    q = 0.5
    model = fixed_distribution(model_for(tok.vocab_size, 0), {0: 0.37, 1: 0.6, 2: 0.01, 3: 0.01, 4: 0.01})
    speller = fixed_distribution(model_for(len(tok.alphabet), 1), {eow: q, a: (1 - q) / 2, b: (1 - q) / 2})
    p = probs(model, speller)
    assert p.sum() <= 1 + 1e-9
    # a marker costs P(<unk>) P_speller(<eow>) = .37 q: had it cost P(<unk>) alone, the same
    # texts would sum to more than 1
    assert float((p / q ** markers).sum()) > 1.05
    assert math.exp(-lm_of(tok, model, speller).scorer().score(["<unk>\n"]).nll_nats) == pytest.approx(
        0.37 * q * 0.6, rel=1e-5)


def test_hybrid_speller_learns_the_marker_as_the_empty_spelling():
    train = "x y <unk> z <unk> ab\n" * 4
    tok = HybridTokenizer.train(train, WordTokenizerConfig(max_size=5, min_count=1), MARKER)
    lm = lm_of(tok, model_for(tok.vocab_size, 0), model_for(len(tok.alphabet), 1))
    speller, word = lm.parts(tok.encode(train), "x <unk> ab\n")
    eow = tok.eow_id
    stream = speller.ids.tolist()
    assert stream.count(eow) == 12  # 8 markers (<eow> alone) + 4 times "ab" (a b <eow>)
    assert sum(1 for i, j in zip([eow] + stream, stream) if i == j == eow) == 8
    assert word.ids.tolist().count(tok.unk_id) == 12


# ----------------------------------------------------------------------------- KenLM on WikiText-format text


def wikitext(n_articles: int, seed: int, extra: tuple[str, ...] = ()) -> str:
    """WikiText's layout: ` = Title = ` lines, blank lines (" " and ""), paragraphs whose
    lines start and end with a space; Zipf-distributed words, a literal <unk> among the commonest,
    and `extra` words that train never has."""
    rng = np.random.default_rng(seed)
    words = np.array(["the", ",", ".", "<unk>", "of", "and", "=", "@-@"] + [f"w{i}" for i in range(300)] + list(extra))
    p = 1 / np.arange(1, len(words) + 1) ** 1.1
    out = []
    for a in range(n_articles):
        out += [" \n", f" = {' '.join(rng.choice(words[8:], size=2, p=p[8:] / p[8:].sum()))} = \n", " \n"]
        for _ in range(int(rng.integers(2, 5))):
            out.append(" " + " ".join(rng.choice(words, size=int(rng.integers(3, 30)), p=p / p.sum())) + " \n")
        out.append("\n" if a % 2 else " \n")
    return "".join(out)


def test_our_ngram_scores_the_wikitext_test_file_as_kenlm_does(tmp_path, monkeypatch):
    splits = (("train", 0, 200, ()), ("valid", 1, 20, ("zebra",)), ("test", 2, 20, ("zebra", "quay")))
    for split, seed, n, extra in splits:
        (tmp_path / f"wiki.{split}.tokens").write_text(wikitext(n, seed, extra), encoding="utf-8")
    params = repo_params()
    params["corpora"] = {"wt": {"source": "local", "unk_marker": MARKER,
                                "splits": {s: f"wiki.{s}.tokens" for s in ("train", "valid", "test")}}}
    params["grid"]["corpus"] = ["wt"]
    params["ngram"]["orders"] = [3]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    download.main(["wt"])
    prepare_stage.main(["wt"])
    tokenize.main(["wt", "word"])
    ngram.main(["wt", "3"])

    test = Path("data/text/wt/test.txt").read_text(encoding="utf-8")
    assert test == (tmp_path / "wiki.test.tokens").read_text(encoding="utf-8")  # verbatim
    m = read_json(paths.result_file("wt-ngram-3"))["test"]
    lm = kenlm.Model(str(paths.RunDir("wt-ngram-3").file(paths.arpa_name(True))))
    lines = test.split("\n")[:-1]
    kenlm_nll = -sum(lm.score(line, bos=True, eos=True) for line in lines) * math.log(10)
    assert m["nll_nats"] == pytest.approx(kenlm_nll, rel=1e-4)
    assert m["n_tokens"] == m["n_words"] == sum(len(line.split()) + 1 for line in lines)
    assert m["n_unk_marker"] == test.split().count(MARKER) > 0
    assert m["n_oov"] == sum(w in ("zebra", "quay") for w in test.split()) > 0
    assert m["open_vocab"] is False
