"""N-gram baseline: interpolated modified Kneser-Ney, stored as KenLM-compatible ARPA.

    vocab = NgramVocab.from_tokenizer(load_tokenizer(path), "word")
    fit = estimate(vocab, vocab.encode(train_text)[0], order=5)   # .model, .discounts, .n_tokens
    write_arpa(fit.model, "model.arpa.gz")
    scorer = NgramScorer(read_arpa("model.arpa.gz"), "word")   # pipeline.evaluation.Scorer

Modules: vocab (symbols; text or tokenizer ids -> sentence streams), kneser_ney (estimation), model (query),
arpa (files), scorer (the evaluator's interface).
"""

from pipeline.ngram.arpa import read_arpa, write_arpa
from pipeline.ngram.kneser_ney import Estimate, estimate
from pipeline.ngram.model import NgramModel
from pipeline.ngram.scorer import NgramScorer
from pipeline.ngram.vocab import NgramVocab

__all__ = ["Estimate", "NgramModel", "NgramScorer", "NgramVocab", "estimate", "read_arpa", "write_arpa"]
