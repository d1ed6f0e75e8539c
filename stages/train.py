"""Stages train@<run> and train_seed@<run>: train one member of the ablation grid with one seed
and score it.

    python -m stages.train shakespeare shakespeare-word-lstm-0.5-5 --lm word --cell lstm \\
        --dropout 0.5 --clip 5 --seed 1337

Writes models/<run>/ (model.pt, samples.txt, config.json, cost.json), results/<run>.json,
metrics/<run>.json, curves/<run>.csv. Re-running after a kill resumes from the last checkpoint.
train@ passes the top-level `seed` (run <member>), train_seed@ each seed of `grid.seed` (run
<member>-<seed>); dvc.yaml writes the seed into the command, so the seed's change re-runs the
stage without `seed` among its params.

With train.distributed.nproc > 1 the stage starts itself again under torchrun, as that many
ranks on this machine; started by torchrun (e.g. on several machines), it trains on torchrun's
ranks. Rank 0 alone writes (README "Distributed training (DDP)").
"""

from __future__ import annotations

import argparse
import sys

import yaml

from pipeline import paths
from pipeline.artifacts import write_run
from pipeline.config import TRAIN_PARAMS, GridConfig, parse_section
from pipeline.io import check_writable
from pipeline.rnn import distributed
from pipeline.rnn.run import RunSpec, code_hash, train_run
from pipeline.rnn.trainer import pick_device
from stages._cli import corpus_stage, run

PARAMS = list(TRAIN_PARAMS)  # through their digest, data/params/train-<lm>.json
FACTORS = ("lm", "cell", "dropout", "clip")  # after the corpus, in dvc.yaml's matrix order


def main(argv: list[str] | None = None) -> None:
    def add_args(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("run", help="run id (the DVC matrix key)")
        for factor in FACTORS:  # values as YAML, as DVC writes them from params.yaml
            ap.add_argument(f"--{factor}", required=True, type=yaml.safe_load, help=f"a value of grid.{factor}")
        ap.add_argument("--seed", required=True, type=int, help="the run's seed (`seed` or one of grid.seed)")

    args, params = corpus_stage(__doc__, argv, PARAMS, add_args)
    # The grid's own schema checks the values (check_params has checked params.yaml's grid;
    # this covers a hand-run stage), so a run trains with exactly the values params.yaml holds.
    member = {"corpus": [args.corpus], **{f: [getattr(args, f)] for f in FACTORS}}
    grid = parse_section(GridConfig, member, f"stage arguments of {args.run}")
    factors = [getattr(grid, f)[0] for f in FACTORS]
    # the seeds of a member share its group: the run id of its run with the top-level seed
    spec = RunSpec(args.run, args.corpus, *factors, seed=args.seed, group=paths.run_id(args.corpus, *factors))

    rd = paths.RunDir(args.run)
    check_writable(rd.root, paths.RESULTS, paths.METRICS, paths.CURVES, rd.checkpoint_root)
    cfg = params.train_for(spec.lm, spec.factors)
    distributed.relaunch(cfg.distributed, __spec__.name, sys.argv[1:] if argv is None else argv)
    with distributed.joined(pick_device(cfg.device).type) as group:
        result = train_run(params, spec)
        if group.writer:
            write_run(rd, result)


def prefork() -> None:
    """Called by the fork server once it has imported this module: the code hash (a parse of every
    module the run imports, 0.14 s) computed once for all the stages it forks."""
    code_hash()


if __name__ == "__main__":
    run(main)
