"""What MLflow tracking costs a `dvc repro`: the same sequence of train stages with tracking on
and off.

    python -m benchmarks.bench_tracking [--rounds 3] [--stages 4] [--run shakespeare-word-lstm-0.0-5]

Needs the default pipeline's tokenized data (`make repro` first). Each round runs
`python -m stages.train` for one default grid member `--stages` times in a row, as a repro
runs its stages one after another, in a scratch folder that links data/ (no real output is
touched): once with `tracking.enabled: false` and once with tracking on a fresh sqlite store
(the default), alternating which goes first, with no tracking agent running before the
sequence (the first stage starts one; the others find it). The table shows medians of the
sequence's wall time, the cost per stage and the ratio, the growth of a repro's wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]



def wait_for_no_agent(env: dict) -> None:
    """Until the agent of this environment has exited (it does so IDLE_S after its last stage)."""
    probe = [sys.executable, "-c", "from pipeline.tracking.agent import socket_path; print(socket_path())"]
    sock = Path(subprocess.run(probe, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip())
    while sock.exists():
        time.sleep(1)


def sequence_seconds(scratch: Path, run: str, tracking: bool, n: int) -> float:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["tracking"]["enabled"] = tracking
    (scratch / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for d in ("mlflow.db", "mlartifacts"):
        p = scratch / d
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    corpus, lm, cell, dropout, clip = run.split("-")
    argv = [sys.executable, "-m", "stages.train", corpus, run, "--lm", lm, "--cell", cell, "--dropout", dropout,
            "--clip", clip]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    wait_for_no_agent(env)
    total = 0.0
    for _ in range(n):
        for d in ("models", "metrics", "results", "curves", "checkpoints"):
            shutil.rmtree(scratch / d, ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=scratch, env=env, check=True, capture_output=True)
        total += time.perf_counter() - t0
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stages", type=int, default=4, help="train stages per sequence")
    ap.add_argument("--run", default="shakespeare-word-lstm-0.0-5")
    args = ap.parse_args()
    if not (ROOT / "data" / "tokens").is_dir():
        sys.exit("no data/tokens: run `make repro` first")
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        (scratch / "data").symlink_to(ROOT / "data")
        for r in range(args.rounds):
            for tracking in ((False, True) if r % 2 == 0 else (True, False)):
                times[tracking].append(sequence_seconds(scratch, args.run, tracking, args.stages))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"| {args.stages} train stages `{args.run}` in a row | wall s (median of {args.rounds}) | per stage |")
    print("| --- | ---: | ---: |")
    print(f"| tracking off | {off:.2f} | {off / args.stages:.2f} |")
    print(f"| tracking on (fresh sqlite store, one agent) | {on:.2f} | {on / args.stages:.2f} |")
    print(f"| ratio on / off | {on / off:.3f} | |")


if __name__ == "__main__":
    main()
