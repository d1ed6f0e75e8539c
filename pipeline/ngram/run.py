"""One n-gram baseline end to end, as stage ngram@<corpus>-ngram-<order> runs it."""

from __future__ import annotations

import time

from pipeline import paths
from pipeline.config import Params
from pipeline.corpora.text import read_splits
from pipeline.evaluation import evaluate
from pipeline.ngram.arpa import write_arpa
from pipeline.ngram.kneser_ney import estimate
from pipeline.ngram.scorer import NgramScorer
from pipeline.ngram.vocab import NgramVocab
from pipeline.tokenizers import load_split_ids, load_tokenizer


def ngram_run(params: Params, corpus: str, order: int) -> dict:
    """Estimate, write the ARPA file, evaluate; returns the run's record (metrics file content)."""
    cfg = params.ngram
    texts = read_splits(corpus, ("valid", "test"))  # train comes tokenized
    tok = load_tokenizer(paths.tokenizer_file(corpus, cfg.unit))
    vocab = NgramVocab.from_tokenizer(tok, cfg.unit)

    start = time.perf_counter()
    train = vocab.from_token_ids(tok, load_split_ids(corpus, cfg.unit, "train"))  # the word RNN's very ids
    fit = estimate(vocab, train, order, where=str(paths.split_tokens(corpus, cfg.unit, "train")))
    estimate_s = time.perf_counter() - start

    run_id = paths.run_id(corpus, "ngram", order)
    names = ("model.arpa.gz", "model.arpa") if cfg.arpa_gzip else ("model.arpa", "model.arpa.gz")
    model_path = paths.model_dir(run_id) / names[0]
    write_arpa(fit.model, model_path)
    (paths.model_dir(run_id) / names[1]).unlink(missing_ok=True)  # a stale file of the other format

    scorer = NgramScorer(fit.model, cfg.unit)
    scores = {s: evaluate(scorer, texts[s], params.eval.segment_lines) for s in ("valid", "test")}
    return {
        "run": run_id,
        "lm": "ngram",
        "corpus": corpus,
        "order": order,
        "unit": cfg.unit,
        "model": str(model_path),
        **scores,
        "estimate_s": round(estimate_s, 3),
        "n_params": fit.model.n_params,
        "ngrams": [len(o.keys) for o in fit.model.orders],
        "vocab_size": len(vocab),
        "train_tokens": fit.n_tokens,
        "discounts": fit.discounts.round(6).tolist(),
    }
