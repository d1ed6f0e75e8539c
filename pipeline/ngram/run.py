"""One n-gram baseline end to end, as stage ngram@<corpus>-ngram-<order> runs it."""

from __future__ import annotations

import time

from pipeline import paths
from pipeline.artifacts import RunResult
from pipeline.config import Params
from pipeline.corpora.text import read_splits
from pipeline.evaluation import evaluate
from pipeline.ngram.arpa import write_arpa
from pipeline.ngram.kneser_ney import estimate
from pipeline.ngram.scorer import NgramScorer
from pipeline.ngram.vocab import NgramVocab
from pipeline.tokenizers import load_split_ids, load_tokenizer


def ngram_run(params: Params, corpus: str, order: int) -> RunResult:
    """Estimate and evaluate; returns the run's metrics and its ARPA file to write."""
    cfg = params.ngram
    texts = read_splits(corpus, ("valid", "test"))  # train comes tokenized
    tok = load_tokenizer(paths.tokenizer_file(corpus, cfg.unit))
    vocab = NgramVocab.from_tokenizer(tok, cfg.unit)

    start = time.perf_counter()
    train = vocab.from_token_ids(tok, load_split_ids(corpus, tok, "train"))  # the word RNN's very ids
    fit = estimate(vocab, train, order, where=str(paths.split_tokens(corpus, cfg.unit, "train")))
    estimate_s = time.perf_counter() - start

    rd = paths.RunDir(paths.run_id(corpus, "ngram", order))
    arpa = paths.arpa_name(cfg.arpa_gzip)

    scorer = NgramScorer(fit.model, cfg.unit)
    scores = {s: evaluate(scorer, texts[s], params.eval.segment_lines) for s in ("valid", "test")}
    metrics = {
        "run": rd.run,
        "lm": "ngram",
        "corpus": corpus,
        "order": order,
        "unit": cfg.unit,
        "model": str(rd.file(arpa)),
        **scores,
        "estimate_s": round(estimate_s, 3),
        "n_params": fit.model.n_params,
        "ngrams": [len(o.keys) for o in fit.model.orders],
        "vocab_size": len(vocab),
        "train_tokens": fit.n_tokens,
        "discounts": fit.discounts.round(6).tolist(),
    }
    return RunResult(metrics, files={arpa: lambda path: write_arpa(fit.model, path)},
                     obsolete=(paths.arpa_name(not cfg.arpa_gzip),))  # a stale file of the other format
