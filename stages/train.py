"""Stage train@<run>: train one member of the ablation grid and score it.

    python -m stages.train shakespeare shakespeare-word-lstm-0.5-5 --lm word --cell lstm \\
        --dropout 0.5 --clip 5

Writes models/<run>/ (checkpoints, model.pt, samples.txt), metrics/<run>.json, curves/<run>.csv.
Re-running after a kill resumes from the last checkpoint.
"""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from pipeline import paths
from pipeline.artifacts import write_run
from pipeline.config import CELLS, LM_TYPES, GridConfig
from pipeline.errors import UserError
from pipeline.rnn.run import RunSpec, train_run
from stages._cli import corpus_stage, run

PARAMS = ["seed", "train", "train_overrides.{lm}", "eval"]


def main(argv: list[str] | None = None) -> None:
    def add_args(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("run", help="run id (the DVC matrix key)")
        ap.add_argument("--lm", required=True, choices=LM_TYPES)
        ap.add_argument("--cell", required=True, choices=CELLS)
        ap.add_argument("--dropout", required=True, type=float)
        ap.add_argument("--clip", required=True, type=float)

    args, params = corpus_stage(__doc__, argv, PARAMS, add_args)
    try:  # DVC passes grid values, already checked; a hand-run CLI gets the grid's own checks
        GridConfig(corpus=[args.corpus], lm=[args.lm], cell=[args.cell], dropout=[args.dropout], clip=[args.clip])
    except ValidationError as e:
        raise UserError("; ".join(err["msg"].removeprefix("Value error, ") for err in e.errors())) from None
    spec = RunSpec(args.run, args.corpus, args.lm, args.cell, args.dropout, args.clip)

    write_run(paths.RunDir(args.run), train_run(params, spec))


if __name__ == "__main__":
    run(main)
