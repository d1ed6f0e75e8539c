"""What MLflow tracking costs a `dvc repro`: the same sequence of train stages with tracking on
and off.

    python -m benchmarks.bench_tracking [--rounds 3] [--stages 4] [--run shakespeare-word-lstm-0.0-5]

Needs the default pipeline's tokenized data (`make repro` first). Each round runs
`python -m stages.train` for one default grid member `--stages` times in a row, as a repro
runs its stages one after another, in a scratch folder that links data/ (no real output is
touched): once with `tracking.enabled: false` and once with tracking on a fresh sqlite store
(the default), alternating which goes first, with no tracking agent running before the
sequence (the first stage starts one; the others find it). The table shows medians of the
sequence's wall time, CPU time (the stage processes and the agent, which logs its CPU time
when it exits) and the runs' own work (training and scoring, from cost.json), per stage and as
ratios: the growth of a repro's time, and whether tracking slows the training itself. On a busy
machine the CPU ratio is the steadier figure. The stages run as their own processes (without
the fork server), so that their CPU time is this process's children's.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def agent_socket(env: dict) -> Path:
    probe = [sys.executable, "-c", "from pipeline.tracking.agent import socket_path; print(socket_path())"]
    return Path(subprocess.run(probe, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip())


def agent_cpu_seconds(sock: Path) -> float:
    """Wait for the agent of this environment to exit (IDLE_S after its last stage); the CPU
    time it says it used in its last exit line (0 when none ran)."""
    while sock.exists():
        time.sleep(1)
    log = sock.with_suffix(".log")
    exits = [line for line in log.read_text().splitlines() if " exits: " in line] if log.is_file() else []
    return float(exits[-1].split(", ")[-1].split()[0]) if exits else 0.0


def sequence_seconds(scratch: Path, run: str, tracking: bool, n: int) -> tuple[float, float, float]:
    """Wall and CPU seconds of `n` train stages in a row (CPU: the stage processes and, with
    tracking, the agent they share), and the runs' own work in them (`wall_s` + `test_s`)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["tracking"]["enabled"] = tracking
    (scratch / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for d in ("mlflow.db", "mlartifacts"):
        p = scratch / d
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    corpus, lm, cell, dropout, clip = run.split("-")
    argv = [sys.executable, "-m", "stages.train", corpus, run, "--lm", lm, "--cell", cell, "--dropout", dropout,
            "--clip", clip, "--seed", str(params["seed"])]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    sock = agent_socket(env)
    before = agent_cpu_seconds(sock)  # no agent of an earlier sequence still runs
    wall, own, cpu0 = 0.0, 0.0, resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(n):
        for d in ("models", "metrics", "results", "curves", "checkpoints"):
            shutil.rmtree(scratch / d, ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=scratch, env=env, check=True, capture_output=True)
        wall += time.perf_counter() - t0
        cost = yaml.safe_load((scratch / "models" / run / "cost.json").read_text())
        own += cost["wall_s"] + cost["test_s"]
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    if tracking:
        after = agent_cpu_seconds(sock)
        cpu += after if after != before else 0.0
    return wall, cpu, own


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stages", type=int, default=4, help="train stages per sequence")
    ap.add_argument("--run", default="shakespeare-word-lstm-0.0-5")
    args = ap.parse_args()
    if not (ROOT / "data" / "tokens").is_dir():
        sys.exit("no data/tokens: run `make repro` first")
    times: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        (scratch / "data").symlink_to(ROOT / "data")
        for r in range(args.rounds):
            for tracking in ((False, True) if r % 2 == 0 else (True, False)):
                times[tracking].append(sequence_seconds(scratch, args.run, tracking, args.stages))
    (off, off_cpu, off_own), (on, on_cpu, on_own) = (
        [statistics.median(x[i] for x in times[t]) for i in (0, 1, 2)] for t in (False, True))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    print(f"| {args.stages} train stages `{args.run}` in a row (median of {args.rounds}) | wall s | per stage "
          "| CPU s | per stage | runs' own work s | outside it per stage |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, w, c, o in (("tracking off", off, off_cpu, off_own),
                           ("tracking on (fresh sqlite store, one agent)", on, on_cpu, on_own)):
        n = args.stages
        print(f"| {label} | {w:.2f} | {w / n:.2f} | {c:.2f} | {c / n:.2f} | {o:.2f} | {(w - o) / n:.2f} |")
    print(f"| ratio on / off | {on / off:.3f} | | {on_cpu / off_cpu:.3f} | | {on_own / off_own:.3f} | |")


if __name__ == "__main__":
    main()
