"""Tokenizers: round trips, vocabulary rules, OOV accounting, the saved artifact."""

import numpy as np
import pytest

from pipeline.config import CharTokenizerConfig, SubwordTokenizerConfig, WordTokenizerConfig
from pipeline.errors import UserError
from pipeline.tokenizers import KINDS, load_tokenizer, smallest_uint, tokenize_splits, train_tokenizer

TRAIN = "the cat sat on the mat\nthe dog sat\nà la carte, naïve café\n" * 3
TEST = "the zebra sat on the mat\nthe cat ate a naïve crêpe\n"
CFG = {
    "char": CharTokenizerConfig(),
    "word": WordTokenizerConfig(),
    "hybrid": WordTokenizerConfig(min_count=2),
    "subword": SubwordTokenizerConfig(vocab_size=300, min_frequency=2),
}


@pytest.mark.parametrize("kind", ["char", "subword", "hybrid"])
def test_lossless_round_trip(kind):
    tok = train_tokenizer(kind, TRAIN, CFG[kind])
    for text in (TRAIN, TEST.replace("ê", "e"), "no final newline"):
        if kind != "subword":  # only subword spells characters never seen in train
            text = "".join(c for c in text if c in tok.stoi or c in getattr(tok, "alphabet", ()) or c in " \n")
        assert tok.decode(tok.encode(text)) == text


def test_subword_is_lossless_on_unseen_characters():
    tok = train_tokenizer("subword", TRAIN, CFG["subword"])
    text = "日本語 ✓ crêpe\n"
    assert tok.decode(tok.encode(text)) == text
    assert tok.unknowns(text, tok.encode(text)) == (0, 0)


def test_word_is_exact_modulo_unk():
    tok = train_tokenizer("word", TRAIN, CFG["word"])
    ids = tok.encode(TEST)
    assert tok.decode(ids) == "the <unk> sat on the mat\nthe cat <unk> <unk> naïve <unk>\n"
    assert tok.unknowns(TEST, ids) == (4, 0)
    assert (ids == tok.eos_id).sum() == 2


def test_word_vocab_is_train_only_sorted_and_capped():
    tok = train_tokenizer("word", TRAIN + "zz\n", WordTokenizerConfig(max_size=5, min_count=1))
    assert tok.vocab == ["<unk>", "<eos>", "the", "sat", "café"]  # 9, 6, then ties alphabetical
    rare = train_tokenizer("word", TRAIN + "zz\n", WordTokenizerConfig(max_size=None, min_count=2))
    assert "zz" not in rare.stoi and "the" in rare.stoi


def test_hybrid_spells_unknown_words_and_counts_only_unspellable_as_oov():
    tok = train_tokenizer("hybrid", TRAIN, CFG["hybrid"])
    ids = tok.encode("the tacet sat\n")
    assert tok.decode_words(tok.model_ids(ids)) == ["the", "<unk>", "sat", "<eos>"]
    assert [tok.alphabet[i] for i in tok.spellings(ids)[0]] == list("tacet") + ["<eow>"]
    assert tok.unknowns("the tacet sat\n", ids) == (0, 0)
    assert tok.unknowns("crêpe\n", tok.encode("crêpe\n")) == (1, 0)  # 'ê' never seen in train


def test_char_unknown_characters_are_oov():
    tok = train_tokenizer("char", TRAIN, CFG["char"])
    ids = tok.encode("cat\u00ffé\U0001f600\n")
    assert tok.unknowns("cat\u00ffé\U0001f600\n", ids) == (2, 0)  # ÿ and the emoji; é was seen
    assert tok.newline_id == tok.stoi["\n"]


def test_char_line_break_has_its_own_id_even_unseen_in_train():
    """Train of one line without "\n": the line-break unit still exists and is no <unk>."""
    tok = train_tokenizer("char", "abcabc", CFG["char"])
    assert tok.newline_id != tok.unk_id and tok.vocab[tok.newline_id] == "\n"
    assert tok.encode("axb\n").tolist() == [tok.stoi["a"], tok.unk_id, tok.stoi["b"], tok.newline_id]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_saved_tokenizer_reloads_identically(kind, tmp_path):
    tok, ids, stats = tokenize_splits(kind, {"train": TRAIN, "valid": TEST, "test": TEST}, CFG[kind])
    tok.save(tmp_path / "tokenizer.json")
    again = load_tokenizer(tmp_path / "tokenizer.json")
    assert type(again) is type(tok) and again.vocab == tok.vocab
    assert np.array_equal(again.encode(TEST), ids["test"].astype(np.int64))
    assert ids["train"].dtype == np.uint8 or kind == "subword"
    assert stats["splits"]["train"]["tokens"] == len(tok.model_ids(tok.encode(TRAIN)))


def test_bad_tokenizer_file(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text('{"kind": "morse"}')
    with pytest.raises(UserError, match="unknown tokenizer kind 'morse'"):
        load_tokenizer(bad)
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not a tokenizer file"):
        load_tokenizer(bad)


def test_smallest_uint():
    assert smallest_uint(256) == np.uint8 and smallest_uint(257) == np.uint16
    assert smallest_uint(70000) == np.uint32
