"""One n-gram baseline end to end, as stage ngram@<corpus>-ngram-<order> runs it, and
ngram_matched@ its twin estimated on exactly the text the RNNs train on (run
<corpus>-ngram-<order>-matched; `train.max_train_chars`)."""

from __future__ import annotations

import hashlib
import json
import time

from pipeline import paths
from pipeline.artifacts import RunResult
from pipeline.config import Params
from pipeline.corpora.text import read_split, read_splits
from pipeline.evaluation import evaluate, evaluate_segments
from pipeline.io import sha256_file, write_json
from pipeline.ngram.arpa import write_arpa
from pipeline.ngram.kneser_ney import estimate
from pipeline.ngram.scorer import NgramScorer
from pipeline.ngram.vocab import NgramVocab
from pipeline.text import first_lines
from pipeline.tokenizers import load_split_ids, load_tokenizer
from pipeline.tracking import Tracker


MATCHED = "matched"  # the run id suffix of the estimate on the RNNs' training text


def run_id(corpus: str, order: int, matched: bool = False) -> str:
    return paths.run_id(corpus, "ngram", order, *([MATCHED] if matched else []))


def params_hash(params: Params, corpus: str, order: int, max_chars: int | None = None) -> str:
    """What shapes the model and its scores: the params the stage reads, its input files."""
    files = [paths.tokenizer_file(corpus, params.ngram.unit), paths.split_tokens(corpus, params.ngram.unit, "train"),
             *(paths.split_text(corpus, s) for s in ("train", "valid", "test"))]
    relevant = {"ngram": params.ngram.model_dump(exclude={"orders"}), "order": order, "max_chars": max_chars,
                "segment_lines": params.eval.segment_lines, "data": [sha256_file(f) if f.exists() else None for f in files]}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def ngram_run(params: Params, corpus: str, order: int, matched: bool = False) -> RunResult:
    """Estimate and evaluate; returns the run's metrics and its ARPA file to write, with the
    run's MLflow tracker (finished by `artifacts.write_run`). `matched`: estimated on the whole
    lines of the train text within `train.max_train_chars` characters, the RNNs' training text
    (all of it when that is null), instead of the whole split."""
    cfg = params.ngram
    max_chars = params.train.max_train_chars if matched else None
    rd = paths.RunDir(run_id(corpus, order, matched=matched))
    h = params_hash(params, corpus, order, max_chars)
    config = {"corpus": corpus, "lm": "ngram", "order": order, "ngram": cfg.model_dump(exclude={"orders"}),
              "train_chars": max_chars, "eval": {"segment_lines": params.eval.segment_lines}}
    stage = f"ngram_matched@{paths.run_id(corpus, 'ngram', order)}" if matched else f"ngram@{rd.run}"
    tracker = Tracker(params.tracking, corpus=corpus, run=rd.run, stage=stage, params_hash=h, params=config, tags={})
    try:
        texts = read_splits(corpus, ("valid", "test"))  # train comes tokenized
        tok = load_tokenizer(paths.tokenizer_file(corpus, cfg.unit))
        vocab = NgramVocab.from_tokenizer(tok, cfg.unit)
        if matched:
            text = first_lines(read_split(corpus, "train"), max_chars)
            train_ids, train_chars = tok.encode(text), len(text)
        else:
            train_ids, train_chars = load_split_ids(corpus, tok, "train"), None
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
    start = time.perf_counter()
    valid = evaluate(scorer, texts["valid"], params.eval.segment_lines)
    test, segments = evaluate_segments(scorer, texts["test"], params.eval.segment_lines)
    score_s = time.perf_counter() - start  # as a train run's valid scoring (in its wall_s) and test_s
    metrics = {
        "run": rd.run,
        "stage": stage,
        "params_hash": h,
        "lm": "ngram",
        "corpus": corpus,
        "order": order,
        "unit": cfg.unit,
        "model": str(rd.file(arpa)),
        "valid": valid,
        "test": test,
        "n_params": fit.model.n_params,
        "ngrams": [len(o.keys) for o in fit.model.orders],
        "vocab_size": len(vocab),
        "train_tokens": fit.n_tokens,
        "train_chars": train_chars,  # None: the whole train split
        "data": "RNN budget" if matched else "whole split",
        "discounts": fit.discounts.round(6).tolist(),
    }
    return RunResult(metrics, {"estimate_s": round(estimate_s, 3), "score_s": round(score_s, 3)}, files={arpa: lambda path: write_arpa(fit.model, path),
                                     paths.CONFIG: lambda path: write_json(path, config)},
                     obsolete=(paths.arpa_name(not cfg.arpa_gzip),), segments=segments, tracker=tracker,
                     logged=[paths.tokenizer_file(corpus, cfg.unit)])  # a stale file of the other format
