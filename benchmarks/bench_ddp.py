"""DDP throughput: the trainer on 2 gloo CPU ranks against 1 process, at the same global batch;
and, where CUDA is, single-GPU DDP (torchrun, NCCL, a world of one) against plain training.

    python -m benchmarks.bench_ddp [--batches 40] [--rounds 3] [--case word-LSTM]

Every measurement is one `train()` epoch of --batches batches on synthetic ids (a trivial
evaluate, no checkpoint before the epoch's end), in a fresh process: plain `python` for one
process, `torch.distributed.run` for ranks. The figure is the trainer's own epoch tokens/s
(global tokens per training second, evaluation and checkpoints excluded). Rounds alternate the
order of the setups; the table shows medians and each setup's ratio to the first, all measured
in this run. torchrun gives each of several ranks one thread (OMP_NUM_THREADS=1), so the CPU
rows show one process with 1 and with 2 threads beside 2 ranks of 1 thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from pipeline.config import TrainConfig
from pipeline.rnn import distributed
from pipeline.rnn.model import RNNLM
from pipeline.rnn.trainer import seed_everything, train

CASES = {
    "word-LSTM": dict(vocab=10000, embed=200, hidden=200, bptt=35, batch=20, dropout=0.5, clip=5.0),
    "char-LSTM": dict(vocab=65, embed=256, hidden=256, bptt=100, batch=32, dropout=0.2, clip=1.0),
}
MARK = "BENCH "  # the worker's result line


def worker(case: str, n_batches: int, device: str, threads: int | None) -> None:
    """One epoch of `train()` in this process (a rank, under torchrun); rank 0 prints tokens/s."""
    c = CASES[case]
    cfg = TrainConfig.model_validate({
        "model": {"cell": "lstm", "embed_dim": c["embed"], "hidden": c["hidden"], "layers": 2, "dropout": c["dropout"]},
        "batching": {"mode": "stream", "batch_size": c["batch"], "bptt": c["bptt"]},
        "optim": {"name": "sgd", "lr": 1.0, "clip": c["clip"]},
        "schedule": {"kind": "constant"}, "epochs": 1, "device": device, "threads": threads,
        "checkpoint_minutes": 60.0,
    })
    ids = np.random.default_rng(0).integers(0, c["vocab"], c["batch"] * c["bptt"] * n_batches + 1)
    with distributed.joined(device) as group, tempfile.TemporaryDirectory() as tmp:
        seed_everything(0)
        result = train(RNNLM(c["vocab"], cfg.model), ids, cfg, seed=0, newline_id=0, ckpt_dir=Path(tmp),
                       params_hash="bench", evaluate=lambda m: {"nll_nats": 1.0, "n_tokens": 1}, progress=False)
        if group.writer:
            print(MARK + json.dumps({"tokens_per_s": result.records[0]["tokens_per_s"], "world": group.world}),
                  flush=True)


def measure(setup: dict, case: str, n_batches: int) -> float:
    args = ["-m", "benchmarks.bench_ddp", "--worker", "--case", case, "--batches", str(n_batches),
            "--device", setup["device"]] + (["--threads", str(setup["threads"])] if setup.get("threads") else [])
    if setup["ranks"]:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={setup['ranks']}",
               *args]
    else:
        cmd = [sys.executable, *args]
    env = {**os.environ, **distributed.FRESH_STORE}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[1])
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(MARK)]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{setup['name']} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[0].removeprefix(MARK))["tokens_per_s"]


def compare(title: str, setups: list[dict], case: str, n_batches: int, rounds: int) -> None:
    got: dict[str, list[float]] = {s["name"]: [] for s in setups}
    for r in range(rounds):
        for s in setups if r % 2 == 0 else setups[::-1]:
            got[s["name"]].append(measure(s, case, n_batches))
    base = statistics.median(got[setups[0]["name"]])
    print(f"\n{title} ({case}, {n_batches} batches, medians of {rounds} rounds)\n")
    print("| setup | tokens/s | ratio | rounds |\n| --- | ---: | ---: | --- |")
    for s in setups:
        med = statistics.median(got[s["name"]])
        print(f"| {s['name']} | {med:.0f} | {med / base:.3f} | {', '.join(f'{v:.0f}' for v in got[s['name']])} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=sorted(CASES), default="word-LSTM")
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.case, args.batches, args.device, args.threads)
        return
    compare("CPU: 2 gloo ranks against 1 process, global batch the same", [
        {"name": "1 process, 1 thread", "device": "cpu", "ranks": 0, "threads": 1},
        {"name": "1 process, 2 threads", "device": "cpu", "ranks": 0, "threads": 2},
        {"name": "2 ranks (gloo) x 1 thread", "device": "cpu", "ranks": 2},
    ], args.case, args.batches, args.rounds)
    if not torch.cuda.is_available():
        print("\nGPU: skipped, no CUDA device here (single-GPU DDP against plain training needs one)")
        return
    compare("GPU: single-GPU DDP (torchrun, NCCL, world 1) against plain training", [
        {"name": "plain, 1 GPU", "device": "cuda", "ranks": 0},
        {"name": "DDP world 1, 1 GPU", "device": "cuda", "ranks": 1},
    ], args.case, args.batches * 5, args.rounds)


if __name__ == "__main__":
    main()
