"""Generation: prompt kept, seeded, top-k respected, hybrid spells out <unk>."""

import torch

from pipeline.config import CharTokenizerConfig, ModelConfig, WordTokenizerConfig
from pipeline.rnn.model import RNNLM
from pipeline.rnn.sampling import sample_ids
from pipeline.tokenizers import train_tokenizer
from tests.helpers import lm_of

TEXT = "".join(f"the king said {w} to the queen\n" for w in "yes no maybe never always".split() * 4)


def tiny(vocab_size: int, seed: int = 0) -> RNNLM:
    torch.manual_seed(seed)
    return RNNLM(vocab_size, ModelConfig(cell="gru", embed_dim=8, hidden=8, layers=1, tie_weights=True))


def test_generate_is_seeded_and_keeps_the_prompt():
    tok = train_tokenizer("char", TEXT, CharTokenizerConfig())
    lm = lm_of(tok, tiny(tok.vocab_size))
    (a,) = lm.generate("the ", 30, temperature=0.9, seeds=[3])
    assert a.startswith("the ") and len(a) == 34
    assert [a] == lm.generate("the ", 30, temperature=0.9, seeds=[3])
    assert [a] != lm.generate("the ", 30, temperature=0.9, seeds=[4])


def test_a_batch_of_seeds_draws_what_each_seed_draws_alone():
    tok = train_tokenizer("hybrid", TEXT, WordTokenizerConfig(min_count=5))
    model, speller = tiny(tok.vocab_size), tiny(len(tok.alphabet), seed=1)
    with torch.no_grad():  # <unk> often: the spellings draw from each sample's generator too
        model.head.bias[tok.unk_id] = 2.0
    lm = lm_of(tok, model, speller)
    batch = lm.generate("the ", 25, temperature=1.0, seeds=[5, 6, 7])
    assert batch == [lm.generate("the ", 25, temperature=1.0, seeds=[s])[0] for s in (5, 6, 7)]
    assert len(set(batch)) == 3


def test_no_seeds_draw_no_samples():  # train.samples: 0
    for kind in ("char", "hybrid"):
        tok = train_tokenizer(kind, TEXT, WordTokenizerConfig(min_count=5) if kind == "hybrid" else CharTokenizerConfig())
        lm = lm_of(tok, tiny(tok.vocab_size), *([tiny(len(tok.alphabet))] if kind == "hybrid" else []))
        assert lm.generate("the ", 10, seeds=[]) == []


def test_samples_end_at_the_stop_id_each_on_its_own():
    model = tiny(20)
    with torch.no_grad():
        model.head.bias[3] = 2.0  # the stop id: drawn early by some samples, later by others
    gens = [torch.Generator().manual_seed(s) for s in range(4)]
    out = sample_ids(model, [1], 40, temperature=1.0, top_k=None, gens=gens, stop_id=3)
    assert all(ids.count(3) == 1 and ids[-1] == 3 for ids in out)
    assert len({len(ids) for ids in out}) > 1


def test_a_char_model_never_samples_unk():
    tok = train_tokenizer("char", TEXT, CharTokenizerConfig())
    model = tiny(tok.vocab_size)
    with torch.no_grad():  # <unk> would be nearly every draw
        model.head.bias[tok.unk_id] = 20.0
    (text,) = lm_of(tok, model).generate("", 50, temperature=1.0)
    assert len(text) == 50 and "<unk>" not in text


def test_top_1_is_greedy():
    model = tiny(20)
    gen = torch.Generator().manual_seed(0)
    (ids,) = sample_ids(model, [1], 5, temperature=1.0, top_k=1, gens=[gen])
    with torch.no_grad():
        logits, _ = model(torch.tensor([[1]]))
    assert ids[0] == int(logits[0, -1].argmax())


def test_hybrid_samples_spell_their_unknown_words():
    tok = train_tokenizer("hybrid", TEXT, WordTokenizerConfig(min_count=5))  # yes/no/... are <unk>
    model, speller = tiny(tok.vocab_size), tiny(len(tok.alphabet), seed=1)
    with torch.no_grad():  # make <unk> the likeliest word so the speller is exercised
        model.head.bias[tok.unk_id] = 10.0
    (text,) = lm_of(tok, model, speller).generate("", 20, temperature=1.0)
    assert "<unk>" not in text and len(text.split()) >= 10
