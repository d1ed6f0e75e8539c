"""Stage ngram@<corpus>-<order>: interpolated modified Kneser-Ney on train, scored on valid/test.

    python -m stages.ngram shakespeare 5

Reads data/text/<corpus>/{train,valid,test}.txt and the `ngram.unit` tokenizer's vocabulary
(data/tokens/<corpus>/<unit>/tokenizer.json); writes models/<run>/model.arpa[.gz] and
metrics/<run>.json, run = <corpus>-ngram-<order>.
"""

from __future__ import annotations

import argparse
import logging
import time

from pipeline import paths
from pipeline.config import Params, load_params
from pipeline.corpora.text import read_splits
from pipeline.evaluation import evaluate
from pipeline.io import write_json
from pipeline.ngram import NgramScorer, NgramVocab, estimate, write_arpa
from pipeline.tokenizers import load_tokenizer
from stages._cli import run

log = logging.getLogger("stages.ngram")


def ngram_run(params: Params, corpus: str, order: int) -> dict:
    """Estimate, write the ARPA file, evaluate; returns the run's record (metrics file content)."""
    cfg = params.ngram
    texts = read_splits(corpus)
    tok = load_tokenizer(paths.tokenizer_file(corpus, cfg.unit))
    vocab = NgramVocab.from_tokenizer(tok, cfg.unit)

    start = time.perf_counter()
    fit = estimate(vocab, texts["train"], order, where=str(paths.split_text(corpus, "train")))
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", help="a key of params.yaml `corpora`")
    ap.add_argument("order", type=int, help="n-gram order (>= 1)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    params = load_params()
    params.corpus(args.corpus)
    result = ngram_run(params, args.corpus, args.order)
    write_json(paths.metrics_file(result["run"]), result)
    log.info(
        "%s: valid word ppl %.2f, test word ppl %.2f, %d n-grams, estimated in %.2f s",
        result["run"],
        result["valid"]["word_ppl"],
        result["test"]["word_ppl"],
        result["n_params"],
        result["estimate_s"],
    )


if __name__ == "__main__":
    run(main)
