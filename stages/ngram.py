"""Stage ngram@<corpus>-ngram-<order>: interpolated modified Kneser-Ney on train, scored on
valid/test.

    python -m stages.ngram shakespeare 5

Estimates on the `ngram.unit` tokenizer's train ids (data/tokens/<corpus>/<unit>/, the ids the
word or char RNN trains on) and scores data/text/<corpus>/{valid,test}.txt. Writes
models/<run>/model.arpa[.gz] and metrics/<run>.json, run = <corpus>-ngram-<order>.
"""

from __future__ import annotations

import logging

from pipeline import paths
from pipeline.artifacts import write_run
from pipeline.io import check_writable
from pipeline.ngram.run import ngram_run, run_id
from stages._cli import corpus_stage, run

log = logging.getLogger("stages.ngram")
PARAMS = ["ngram.unit", "ngram.arpa_gzip", "eval.segment_lines"]


def main(argv: list[str] | None = None, doc: str = __doc__, keys: list[str] = PARAMS, matched: bool = False) -> None:
    args, params = corpus_stage(doc, argv, keys,
                                lambda ap: ap.add_argument("order", type=int, help="n-gram order (>= 1)"))
    rd = paths.RunDir(run_id(args.corpus, args.order, matched))
    check_writable(rd.root, paths.RESULTS, paths.METRICS)
    result = ngram_run(params, args.corpus, args.order, matched)
    m = result.result
    write_run(rd, result)
    log.info("%s: valid word ppl %.2f, test word ppl %.2f, %d n-grams, estimated in %.2f s",
             m["run"], m["valid"]["word_ppl"], m["test"]["word_ppl"], m["n_params"], result.cost["estimate_s"])


if __name__ == "__main__":
    run(main)
