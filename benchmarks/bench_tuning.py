"""Tuning throughput and the study machinery's overhead per trial, on the default target.

    python -m benchmarks.bench_tuning [--workdir benchmarks/results/bench_tuning] [--rounds 3]

In a project folder of its own (params.yaml of this checkout; the corpus downloaded, prepared
and tokenized there once through the real stages, then reused), one run measures:

1. the default study: `tune@<first target>` as the stage runs it (params.yaml's n_trials,
   budget, sampler, pruner, tracking; one worker; a fresh storage) -> trials per minute, of the
   trials alone and of the whole stage (setup, results, plots, MLflow included);
2. the overhead of the study machinery per trial: the same trial params (the target's own
   schedule, trial 0 of the study) run `--rounds` times as a study trial (popped from the
   storage, heartbeat thread, pruning callback and its reports, should_prune, user attrs, tell,
   checkpoint cleanup) and as a bare `train_run` call of the same params, alternating which
   goes first; medians. The bare call runs with the same `report_every` (the same intermediate
   evaluations: the trainer's cost) and, in a second row, without (what pruning points cost
   the trainer). Tracking is off for this part (an MLflow side process per run is noise here).
   As run-to-run noise on a shared machine is larger than the overhead, the study trial also
   times its own train_run call and pruning reports: machinery = trial - train_run + reports.

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=str(ROOT / "benchmarks/results/bench_tuning"))
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")

    from pipeline import paths
    from pipeline.config import load_params
    from pipeline.rnn.run import train_run
    from pipeline.tuning import run as tuning_run
    from pipeline.tuning import space as sp
    from pipeline.tuning import study as study_mod
    from pipeline.tuning.study import Setup, _pop, opened, run_trial
    from stages import download, prepare, tokenize
    from stages.tune import PARAMS

    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    name, t = next(iter(params["tune"]["targets"].items()))
    params["tracking"]["uri"] = f"sqlite:///{work / 'mlflow.db'}"
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("TUNE_STORAGE", None)
    if not paths.split_tokens(t["corpus"], t["lm"], "train").is_file():
        download.main([t["corpus"]])
        prepare.main([t["corpus"]])
        tokenize.main([t["corpus"], t["lm"]])

    loaded = load_params()
    target = sp.resolve_target(name, {}, loaded)
    scoped = loaded.scoped(k.format(lm=target.lm) for k in PARAMS)

    # 1. the default study, as the stage runs it
    for leftover in work.glob("studies.optuna.db*"):
        leftover.unlink()
    shutil.rmtree(paths.CHECKPOINTS, ignore_errors=True)
    t0 = time.perf_counter()
    summary = tuning_run.tune(scoped, target)
    stage_s = time.perf_counter() - t0
    import optuna

    study = optuna.load_study(study_name=summary["study"], storage=f"sqlite:///{work / 'studies.optuna.db'}")
    durations = [tr.duration.total_seconds() for tr in study.trials if tr.duration]
    n = len(durations)

    # 2. overhead: the same params as a study trial and as a bare train_run call
    setup = Setup.build(scoped, target)
    raw = {**setup.raw, "tracking": {**setup.raw["tracking"], "enabled": False}}
    setup = Setup(setup.target, raw, setup.tune.model_copy(update={"n_trials": args.rounds}),
                  f"sqlite:///{work / 'bench-overhead.optuna.db'}", setup.study + "-bench")
    for leftover in work.glob("bench-overhead.optuna.db*"):
        leftover.unlink()
    values = sp.defaults(setup.tune.space, setup.trial_cfg())
    params = sp.trial_params(raw, target, values, setup.tune.trial)
    every = setup.tune.report_every
    times: dict[str, list[float]] = {"trial": [], "bare": [], "bare0": [], "machinery": [], "trainer": []}
    # Inside a study trial, time the train_run call and the pruning callback's reports (storage
    # writes, should_prune): machinery = the trial's wall time - train_run + the reports. A
    # difference of two runs drowns in run-to-run noise (other processes, clocks); this does not.
    inner = {"train_run": 0.0, "reports": 0.0}

    def timed(fn, key):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                inner[key] += time.perf_counter() - t0
        return wrapper

    study_mod.train_run = timed(study_mod.train_run, "train_run")
    study_mod.Pruning._report = timed(study_mod.Pruning._report, "reports")
    with opened(setup, create=True) as (storage, st):
        def as_trial(i: int) -> float:
            st.enqueue_trial(values)
            trial = _pop(st, storage, st.get_trials(states=(optuna.trial.TrialState.WAITING,)))
            inner.update(train_run=0.0, reports=0.0)
            t0 = time.perf_counter()
            run_trial(setup, st, storage, trial, "bench")
            wall = time.perf_counter() - t0
            times["machinery"].append(wall - inner["train_run"] + inner["reports"])
            times["trainer"].append(inner["train_run"] - inner["reports"])
            return wall

        def bare(i: int, report_every) -> float:
            run = f"bench-bare-{i}-{report_every}"
            t0 = time.perf_counter()
            train_run(params, setup.spec(run), progress=False, report_every=report_every)
            dt = time.perf_counter() - t0
            shutil.rmtree(paths.RunDir(run).checkpoint_root, ignore_errors=True)
            return dt

        bare(-1, every)  # warm-up: first-call imports and allocations
        for i in range(args.rounds):
            order = [("trial", lambda: as_trial(i)), ("bare", lambda: bare(i, every)),
                     ("bare0", lambda: bare(i, None))]
            for key, fn in (order if i % 2 == 0 else order[::-1]):
                times[key].append(fn())
    med = {k: statistics.median(v) for k, v in times.items()}

    print(f"\n### Tuning: target {name}, {n} trials (budget {setup.tune.trial}, report_every {every})\n")
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| trials per minute (trial time only) | {60 * n / sum(durations):.1f} |")
    print(f"| trials per minute (whole stage, {stage_s:.1f} s) | {60 * n / stage_s:.1f} |")
    print(f"| median trial | {statistics.median(durations):.2f} s |")
    print(f"| states | {summary['trials']} |")
    print(f"| best vs target's own (valid bits/char, trial budget) | {summary['best']['value']:.4f} vs "
          f"{(summary['default'] or {}).get('value', float('nan')):.4f} |")
    print(f"\n### Overhead per trial, same params, {args.rounds} rounds alternating (medians, tracking off)\n")
    print("| run | seconds | vs bare train_run (same report_every) |")
    print("| --- | --- | --- |")
    print(f"| bare train_run, report_every {every} | {med['bare']:.3f} | 1.000 |")
    print(f"| study trial (storage, heartbeat, reports, pruner, tell) | {med['trial']:.3f} | "
          f"{med['trial'] / med['bare']:.3f} ({100 * (med['trial'] / med['bare'] - 1):+.1f}%) |")
    print(f"| bare train_run, no intermediate evaluations | {med['bare0']:.3f} | {med['bare0'] / med['bare']:.3f} |")
    share = [m / t for m, t in zip(times["machinery"], times["trainer"])]
    print("\n| inside a study trial (timed in the same call) | seconds | share of the trainer's time |")
    print("| --- | --- | --- |")
    print(f"| train_run without the pruning reports | {med['trainer']:.3f} | 1.000 |")
    print(f"| study machinery (pop to tell, heartbeat, reports, cleanup) | {med['machinery']:.3f} | "
          f"{100 * statistics.median(share):.2f}% |")
    print(f"\nraw seconds: {({k: [round(x, 3) for x in v] for k, v in times.items()})}")


if __name__ == "__main__":
    main()
