"""What MLflow tracking costs a train stage: the same stage process with tracking on and off.

    python -m benchmarks.bench_tracking [--rounds 3] [--run shakespeare-word-lstm-0.0-5]

Needs the default pipeline's tokenized data (`make repro` first). Each round runs
`python -m stages.train` for one default grid member in a scratch folder that links data/
(so no real output is touched), once with `tracking.enabled: false` and once with tracking on
a fresh sqlite store (the default), alternating which goes first; the table shows medians of
the stage's wall time and the ratio. Tracking runs in a side process (pipeline/tracking), so
the ratio is mostly the cost of starting it on a busy 2-core machine.
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


def stage_seconds(scratch: Path, run: str, tracking: bool) -> float:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["tracking"]["enabled"] = tracking
    (scratch / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for d in ("models", "metrics", "curves", "checkpoints", "mlflow.db", "mlartifacts"):
        p = scratch / d
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    corpus, lm, cell, dropout, clip = run.split("-")
    argv = [sys.executable, "-m", "stages.train", corpus, run, "--lm", lm, "--cell", cell, "--dropout", dropout,
            "--clip", clip]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=scratch, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
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
                times[tracking].append(stage_seconds(scratch, args.run, tracking))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"| train stage `{args.run}` | wall s (median of {args.rounds}) |")
    print("| --- | ---: |")
    print(f"| tracking off | {off:.2f} |")
    print(f"| tracking on (fresh sqlite store) | {on:.2f} |")
    print(f"| ratio on / off | {on / off:.3f} |")


if __name__ == "__main__":
    main()
