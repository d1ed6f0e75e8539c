"""One n-gram baseline end to end, as stage ngram@<corpus>-ngram-<order> runs it."""

from __future__ import annotations

import hashlib
import json
import time

from pipeline import paths
from pipeline.artifacts import RunResult
from pipeline.config import Params
from pipeline.corpora.text import read_splits
from pipeline.evaluation import evaluate
from pipeline.io import sha256_file, write_json
from pipeline.ngram.arpa import write_arpa
from pipeline.ngram.kneser_ney import estimate
from pipeline.ngram.scorer import NgramScorer
from pipeline.ngram.vocab import NgramVocab
from pipeline.tokenizers import load_split_ids, load_tokenizer
from pipeline.tracking import Tracker


def params_hash(params: Params, corpus: str, order: int) -> str:
    """What shapes the model and its scores: the params the stage reads, its input files."""
    files = [paths.tokenizer_file(corpus, params.ngram.unit), paths.split_tokens(corpus, params.ngram.unit, "train"),
             *(paths.split_text(corpus, s) for s in ("valid", "test"))]
    relevant = {"ngram": params.ngram.model_dump(exclude={"orders"}), "order": order,
                "segment_lines": params.eval.segment_lines, "data": [sha256_file(f) if f.exists() else None for f in files]}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def ngram_run(params: Params, corpus: str, order: int) -> RunResult:
    """Estimate and evaluate; returns the run's metrics and its ARPA file to write, with the
    run's MLflow tracker (finished by `artifacts.write_run`)."""
    cfg = params.ngram
    rd = paths.RunDir(paths.run_id(corpus, "ngram", order))
    h = params_hash(params, corpus, order)
    config = {"corpus": corpus, "lm": "ngram", "order": order, "ngram": cfg.model_dump(exclude={"orders"}),
              "eval": {"segment_lines": params.eval.segment_lines}}
    tracker = Tracker(params.tracking, corpus=corpus, run=rd.run, stage=f"ngram@{rd.run}", params_hash=h,
                      params=config, tags={})
    try:
        texts = read_splits(corpus, ("valid", "test"))  # train comes tokenized
        tok = load_tokenizer(paths.tokenizer_file(corpus, cfg.unit))
        vocab = NgramVocab.from_tokenizer(tok, cfg.unit)
        train_ids = load_split_ids(corpus, tok, "train")
        tracker.started()

        start = time.perf_counter()
        train = vocab.from_token_ids(tok, train_ids)  # the word RNN's very ids
        fit = estimate(vocab, train, order, where=str(paths.split_tokens(corpus, cfg.unit, "train")))
        estimate_s = time.perf_counter() - start
    except BaseException:
        tracker.close()
        raise
    arpa = paths.arpa_name(cfg.arpa_gzip)

    scorer = NgramScorer(fit.model, cfg.unit, tok.unk_marker)
    scores = {s: evaluate(scorer, texts[s], params.eval.segment_lines) for s in ("valid", "test")}
    metrics = {
        "run": rd.run,
        "params_hash": h,
        "lm": "ngram",
        "corpus": corpus,
        "order": order,
        "unit": cfg.unit,
        "model": str(rd.file(arpa)),
        **scores,
        "n_params": fit.model.n_params,
        "ngrams": [len(o.keys) for o in fit.model.orders],
        "vocab_size": len(vocab),
        "train_tokens": fit.n_tokens,
        "discounts": fit.discounts.round(6).tolist(),
    }
    return RunResult(metrics, {"estimate_s": round(estimate_s, 3)}, files={arpa: lambda path: write_arpa(fit.model, path),
                                     paths.CONFIG: lambda path: write_json(path, config)},
                     obsolete=(paths.arpa_name(not cfg.arpa_gzip),), tracker=tracker,
                     logged=[paths.tokenizer_file(corpus, cfg.unit)])  # a stale file of the other format
