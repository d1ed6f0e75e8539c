"""Trainer throughput vs a bare PyTorch loop of the same model and batch shape.

    python -m benchmarks.bench_trainer [--batches 30] [--rounds 5] [--threads 2] [--device cpu]

The bare loop is what one writes by hand (PyTorch word_language_model): embedding, 2-layer
nn.LSTM, dropout, linear, mean cross-entropy, clip_grad_norm_, SGD, the state carried and
detached between bptt windows. `train()` runs the same shapes on synthetic random ids for
exactly --batches batches (one epoch, a trivial evaluate, no checkpoint before the epoch ends).
Both run in this process, alternating which goes first; each is warmed up first; the table
shows medians over rounds. "trainer (epoch)" is the trainer's own per-epoch tokens/s
(training only); "trainer (call)" divides by the wall time of the whole train() call (setup,
evaluation and the epoch-end checkpoint included). `train()` turns on deterministic kernels
for the process (`train.deterministic`, the default), and the bare loop then runs with them
too: both sides use the same kernels.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pipeline.config import TrainConfig
from pipeline.rnn.model import RNNLM
from pipeline.rnn.trainer import train

CASES = {
    "word-LSTM": dict(vocab=10000, embed=200, hidden=200, bptt=35, batch=20, dropout=0.5, clip=5.0),
    "char-LSTM": dict(vocab=65, embed=256, hidden=256, bptt=100, batch=32, dropout=0.2, clip=1.0),
}


class BareLSTM(nn.Module):
    def __init__(self, vocab, embed, hidden, dropout):
        super().__init__()
        self.emb, self.drop = nn.Embedding(vocab, embed), nn.Dropout(dropout)
        self.lstm = nn.LSTM(embed, hidden, num_layers=2, dropout=dropout, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x, h):
        o, h = self.lstm(self.drop(self.emb(x)), h)
        return self.out(self.drop(o)), h


def bare_tokens_per_s(c: dict, n_batches: int, warmup: int, device: torch.device) -> float:
    model = BareLSTM(c["vocab"], c["embed"], c["hidden"], c["dropout"]).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    data = torch.randint(0, c["vocab"], (c["batch"], c["bptt"] * (n_batches + warmup) + 1), device=device)
    h = None
    for k in range(warmup + n_batches):
        if k == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        x, y = data[:, k * c["bptt"] : (k + 1) * c["bptt"]], data[:, k * c["bptt"] + 1 : (k + 1) * c["bptt"] + 1]
        h = None if h is None else tuple(t.detach() for t in h)
        logits, h = model(x, h)
        loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), c["clip"])
        opt.step()
    loss.item()  # wait for the device
    return n_batches * c["batch"] * c["bptt"] / (time.perf_counter() - t0)


def trainer_tokens_per_s(c: dict, n_batches: int, device: torch.device, threads: int) -> tuple[float, float]:
    cfg = TrainConfig.model_validate({
        "model": {"cell": "lstm", "embed_dim": c["embed"], "hidden": c["hidden"], "layers": 2,
                  "dropout": c["dropout"]},
        "batching": {"mode": "stream", "batch_size": c["batch"], "bptt": c["bptt"]},
        "optim": {"name": "sgd", "lr": 1.0, "clip": c["clip"]},
        "schedule": {"kind": "constant"},
        "epochs": 1, "device": device.type, "threads": threads, "checkpoint_minutes": 1e6,
        "max_train_tokens": n_batches * c["batch"] * c["bptt"],  # exactly n_batches windows
    })
    ids = np.random.default_rng(0).integers(0, c["vocab"], cfg.max_train_tokens)
    model = RNNLM(c["vocab"], cfg.model)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        result = train(model, ids, cfg, seed=0, newline_id=0, ckpt_dir=Path(d), params_hash="bench",
                       evaluate=lambda m: {"nll_nats": 1.0, "n_tokens": 1}, progress=False, device=device)
        call_s = time.perf_counter() - t0
    assert not result.diverged
    return result.records[0]["tokens_per_s"], cfg.max_train_tokens / call_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    rows = []
    for name, c in CASES.items():
        trainer_tokens_per_s(c, args.warmup, device, args.threads)  # warm up the trainer path
        bare, epoch, call = [], [], []

        def run_bare():
            bare.append(bare_tokens_per_s(c, args.batches, args.warmup, device))

        def run_trainer():
            e, k = trainer_tokens_per_s(c, args.batches, device, args.threads)
            epoch.append(e)
            call.append(k)

        for r in range(args.rounds):  # alternate who goes first
            for go in (run_trainer, run_bare) if r % 2 == 0 else (run_bare, run_trainer):
                go()
        b, e, k = (statistics.median(v) for v in (bare, epoch, call))
        rows.append(f"| {name} | {c['vocab']} | {c['hidden']} | {c['batch']}x{c['bptt']} | {b:,.0f} | "
                    f"{e:,.0f} | {e / b:.3f} | {k:,.0f} | {k / b:.3f} |")
    print(f"device {device}, {args.threads} threads, {args.batches} timed batches, median of {args.rounds} rounds\n")
    print("| model | vocab | hidden | batch x bptt | bare tok/s | trainer (epoch) tok/s | ratio "
          "| trainer (call) tok/s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
