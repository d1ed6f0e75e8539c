"""Stage tune@<target>: an Optuna study of a grid member's learning-rate schedule.

    python -m stages.tune <target> --corpus shakespeare --lm word --cell lstm --dropout 0.0 --clip 5
    python -m stages.tune <target> --workers 4          # factors from params.yaml tune.targets.<target>
    python -m stages.tune <target> --join --workers 2   # on another machine: trials of the running study

Runs the study to tune.n_trials finished trials (a re-run continues it; a changed search space
is a new study), then writes tuning/<target>/ (best_params.json, trials.csv, summary.json, plots)
and the study's MLflow run. With --join it only runs trials, writes nothing, and exits when the
study has no trial left to run. See README "Tuning".
"""

from __future__ import annotations

import argparse
import json
import logging

import yaml

from pipeline.config import TRAIN_PARAMS, load_params
from pipeline.tuning.run import tune
from pipeline.tuning.space import FACTORS, resolve_target
from stages._cli import run

# TRAIN_PARAMS through their digest, data/params/train-<lm>.json
PARAMS = ["seed", *TRAIN_PARAMS, "tune.space", "tune.n_trials", "tune.timeout_s",
          "tune.trial", "tune.report_every", "tune.enqueue_default", "tune.enqueue", "tune.diverged_value",
          "tune.sampler", "tune.pruner"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", help="a key of params.yaml tune.targets (the stage's matrix key)")
    for factor in FACTORS:  # values as YAML, as DVC writes them from params.yaml
        ap.add_argument(f"--{factor}", type=yaml.safe_load, help=f"the target's {factor}")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: params tune.workers)")
    ap.add_argument("--join", action="store_true", help="only run trials of the study the stage started")
    args = ap.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        ap.error("--workers must be >= 1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    params = load_params()
    target = resolve_target(args.target, {f: getattr(args, f) for f in FACTORS}, params)
    summary = tune(params.scoped(k.format(lm=target.lm) for k in PARAMS), target, workers=args.workers,
                   join=args.join)
    if summary is not None:
        best = summary["best"]
        print(f"{summary['study']}: best trial {best['trial']}, valid {best['value']:.4f} bits/char, "
              f"{json.dumps(best['params'])}")


if __name__ == "__main__":
    run(main)
