"""Stage tokenize@<corpus>-<tokenizer>: fit a tokenizer on train, encode every split.

    python -m stages.tokenize shakespeare word

Writes data/tokens/<corpus>/<tokenizer>/{tokenizer.json, train.npy, valid.npy, test.npy, stats.json}.
"""

from __future__ import annotations

import numpy as np

from pipeline import paths
from pipeline.config import TOKENIZERS
from pipeline.corpora.text import read_splits, read_unk_marker
from pipeline.io import atomic_open, check_writable, write_json
from pipeline.tokenizers import tokenize_splits
from stages._cli import corpus_stage, run

PARAMS = ["tokenizers.{tokenizer}"]


def main(argv: list[str] | None = None) -> None:
    args, params = corpus_stage(__doc__, argv, PARAMS, lambda ap: ap.add_argument("tokenizer", choices=TOKENIZERS))
    cfg = getattr(params.tokenizers, args.tokenizer)
    check_writable(paths.tokens_dir(args.corpus, args.tokenizer))

    # the corpus' unknown-word marker comes with the text (prepare's stats.json, a dep), not
    # from params: DVC cannot track a key that most corpus entries leave out
    tok, ids, stats = tokenize_splits(args.tokenizer, read_splits(args.corpus), cfg, read_unk_marker(args.corpus))
    tok.save(paths.tokenizer_file(args.corpus, args.tokenizer))
    for split, a in ids.items():
        with atomic_open(paths.split_tokens(args.corpus, args.tokenizer, split)) as f:
            np.save(f, a)
    write_json(paths.tokens_dir(args.corpus, args.tokenizer) / paths.STATS_JSON, stats)


if __name__ == "__main__":
    run(main)
