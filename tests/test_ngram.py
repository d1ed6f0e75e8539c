"""N-gram baseline: estimator vs a brute-force reference, normalisation, KenLM, ARPA files,
bad input, the evaluator and the stage. Toy corpora only, written here."""

from __future__ import annotations

import gzip
import itertools
import json
import math
import os
import random
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import kenlm
import numpy as np
import pytest
import yaml

from pipeline.config import CharTokenizerConfig, WordTokenizerConfig
from pipeline.errors import UserError
from pipeline.evaluation import evaluate, evaluate_segments, segments
from pipeline.ngram import NgramScorer, NgramVocab, arpa, estimate, read_arpa, write_arpa
from pipeline.ngram.rows import format_g7
from pipeline.ngram.vocab import escape_char
from pipeline.tokenizers import CharTokenizer, WordTokenizer
from stages._cli import run
from stages.ngram import main

WORDS = "the cat dog sat ran on a mat and fast".split()


def toy_text(n_lines: int, seed: int, words=WORDS) -> str:
    """Sentences from a sticky Markov chain, so counts of 1..4+ all occur."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        w, line = rng.choice(words), []
        for _ in range(rng.randint(1, 8)):
            line.append(w)
            w = (
                words[(words.index(w) + rng.choice([1, 1, 2, 3])) % len(words)]
                if rng.random() < 0.8
                else rng.choice(words)
            )
        lines.append(" ".join(line))
    return "\n".join(lines) + "\n"


def word_vocab(text: str, max_size: int | None = 8) -> NgramVocab:
    """max_size < the toy vocabulary, so <unk> occurs in training (the word RNN's convention)."""
    tok = WordTokenizer.train(text, WordTokenizerConfig(max_size=max_size))
    return NgramVocab.from_tokenizer(tok, "word")


def quiet_estimate(vocab, text, order):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # discount fallbacks on toy data are tested separately
        return estimate(vocab, vocab.encode(text)[0], order)


TRAIN = toy_text(300, seed=0)


# ----------------------------------------------------------------------------- reference


def reference_kn(sentences: list[list[str]], symbols: list[str], order: int):
    """Interpolated modified KN, straight from the formulas, with dicts. Returns p(word, context)."""
    raw = [Counter() for _ in range(order + 1)]  # raw[k][k-gram tuple]
    for s in sentences:
        t = ["<s>"] + s + ["</s>"]
        for i in range(1, len(t)):
            for k in range(1, order + 1):
                if i - k + 1 >= 0:
                    raw[k][tuple(t[i - k + 1 : i + 1])] += 1
    adj = [None] * (order + 1)
    adj[order] = dict(raw[order])
    for k in range(order - 1, 0, -1):
        adj[k] = {
            g: c if g[0] == "<s>" else len({v[0] for v in adj[k + 1] if v[1:] == g})
            for g, c in raw[k].items()
        }
    disc = [None]
    for k in range(1, order + 1):
        n = [sum(1 for a in adj[k].values() if a == j) for j in range(5)]
        d = []
        for j, default in zip((1, 2, 3), (0.5, 1.0, 1.5)):
            try:
                y = n[1] / (n[1] + 2 * n[2])
                v = j - (j + 1) * y * n[j + 1] / n[j]
            except ZeroDivisionError:
                v = float("nan")
            d.append(v if 0 < v <= j else default)
        disc.append(d)
    predicted = [s for s in symbols if s != "<s>"]

    def D(k, a):
        return 0.0 if a == 0 else disc[k][min(a, 3) - 1]

    def p(k, w, h):  # p_k(w | h), len(h) == k - 1
        if k == 0:
            return 1 / len(predicted)
        lower = p(k - 1, w, h[1:])
        seen = {g[-1]: a for g, a in adj[k].items() if g[:-1] == h}
        total = sum(seen.values())
        if total == 0:
            return lower
        gamma = sum(D(k, a) for a in seen.values()) / total
        a = seen.get(w, 0)
        return (a - D(k, a)) / total + gamma * lower

    def prob(w, context):
        h = tuple(context[-(order - 1) :]) if order > 1 else ()
        return p(len(h) + 1, w, h)

    return prob


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_matches_brute_force_reference_on_every_ngram(order):
    text = toy_text(40, seed=1)
    vocab = word_vocab(text, max_size=7)
    fit = quiet_estimate(vocab, text, order)
    sentences = [[w if w in vocab.stoi else "<unk>" for w in line.split()] for line in text.splitlines()]
    ref = reference_kn(sentences, vocab.symbols, order)

    units = [s for s in vocab.symbols if s != "<s>"]
    contexts = [("<s>",) + c for n in range(order - 1) for c in itertools.product(units, repeat=n)]
    contexts += list(itertools.product(units, repeat=order - 1))
    # left-pad the shorter <s> contexts with </s>: history restarts at <s>, the padding is unseen
    rows = [("</s>",) * (order - 1 - len(c)) + c + (w,) for c in contexts for w in units]
    ours = fit.model.logprob10(np.array([[vocab.symbols.index(s) for s in r] for r in rows]))[:, -1]
    want = np.array([math.log10(ref(w, c)) for c in contexts for w in units])
    np.testing.assert_allclose(ours, want, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- normalisation


def random_contexts(fit, stream: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, order-1) contexts: windows of the training stream (seen, crossing sentence starts)
    and random unit sequences (mostly unseen)."""
    N, V, bos = fit.model.order, len(fit.model.symbols), fit.model.bos_id
    starts = rng.integers(0, len(stream) - N, size=n // 2)
    seen = np.stack([stream[s : s + N - 1] for s in starts]).reshape(n // 2, N - 1)
    units = np.setdiff1d(np.arange(V), [bos])
    unseen = rng.choice(units, size=(n - n // 2, N - 1))
    return np.concatenate([seen, unseen])


@pytest.mark.parametrize("unit", ["word", "char"])
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_distribution_over_vocabulary_sums_to_one(unit, order):
    if unit == "word":
        vocab = word_vocab(TRAIN)
    else:
        vocab = NgramVocab.from_tokenizer(CharTokenizer.train(TRAIN[:3000], CharTokenizerConfig()), "char")
    text = TRAIN if unit == "word" else TRAIN[:3000]
    fit = quiet_estimate(vocab, text, order)
    stream, _ = vocab.encode(text)
    ctx = random_contexts(fit, stream, 40, np.random.default_rng(order))
    units = np.setdiff1d(np.arange(len(vocab)), [vocab.bos_id])  # </s> and <unk> included
    rows = np.concatenate([np.repeat(ctx, len(units), axis=0), np.tile(units, len(ctx))[:, None]], axis=1)
    p = 10 ** fit.model.logprob10(rows)[:, -1].reshape(len(ctx), len(units))
    assert (p > 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------- KenLM, ARPA


def kenlm_agrees(fit, vocab, path, sentences: list[str]) -> None:
    write_arpa(fit.model, path)
    lm = kenlm.Model(str(path))
    for line in sentences:
        stream, _ = vocab.encode(line + "\n")
        ours = np.nansum(fit.model.logprob10(stream))
        arpa_line = line if vocab.unit == "word" else " ".join(escape_char(c) for c in line)
        assert lm.score(arpa_line, bos=True, eos=True) == pytest.approx(ours, abs=1e-4), line


@pytest.mark.parametrize("order", [2, 3, 5])  # KenLM cannot load order 1
def test_kenlm_scores_our_arpa_like_we_do(order, tmp_path):
    vocab = word_vocab(TRAIN)
    fit = quiet_estimate(vocab, TRAIN, order)
    held_out = toy_text(60, seed=7, words=WORDS + ["zounds", "prithee"]).splitlines()  # OOV words
    kenlm_agrees(fit, vocab, tmp_path / "m.arpa.gz", held_out + TRAIN.splitlines()[:40] + [""])


def test_kenlm_agrees_on_characters(tmp_path):
    text = "to be, or not\tto be\nthat is the question\n¡ay!\n"
    vocab = NgramVocab.from_tokenizer(CharTokenizer.train(text, CharTokenizerConfig()), "char")
    fit = quiet_estimate(vocab, text, 4)
    kenlm_agrees(fit, vocab, tmp_path / "c.arpa", ["to be", "question?", "not\tthat", " ¡x"])


def test_arpa_round_trip(tmp_path):
    vocab = word_vocab(TRAIN)
    fit = quiet_estimate(vocab, TRAIN, 4)
    stream, _ = vocab.encode(toy_text(50, seed=3))
    for name in ("m.arpa", "m.arpa.gz"):
        write_arpa(fit.model, tmp_path / name)
        back = read_arpa(tmp_path / name)
        assert back.symbols == fit.model.symbols
        for a, b in zip(fit.model.orders, back.orders):
            np.testing.assert_array_equal(a.keys, b.keys)
            np.testing.assert_allclose(b.logp, a.logp, rtol=1e-6)
            np.testing.assert_allclose(b.backoff, a.backoff, rtol=1e-6)
        np.testing.assert_allclose(back.logprob10(stream), fit.model.logprob10(stream), rtol=1e-6)
    first = (tmp_path / "m.arpa.gz").read_bytes()
    write_arpa(fit.model, tmp_path / "m.arpa.gz")
    assert (tmp_path / "m.arpa.gz").read_bytes() == first  # no timestamp in the gzip header
    assert gzip.decompress(first) == (tmp_path / "m.arpa").read_bytes()



def test_format_g7_is_pythons_g7():
    """The vectorised formatter against Python's own "%.7g": every layout, the values where
    log10 or the rounding is one off (..9995, powers of ten), rounding ties, non-finite ones."""
    rng = np.random.default_rng(0)
    edge = [0.0, -0.0, np.inf, -np.inf, np.nan, -99.0, 1.0, -1.0, 0.1, 1e-4, 1e-5, 9.9999995, 9.99999949,
            0.00099999995, 9999999.5, 9999999.4, 1e7, 1e6, 1234567.0, 0.12345675, 123456.75, 5e-324, 1e300]
    x = np.concatenate([
        edge, -np.array(edge),
        -rng.exponential(1.5, 20_000),  # log10 probabilities, back-offs
        rng.standard_normal(20_000) * 10.0 ** rng.integers(-9, 10, 20_000),
        (rng.integers(1, 10**7, 2_000) + 0.5) / 10.0 ** rng.integers(0, 10, 2_000),  # ties, near ties
        *(np.nextafter(10.0 ** np.arange(-12, 12.0), to) for to in (0, np.inf)), 10.0 ** np.arange(-12, 12.0),
    ])
    got = format_g7(x, b"\t")
    want = [f"{v:.7g}\t".encode() for v in x.tolist()]
    assert [got.buf[s : s + n].tobytes() for s, n in zip(got.start, got.length)] == want
    some = x > 0
    partial = format_g7(x, b"", where=some)
    assert [partial.buf[s : s + n].tobytes() for s, n in zip(partial.start, partial.length)] == [
        f"{v:.7g}".encode() if keep else b"" for v, keep in zip(x.tolist(), some)
    ]


def slow_arpa(model) -> bytes:
    """The ARPA text of `model` line by line, straight from the format (as the writer once did)."""
    lines = ["\\data\\"] + [f"ngram {k}={len(o.keys)}" for k, o in enumerate(model.orders, 1)]
    for k, o in enumerate(model.orders, 1):
        lines += ["", f"\\{k}-grams:"]
        for ids, p, b in zip(model.ngrams(k).tolist(), o.logp.tolist(), o.backoff.tolist()):
            words = " ".join(model.symbols[i] for i in ids)
            lines.append(f"{p:.7g}\t{words}\t{b:.7g}" if b else f"{p:.7g}\t{words}")
    return "\n".join(lines + ["", "\\end\\", ""]).encode()


@pytest.mark.parametrize("unit", ["word", "char"])
def test_arpa_text_is_the_line_by_line_text(unit, tmp_path, monkeypatch):
    """The vectorised writer, across block boundaries, with non-ASCII and escaped symbols and
    values in every "%g" layout, writes what formatting each line would; KenLM loads it."""
    text = "zounds ¡ay! <s> prithee\n" + (TRAIN if unit == "word" else TRAIN[:3000])
    if unit == "word":
        vocab = word_vocab(text, max_size=None)
    else:
        vocab = NgramVocab.from_tokenizer(CharTokenizer.train(text, CharTokenizerConfig()), "char")
    fit = quiet_estimate(vocab, text, 4)
    top = fit.model.orders[-1]
    top.logp[:6] = [-1e-5, -2.5e-7, -1234567.0, -0.0001, -99.0, -0.12345675]
    fit.model.orders[1].backoff[:3] = [-3e-5, 0.0, -0.0]
    monkeypatch.setattr(arpa, "CHUNK", 7)
    write_arpa(fit.model, tmp_path / "m.arpa")
    assert (tmp_path / "m.arpa").read_bytes() == slow_arpa(fit.model)
    write_arpa(fit.model, tmp_path / "m.arpa.gz")
    assert gzip.decompress((tmp_path / "m.arpa.gz").read_bytes()) == slow_arpa(fit.model)
    kenlm.Model(str(tmp_path / "m.arpa.gz"))


GOOD_ARPA = """\\data\\
ngram 1=4
ngram 2=2

\\1-grams:
-1.0\t<unk>
-99\t<s>\t-0.3
-0.5\t</s>
-0.6\ta\t-0.2

\\2-grams:
-0.2\t<s> a
-0.1\ta </s>

\\end\\
"""


@pytest.mark.parametrize(
    "old, new, line, fragment",
    [
        ("-0.6\ta\t-0.2", "x\ta\t-0.2", 9, "not a number"),
        ("-1.0\t<unk>", "1.5\t<unk>", 6, "<= 0"),
        ("-0.1\ta </s>", "-0.1\ta b", 13, "'b' is not a 1-gram"),
        ("-0.1\ta </s>", "-0.2\t<s> a", 13, "duplicate 2-gram"),
        ("-0.1\ta </s>", "-0.1\ta", 13, "expected 'log10prob <2 words>"),
        ("ngram 2=2", "ngram 2=3", 15, "says 3 entries, found 2"),
        ("ngram 2=2", "ngram 3=2", 3, "expected 'ngram 2=<count>'"),
        ("\\end\\\n", "", 13, "expected '\\\\end\\\\', got end of file"),
        ("\\data\\", "data", 15, r"no \data\ header"),
        ("ngram 2=2\n", "ngram 2=2\nngram 3=1\n", 17, "prefix 2-gram is not stored"),
        ("-0.5\t</s>", "-0.5\t<unk>", 8, "duplicate 1-gram"),
    ],
)
def test_malformed_arpa_names_file_and_line(tmp_path, old, new, line, fragment):
    text = GOOD_ARPA.replace(old, new)
    if "ngram 3=1" in text:
        text = text.replace("\\end\\", "\\3-grams:\n-0.1\t<s> </s> a\n\n\\end\\")
    path = tmp_path / "bad.arpa"
    path.write_text(text)
    with pytest.raises(UserError) as e:
        read_arpa(path)
    assert str(e.value).startswith(f"{path}: line {line}: ") and fragment in str(e.value)


def test_good_arpa_and_unreadable_files(tmp_path):
    (tmp_path / "ok.arpa").write_text(GOOD_ARPA)
    assert read_arpa(tmp_path / "ok.arpa").n_params == 6
    (tmp_path / "bom.arpa").write_text("\ufeff" + GOOD_ARPA, encoding="utf-8")  # as some editors save it
    assert read_arpa(tmp_path / "bom.arpa").n_params == 6
    (tmp_path / "no-unk.arpa").write_text(GOOD_ARPA.replace("<unk>", "b"))
    with pytest.raises(UserError, match=r"no-unk.arpa: the 1-grams lack \['<unk>'\]"):
        read_arpa(tmp_path / "no-unk.arpa")
    (tmp_path / "bad.arpa.gz").write_bytes(gzip.compress(GOOD_ARPA.encode())[:40])
    with pytest.raises(UserError, match="bad.arpa.gz: cannot read"):
        read_arpa(tmp_path / "bad.arpa.gz")
    with pytest.raises(UserError, match="missing.arpa: cannot read"):
        read_arpa(tmp_path / "missing.arpa")


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("text, order", [("a\n", 3), ("a b\nb\n", 4), ("x y z\n", 1)])
def test_degenerate_corpus_warns_and_stays_finite(text, order):
    vocab = word_vocab(text, max_size=None)
    with pytest.warns(UserWarning, match="count-of-counts"):
        fit = estimate(vocab, vocab.encode(text)[0], order)
    assert all(np.isfinite(o.logp).all() and np.isfinite(o.backoff).all() for o in fit.model.orders)
    assert np.isfinite(fit.discounts).all() and (fit.discounts > 0).all()
    units = np.setdiff1d(np.arange(len(vocab)), [vocab.bos_id])
    rows = np.stack([np.full(len(units), vocab.bos_id), units], axis=1)
    assert np.sum(10 ** fit.model.logprob10(rows)[:, 1]) == pytest.approx(1.0, abs=1e-12)


def test_order_bounds():
    text = "a b c\nd\n"  # longest sentence: 4 tokens with </s> -> orders 1..5
    vocab = word_vocab(text, max_size=None)
    for order in (0, -1, 6):
        with pytest.raises(UserError, match=r"order .* out of range for train.txt: allowed 1\.\.5"):
            estimate(vocab, vocab.encode(text)[0], order, where="train.txt")
    assert quiet_estimate(vocab, text, 5).model.order == 5


@pytest.mark.parametrize("text", ["", "\n\n\n"])
def test_empty_split_is_a_user_error(text):
    with pytest.raises(UserError, match="train.txt: no words .*empty split"):
        vocab = word_vocab("a b\n")
        estimate(vocab, vocab.encode(text)[0], 3, where="train.txt")


# ----------------------------------------------------------------------------- evaluator, stage


def test_scorer_through_the_evaluator():
    vocab = word_vocab(TRAIN)
    fit = quiet_estimate(vocab, TRAIN, 3)
    text = toy_text(120, seed=5, words=WORDS + ["zounds"])
    scorer = NgramScorer(fit.model, "word")
    m = evaluate(scorer, text, segment_lines=7)
    n_oov = sum(w not in vocab.stoi for w in text.split())
    assert m["open_vocab"] is False and m["n_oov"] == n_oov > 0
    assert m["n_tokens"] == m["n_words"] == len(text.split()) + text.count("\n")
    assert m["word_ppl"] == pytest.approx(math.exp(m["nll_nats"] / m["n_words"]), rel=1e-12)
    assert m["token_ppl"] == pytest.approx(m["word_ppl"], rel=1e-12)
    # lines are sentences: segmentation changes nothing, and a segment scores as the text it is
    assert evaluate(scorer, text, segment_lines=1)["nll_nats"] == pytest.approx(m["nll_nats"], rel=1e-12)
    _, segs = evaluate_segments(scorer, text, segment_lines=7)
    assert segs.nll == pytest.approx([evaluate(scorer, s, 7)["nll_nats"] for s in segments(text, 7)], rel=1e-12)
    stream, _ = vocab.encode(text)
    assert m["nll_nats"] == pytest.approx(-np.nansum(fit.model.logprob10(stream)) * math.log(10), rel=1e-12)


def test_lines_are_the_evaluators_lines():
    """Only "\n" ends a sentence, as the evaluator counts lines; other breaks are whitespace."""
    vocab = word_vocab(TRAIN)
    text = "the cat\r\nsat\u2028on a\x1cmat  and\x0bdog\n\nran"
    m = evaluate(NgramScorer(quiet_estimate(vocab, TRAIN, 3).model, "word"), text, 2)
    assert m["n_tokens"] == m["n_words"] == 9 + 4


def test_char_scorer_counts_every_character():
    text = TRAIN[:2000]
    vocab = NgramVocab.from_tokenizer(CharTokenizer.train(text, CharTokenizerConfig()), "char")
    m = evaluate(NgramScorer(quiet_estimate(vocab, text, 5).model, "char"), "the cat Q\r\nsat\n", 50)
    assert m["n_tokens"] == m["n_chars"] == 15 and m["open_vocab"] is False
    assert m["n_oov"] == 2  # "Q" and "\r": not in train


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project root with params.yaml, prepared splits and the word tokenizer with its train ids."""
    params = {
        "corpora": {"toy": {"source": "local", "path": "toy.txt"}},
        "grid": {"corpus": ["toy"], "lm": ["word"], "cell": ["lstm"], "dropout": [0.0], "clip": [5], "seed": []},
        "eval": {"segment_lines": 10},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    d = tmp_path / "data" / "text" / "toy"
    d.mkdir(parents=True)
    for split, seed in (("train", 0), ("valid", 1), ("test", 2)):
        (d / f"{split}.txt").write_text(TRAIN if split == "train" else toy_text(50, seed, WORDS + ["zounds"]))
    tok = WordTokenizer.train(TRAIN, WordTokenizerConfig(max_size=8))
    tok.save(tmp_path / "data/tokens/toy/word/tokenizer.json")
    np.save(tmp_path / "data/tokens/toy/word/train.npy", tok.encode(TRAIN).astype(np.uint8))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_stage_writes_model_and_metrics(project):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["toy", "3"])
    m = json.loads((project / "results/toy-ngram-3.json").read_text())
    assert (m["run"], m["lm"], m["corpus"], m["order"]) == ("toy-ngram-3", "ngram", "toy", 3)
    assert m["n_params"] == sum(m["ngrams"]) and len(m["discounts"]) == 3
    assert m["test"]["n_oov"] > 0 and m["valid"]["word_ppl"] > 1 and json.loads((project / "models/toy-ngram-3/cost.json").read_text())["estimate_s"] >= 0
    path = project / "models/toy-ngram-3/model.arpa.gz"
    assert m["model"] == "models/toy-ngram-3/model.arpa.gz"
    again = evaluate(
        NgramScorer(read_arpa(path), "word"), (project / "data/text/toy/test.txt").read_text(), 10
    )
    assert again["nll_nats"] == pytest.approx(m["test"]["nll_nats"], rel=1e-6)
    kenlm.Model(str(path))

    params = yaml.safe_load((project / "params.yaml").read_text())
    (project / "params.yaml").write_text(yaml.safe_dump({**params, "ngram": {"arpa_gzip": False}}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["toy", "3"])
    assert sorted(p.name for p in (project / "models/toy-ngram-3").iterdir()) == ["config.json", "cost.json", "model.arpa"]


def test_stage_process_imports_no_heavy_library(project):
    """The stage is a second of work: numpy, not torch, mlflow (its tracking agent imports that
    in a process of its own), pandas or datasets, whose imports alone would cost as much."""
    code = ("import sys, warnings; warnings.simplefilter('ignore'); from stages.ngram import main; main(['toy', '3']); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'mlflow', 'pandas', 'datasets', 'optuna', 'matplotlib', 'scipy', 'sklearn', 'tokenizers'}))")
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(root)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]" and (project / "metrics/toy-ngram-3.json").exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["toy", "0"], "allowed 1..10"),  # TRAIN's longest line: 8 words + </s>
        (["toy", "11"], "allowed 1..10"),
    ],
)
def test_stage_bad_input_exits_2(project, capsys, args, fragment):
    with pytest.raises(SystemExit) as e:
        run(main, args)
    assert e.value.code == 2 and fragment in capsys.readouterr().err


def test_stage_empty_or_missing_train_split(project, capsys):
    np.save(project / "data/tokens/toy/word/train.npy", np.zeros(0, np.uint8))
    with pytest.raises(SystemExit) as e:
        run(main, ["toy", "3"])
    assert e.value.code == 2 and "data/tokens/toy/word/train.npy: no words" in capsys.readouterr().err
    (project / "data/tokens/toy/word/train.npy").unlink()
    with pytest.raises(SystemExit) as e:
        run(main, ["toy", "3"])
    assert e.value.code == 2 and "train.npy: not found (run `dvc repro tokenize@toy-word` first)" in capsys.readouterr().err
    (project / "data/tokens/toy/word/train.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(SystemExit) as e:
        run(main, ["toy", "3"])
    assert e.value.code == 2 and "train.npy: not a readable .npy token array" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["a b\nc", "", "\n\n", "  x  y \n z\n", "a <s> b\n\nc </s>\n", "a\x00b\nc\n", "a\x01b\nc"])
def test_word_stream_is_one_sentence_per_line(text):
    vocab = word_vocab(toy_text(30, 0) + "a b c x y z\n", max_size=None)
    stream, n_oov = vocab.encode(text)
    expect = []
    for line in text.split("\n")[:-1] + ([text.rsplit("\n", 1)[-1]] if not text.endswith("\n") and text else []):
        expect += [vocab.bos_id] + [vocab.stoi.get(w, vocab.unk_id) for w in line.split()] + [vocab.eos_id]
    assert stream.tolist() == expect
    assert n_oov == sum(1 for line in text.split("\n") for w in line.split() if w not in vocab.stoi)


EDGE_TEXTS = ["a b <s> </s> <eos> <unk> zz\r q\n\nc a\n", "a b\nc", "", "\n", "a\n\n\n b", "x \u00e9 \U0001F600\n a"]


@pytest.mark.parametrize("text", EDGE_TEXTS)
@pytest.mark.parametrize("unit", ["word", "char"])
def test_token_ids_give_the_stream_encode_gives(unit, text):
    """The stage estimates on the tokenize stage's ids; the scorer encodes text: same stream."""
    tok = (
        WordTokenizer.train(TRAIN + "<s> </s> \u00e9\n", WordTokenizerConfig(max_size=None))
        if unit == "word"
        else CharTokenizer.train(TRAIN + "<s> \u00e9\n", CharTokenizerConfig())
    )
    vocab = NgramVocab.from_tokenizer(tok, unit)
    assert vocab.from_token_ids(tok, tok.encode(text)).tolist() == vocab.encode(text)[0].tolist()
