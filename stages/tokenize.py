"""Stage tokenize@<corpus>-<tokenizer>: fit a tokenizer on train, encode every split.

    python -m stages.tokenize shakespeare word

Writes data/tokens/<corpus>/<tokenizer>/{tokenizer.json, train.npy, valid.npy, test.npy, stats.json}.
"""

from __future__ import annotations

import io

import numpy as np

from pipeline import paths
from pipeline.config import TOKENIZERS
from pipeline.corpora.text import read_splits
from pipeline.errors import UserError
from pipeline.io import atomic_open, write_json
from pipeline.tokenizers import tokenize_splits
from stages._cli import corpus_stage, run


def main(argv: list[str] | None = None) -> None:
    args, params = corpus_stage(__doc__, argv, lambda ap: ap.add_argument("tokenizer", help=f"one of {TOKENIZERS}"))
    if args.tokenizer not in TOKENIZERS:
        raise UserError(f"unknown tokenizer {args.tokenizer!r}; allowed {list(TOKENIZERS)}")
    cfg = getattr(params.tokenizers, args.tokenizer)

    tok, ids, stats = tokenize_splits(args.tokenizer, read_splits(args.corpus), cfg)
    out = paths.tokens_dir(args.corpus, args.tokenizer)
    tok.save(out / "tokenizer.json")
    for split, a in ids.items():
        buf = io.BytesIO()
        np.save(buf, a)
        with atomic_open(out / f"{split}.npy") as f:
            f.write(buf.getvalue())
    write_json(out / "stats.json", stats)


if __name__ == "__main__":
    run(main)
