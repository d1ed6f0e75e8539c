"""Stage train_tuned@<target>: train a grid member with its study's best schedule.

    python -m stages.train_tuned <target> --corpus shakespeare --lm word --cell lstm --dropout 0.0 --clip 5

Reads tuning/<target>/best_params.json (tune@<target>'s), merges the best values over the
member's own config (the full grid budget, not the trials') and trains it through the train
stage's path: models/<target>-tuned/, metrics/<target>-tuned.json, curves/<target>-tuned.csv and
an MLflow run of that name.
"""

from __future__ import annotations

import argparse
import logging

import yaml

from pipeline import paths
from pipeline.artifacts import write_run
from pipeline.config import TRAIN_PARAMS, load_params
from pipeline.io import check_writable
from pipeline.rnn.run import RunSpec, train_run
from pipeline.tuning.space import BEST_PARAMS, FACTORS, base_raw, read_best, resolve_target, trial_params
from stages._cli import run

PARAMS = ["seed", *TRAIN_PARAMS]  # TRAIN_PARAMS through their digest, data/params/train-<lm>.json


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", help="a key of params.yaml tune.targets (the stage's matrix key)")
    for factor in FACTORS:
        ap.add_argument(f"--{factor}", type=yaml.safe_load, help=f"the target's {factor}")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    params = load_params()
    target = resolve_target(args.target, {f: getattr(args, f) for f in FACTORS}, params)
    params = params.scoped(k.format(lm=target.lm) for k in PARAMS)
    best_file = paths.tuning_dir(target.name) / BEST_PARAMS
    best = read_best(best_file)
    tuned = trial_params(base_raw(params, target), target, best, where=str(best_file))
    spec = RunSpec(target.tuned_run, target.corpus, target.lm, target.cell, target.dropout, target.clip,
                   seed=tuned.seed)
    rd = paths.RunDir(spec.run)
    check_writable(rd.root, paths.RESULTS, paths.METRICS, paths.CURVES, rd.checkpoint_root)
    result = train_run(tuned, spec)
    result.result["tuned"] = {"from": best_file.as_posix(), "params": best}
    write_run(rd, result)


if __name__ == "__main__":
    run(main)
