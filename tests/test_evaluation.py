"""The common evaluator: sums on the raw text, ratios derived, no dependence on batching."""

import math

import numpy as np
import pytest
import torch

from pipeline.config import CharTokenizerConfig, EvalConfig, ModelConfig, SubwordTokenizerConfig, WordTokenizerConfig
from pipeline.evaluation import Score, count_words, evaluate, evaluate_segments, segments
from pipeline.text import first_lines
from pipeline.rnn.model import RNNLM
from pipeline.rnn.scorer import RNNScorer, sequence_nll
from pipeline.tokenizers import train_tokenizer
from tests.helpers import lm_of

TEXT = "".join(f"line {i} of the play, with word{i % 7} and more\n" for i in range(40))
CPU = torch.device("cpu")


class UnigramChars:
    """A hand-checkable scorer: P(c) from a fixed table, context ignored."""

    open_vocab = True

    def __init__(self, probs: dict[str, float]):
        self.probs = probs

    def score(self, segs):
        nll = np.array([-sum(math.log(self.probs[c]) for c in seg) for seg in segs])
        return Score(nll, sum(map(len, segs)), 0, 0)


def test_hand_computed_metrics():
    text = "ab a\nb\n"  # 7 chars; words: 2 + 1, plus 2 line ends = 5
    probs = {"a": 0.5, "b": 0.25, " ": 0.125, "\n": 0.125}
    m = evaluate(UnigramChars(probs), text, segment_lines=1)
    nll = 2 * math.log(2) + 2 * math.log(4) + math.log(8) + 2 * math.log(8)  # a a b b ' ' \n \n
    assert m["n_chars"] == 7 and m["n_words"] == 5 and m["n_tokens"] == 7
    assert m["nll_nats"] == pytest.approx(nll, rel=1e-12)
    assert m["bits_per_char"] == pytest.approx(nll / math.log(2) / 7, rel=1e-12)
    assert m["word_ppl"] == pytest.approx(math.exp(nll / 5), rel=1e-12)
    assert m["token_ppl"] == pytest.approx(math.exp(nll / 7), rel=1e-12)
    assert m["open_vocab"] is True and m["oov_rate"] == 0


def test_segments_are_kept_apart_from_the_metrics():
    probs = {"a": 0.5, "b": 0.25, " ": 0.125, "\n": 0.125}
    m, segs = evaluate_segments(UnigramChars(probs), "ab a\nb\nab\n", segment_lines=2)
    assert m == evaluate(UnigramChars(probs), "ab a\nb\nab\n", segment_lines=2)  # no arrays in the metrics
    assert segs.n_chars.tolist() == [7, 3] and segs.n_chars.sum() == m["n_chars"]
    assert segs.nll == pytest.approx([2 * math.log(2) + 2 * math.log(4) + 3 * math.log(8),
                                      math.log(2) + math.log(4) + math.log(8)], rel=1e-12)
    assert segs.nll.sum() == pytest.approx(m["nll_nats"], rel=1e-12)


def test_segments_cover_the_text_exactly():
    segs = segments(TEXT, 7)
    assert "".join(segs) == TEXT and len(segs) == math.ceil(40 / 7)
    assert count_words("a b\n\nc") == 3 + 3


def model_for(vocab_size: int, cell: str = "lstm", seed: int = 0) -> RNNLM:
    torch.manual_seed(seed)
    return RNNLM(vocab_size, ModelConfig(cell=cell, embed_dim=16, hidden=24, layers=2, init_scale=0.3))


@pytest.mark.parametrize("kind, cfg", [("char", CharTokenizerConfig()), ("word", WordTokenizerConfig()),
                                       ("subword", SubwordTokenizerConfig(vocab_size=300)),
                                       ("hybrid", WordTokenizerConfig(min_count=3))])
def test_score_does_not_depend_on_batch_size_or_bptt(kind, cfg):
    tok = train_tokenizer(kind, TEXT, cfg)
    model = model_for(tok.vocab_size, "gru")
    speller = model_for(len(tok.alphabet), seed=1) if kind == "hybrid" else None
    ref, ref_segs = evaluate_segments(lm_of(tok, model, speller, batch_size=1, bptt=10_000).scorer(), TEXT, 5)
    if kind == "hybrid":
        assert tok.n_unk_words(tok.encode(TEXT)) > 20  # the speller's share is really scored
    alone = [evaluate(lm_of(tok, model, speller).scorer(), seg, 5)["nll_nats"] for seg in segments(TEXT, 5)]
    assert ref_segs.nll == pytest.approx(alone, rel=1e-5)  # each segment's own score, in order
    for batch_size, bptt in [(3, 7), (16, 1), (64, 33)]:
        got, segs = evaluate_segments(lm_of(tok, model, speller, batch_size=batch_size, bptt=bptt).scorer(), TEXT, 5)
        assert got["nll_nats"] == pytest.approx(ref["nll_nats"], rel=1e-5)
        assert segs.nll == pytest.approx(ref_segs.nll, rel=1e-5)
        assert got["n_tokens"] == ref["n_tokens"]


def test_uniform_model_gives_log_v_per_token():
    tok = train_tokenizer("char", TEXT, CharTokenizerConfig())
    model = model_for(tok.vocab_size)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    m = evaluate(lm_of(tok, model, batch_size=4, bptt=16).scorer(), TEXT, 10)
    assert m["nll_nats"] == pytest.approx(m["n_tokens"] * math.log(tok.vocab_size), rel=1e-6)  # float32 logits
    assert m["token_ppl"] == pytest.approx(tok.vocab_size, rel=1e-6)


def test_first_token_is_conditioned_on_bos_only():
    """A one-token sequence scores -log softmax(model([bos]))[token]."""
    model = model_for(11)
    logits, _ = model(torch.tensor([[3]]))
    expect = -torch.log_softmax(logits[0, 0], -1)[5].item()
    got = sequence_nll(model, [np.array([5])], newline_id=3, batch_size=2, bptt=4, device=CPU)
    assert got[0] == pytest.approx(expect, rel=1e-6)


def test_closed_and_open_vocabulary_flags():
    word = train_tokenizer("word", TEXT, WordTokenizerConfig())
    m = evaluate(lm_of(word, model_for(word.vocab_size), batch_size=8, bptt=16).scorer(), "line 3 of zzz\n", 5)
    assert m["open_vocab"] is False and m["n_oov"] == 1 and m["oov_rate"] == pytest.approx(1 / 5)
    char = train_tokenizer("char", TEXT, CharTokenizerConfig())
    scorer = lm_of(char, model_for(char.vocab_size), batch_size=8, bptt=16).scorer()
    assert evaluate(scorer, "line\n", 5)["open_vocab"] is True
    assert evaluate(scorer, "líne\n", 5)["open_vocab"] is False  # í never seen in train


def test_hybrid_charges_unk_words_their_spelling():
    tok = train_tokenizer("hybrid", TEXT, WordTokenizerConfig(min_count=2))
    model, speller = model_for(tok.vocab_size), model_for(len(tok.alphabet), seed=1)
    text = "line 3 of the word1\nthe play, with 39 nine\n"  # '3', '39', 'nine' are spelled
    hybrid = evaluate(lm_of(tok, model, speller, batch_size=4, bptt=8).scorer(), text, 1)
    words_only = evaluate(RNNScorer(model, tok, EvalConfig(batch_size=4, bptt=8), CPU, open_vocab=False), text, 1)
    spellings = [np.asarray(s) for s in tok.spellings(tok.encode(text))]
    assert len(spellings) == 3
    spelled = sequence_nll(speller, spellings, tok.eow_id, 2, 3, CPU).sum()
    assert hybrid["nll_nats"] == pytest.approx(words_only["nll_nats"] + spelled, rel=1e-6)
    assert hybrid["open_vocab"] is True and hybrid["n_oov"] == 0
    assert hybrid["n_tokens"] == words_only["n_tokens"] == count_words(text)


def test_first_lines_is_a_shared_character_budget():
    text = "ab c\nde\nfghij\n"
    assert first_lines(text, None) == first_lines(text, 100) == text
    assert first_lines(text, 8) == first_lines(text, 12) == "ab c\nde\n"  # whole lines only
    assert first_lines(text, 4) == ""  # not even the first line fits
