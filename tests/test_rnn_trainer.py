"""The training loop: determinism, exact resume after SIGKILL, checkpoint vetting, divergence,
callbacks. Tiny models on CPU; the kill test runs real subprocesses."""

import logging
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.config import TrainConfig
from pipeline.errors import UserError
from pipeline.rnn.model import RNNLM
from pipeline.rnn.trainer import Callback, seed_everything, train
from tests.helpers import ROOT

V, BOS = 17, 0


def _stream(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, V, n)
    ids[rng.random(n) < 0.12] = BOS  # lines, some longer than bptt
    ids[::7] = 3  # a little structure to learn
    return ids


TRAIN, VALID = _stream(1600, 0), _stream(300, 1)


def config(mode: str = "stream", cell: str = "lstm", dropout: float = 0.2, clip: float = 1.0, **over) -> TrainConfig:
    return TrainConfig.model_validate({
        "model": {"cell": cell, "embed_dim": 12, "hidden": 12, "layers": 2, "tie_weights": True, "dropout": dropout},
        "batching": {"mode": mode, "batch_size": 4, "bptt": 10},
        "optim": {"name": "sgd", "lr": 1.0, "momentum": 0.5, "clip": clip},
        "schedule": {"kind": "exponential", "rate": 0.5, "start_epoch": 1},
        "epochs": 3, "device": "cpu", "threads": 1, **over,
    })


def evaluate(model: RNNLM) -> dict:
    x = torch.as_tensor(np.concatenate([[BOS], VALID[:-1]]))[None]
    logits, _ = model(x)
    return {"nll_nats": F.cross_entropy(logits[0], torch.as_tensor(VALID), reduction="sum"), "n_tokens": len(VALID)}


def run(run_dir, cfg, *, seed=0, params_hash="h", callbacks=()):
    seed_everything(seed)
    model = RNNLM(V, cfg.model)
    result = train(model, TRAIN, cfg, seed=seed, newline_id=BOS, ckpt_dir=Path(run_dir) / "checkpoints",
                   params_hash=params_hash, evaluate=evaluate, callbacks=callbacks,
                   progress=False)
    return result, model


def stable(records):
    """Records without the timing fields."""
    return [{k: v for k, v in r.items() if k not in ("tokens_per_s", "wall_s")} for r in records]


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _cursor(name: str) -> tuple[int, int]:
    epoch, batch = re.fullmatch(r"ckpt-(\d+)-(\d+)\.pt", name).groups()
    return int(epoch), int(batch)


def ckpts(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "checkpoints").glob("ckpt-*.pt"))


@pytest.mark.parametrize("mode", ["stream", "sentences"])
def test_same_seed_same_bits(tmp_path, mode):
    a, ma = run(tmp_path / "a", config(mode))
    b, mb = run(tmp_path / "b", config(mode))
    c, _ = run(tmp_path / "c", config(mode), seed=1)
    assert a.epochs == 3 and not a.diverged and not a.stopped_early
    assert stable(a.records) == stable(b.records) != stable(c.records)
    assert same_state(ma.state_dict(), mb.state_dict()) and same_state(a.best_state, ma.state_dict())
    r = a.records[-1]
    assert r["train_loss"] < np.log(V) and r["valid_loss"] == r["valid_nll_nats"] / r["valid_n_tokens"]
    assert [r["lr"] for r in a.records] == [1.0, 1.0, 0.5]
    assert r["grad_norm_max"] >= r["grad_norm"] > 0 and r["tokens_per_s"] > 0
    assert ckpts(tmp_path / "a") == ["ckpt-2-0.pt", "ckpt-3-0.pt"]


def test_finished_run_returns_its_result_without_training(tmp_path):
    first, _ = run(tmp_path, config())
    stamp = (tmp_path / "checkpoints" / "ckpt-3-0.pt").stat().st_mtime_ns
    watcher = Stop(at=99, seen=[])
    again, model = run(tmp_path, config(), callbacks=[watcher])
    assert again.records == first.records and same_state(again.best_state, first.best_state)
    assert (again.epochs, again.wall_s, again.tokens_per_s) == (first.epochs, first.wall_s, first.tokens_per_s)
    assert watcher.seen == [] and (tmp_path / "checkpoints" / "ckpt-3-0.pt").stat().st_mtime_ns == stamp
    assert same_state(model.state_dict(), first.best_state)  # the model comes back holding the best state


def test_other_params_hash_is_refused(tmp_path):
    run(tmp_path, config(epochs=1))
    with pytest.raises(UserError, match=r"ckpt-1-0\.pt.*other params.*delete"):
        run(tmp_path, config(epochs=1), params_hash="other")


def test_truncated_newest_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    first, _ = run(tmp_path, config())
    newest = tmp_path / "checkpoints" / "ckpt-3-0.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with caplog.at_level(logging.INFO):
        again, _ = run(tmp_path, config())  # resumes from ckpt-2-0 and trains epoch 3 again
    assert "ckpt-3-0.pt: unreadable checkpoint" in caplog.text
    assert re.search(r"resuming from \S*ckpt-2-0\.pt", caplog.text), caplog.text
    assert stable(again.records) == stable(first.records) and same_state(again.best_state, first.best_state)


class Stop(Callback):
    """Records what it sees; asks to stop at epoch `at`."""

    def __init__(self, at: int, seen: list):
        self.at, self.seen = at, seen

    def on_epoch_end(self, record: dict) -> bool:
        self.seen.append(record["epoch"])
        return record["epoch"] == self.at


def test_a_callback_stops_training_and_every_callback_sees_every_epoch(tmp_path):
    stopper, watcher = Stop(at=2, seen=[]), Stop(at=99, seen=[])
    result, _ = run(tmp_path, config(epochs=5), callbacks=[stopper, watcher])
    assert result.stopped_early and not result.diverged
    assert result.epochs == 2 and stopper.seen == watcher.seen == [1, 2]


def test_a_huge_lr_diverges_as_a_result(tmp_path):
    cfg = config(cell="rnn_relu", clip=0.0, optim={"name": "sgd", "lr": 1e12}, schedule={"kind": "constant"})
    result, _ = run(tmp_path, cfg)
    assert result.diverged and result.diverged_epoch == 1 and result.records == [] and result.best_state is None


@pytest.mark.parametrize("margin, diverged", [(1e-6, True), (-1e-6, False)])
def test_a_finite_loss_past_the_limit_is_divergence(tmp_path, margin, diverged):
    """10 ln V + 10 nats per token: a finite valid loss just above it diverges, just below does not."""
    limit = 10 * np.log(V) + 10

    def at_limit(model):
        return {"nll_nats": (limit + margin) * 1000, "n_tokens": 1000}

    seed_everything(0)
    cfg = config(epochs=2)
    result = train(RNNLM(V, cfg.model), TRAIN, cfg, seed=0, newline_id=BOS, ckpt_dir=tmp_path, params_hash="h",
                   evaluate=at_limit, progress=False)
    assert result.diverged is diverged and result.epochs == (1 if diverged else 2)
    assert result.diverged_epoch == (1 if diverged else None)
    assert (result.best_state is None) is diverged  # a diverged epoch is never the best state


def test_divergence_in_a_later_epoch_keeps_the_best_state(tmp_path):
    class Poison(Callback):  # NaN weights after epoch 1: epoch 2's training must notice
        def on_epoch_end(self, record):
            with torch.no_grad():
                model.head.bias.fill_(float("nan"))

    cfg = config(cell="gru", dropout=0.0)
    seed_everything(0)
    model = RNNLM(V, cfg.model)
    result = train(model, TRAIN, cfg, seed=0, newline_id=BOS, ckpt_dir=tmp_path / "checkpoints", params_hash="h",
                   evaluate=evaluate, callbacks=[Poison()], progress=False)
    assert result.diverged and result.diverged_epoch == 2 and result.epochs == 1
    assert result.best_epoch == 1 and torch.isfinite(model.head.bias).all()
    assert ckpts(tmp_path)[-1].startswith("ckpt-1-")  # the final checkpoint, inside epoch 2


# ----------------------------------------------------------------------------- SIGKILL and resume


def child_main(run_dir: str, mode: str) -> None:
    """Run in a subprocess: train to completion (resuming if possible) with a checkpoint after
    about every batch, and save what to compare. Logs (the checkpoint resumed from) to stderr."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result, _ = run(Path(run_dir), config(mode, checkpoint_minutes=1e-5))
    torch.save({"records": stable(result.records), "best": result.best_state}, Path(run_dir) / "out.pt")


def _child(run_dir: Path, mode: str, **kw) -> subprocess.Popen:
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); import test_rnn_trainer as t; "
            f"t.child_main({str(run_dir)!r}, {mode!r})")
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, **kw)


@pytest.mark.parametrize("mode", ["stream", "sentences"])
def test_resume_after_sigkill_mid_epoch_is_exact(tmp_path, mode):
    killed = tmp_path / "killed"
    victim = _child(killed, mode)
    mid_epoch = re.compile(r"ckpt-[12]-[1-9]\d*\.pt")  # inside epoch 2 or 3

    def cut_mid_epoch() -> bool:
        return (killed / "checkpoints").is_dir() and any(map(mid_epoch.fullmatch, ckpts(killed)))

    deadline = time.monotonic() + 60
    while not cut_mid_epoch():
        assert victim.poll() is None and time.monotonic() < deadline, "no mid-epoch checkpoint appeared"
        time.sleep(0.002)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    assert cut_mid_epoch(), ckpts(killed)  # the run really was cut inside an epoch, after the first
    newest = max(ckpts(killed), key=_cursor)

    second = _child(killed, mode, stderr=subprocess.PIPE, text=True)
    _, log = second.communicate()
    assert second.returncode == 0, log
    # it resumed mid-epoch from the newest checkpoint: not a restart that happens to agree
    assert re.search(rf"resuming from \S*{re.escape(newest)}", log) and mid_epoch.fullmatch(newest), (newest, log)
    resumed = torch.load(killed / "out.pt", weights_only=True)
    reference, _ = run(tmp_path / "ref", config(mode))  # uninterrupted, checkpoints only at epoch ends
    assert resumed["records"] == stable(reference.records) and len(reference.records) == 3
    assert same_state(resumed["best"], reference.best_state)
    # the final checkpoints agree on everything that determines further training
    fa, fb = (torch.load(d / "checkpoints" / "ckpt-3-0.pt", weights_only=True) for d in (tmp_path / "ref", killed))
    assert same_state(fa["model"], fb["model"])
    assert str(fa["optimizer"]) == str(fb["optimizer"]) and torch.equal(fa["rng"][0]["torch"], fb["rng"][0]["torch"])
    assert not list((killed / "checkpoints").glob(".ckpt-*.tmp"))


class Prune(Callback):
    """Stops at the first intermediate valid point past `at` epochs; records every point."""

    def __init__(self, at: float):
        self.at, self.points = at, []

    def on_valid(self, point: dict) -> bool:
        self.points.append(point)
        return point["epoch"] >= self.at


def test_intermediate_valid_points_change_nothing_and_can_stop_the_run(tmp_path):
    plain, _ = run(tmp_path / "plain", config())
    watcher = Prune(at=99)
    seed_everything(0)
    cfg = config()
    model = RNNLM(V, cfg.model)
    watched = train(model, TRAIN, cfg, seed=0, newline_id=BOS, ckpt_dir=tmp_path / "watched", params_hash="h",
                    evaluate=evaluate, callbacks=[watcher], report_every=0.25, progress=False)
    assert stable(watched.records) == stable(plain.records)  # evaluating draws no random numbers
    epochs = [p["epoch"] for p in watcher.points]
    assert len(epochs) == 3 * 3 and all(0 < e % 1 < 1 for e in epochs)  # 3 per epoch, none at an epoch end
    assert all(p["valid_n_tokens"] == len(VALID) for p in watcher.points)

    pruner = Prune(at=1.0)  # the first point inside epoch 2
    seed_everything(0)
    pruned = train(RNNLM(V, cfg.model), TRAIN, cfg, seed=0, newline_id=BOS, ckpt_dir=tmp_path / "pruned",
                   params_hash="h", evaluate=evaluate, callbacks=[pruner], report_every=0.25, progress=False)
    assert pruned.stopped_early and pruned.epochs == 1 and 1 < pruner.points[-1]["epoch"] < 2


def test_a_run_imports_neither_torch_dynamo_nor_sympy(tmp_path):
    """2.7 s of every train stage's fixed cost, spared: torch.optim imports torch._dynamo (hence
    pipeline/rnn/optim.py), and normal_ on the meta device, where n_params counts, imports sympy.
    A run of the trainer and a size count, in a process of their own."""
    code = ("import sys\n"
            "from pipeline.config import ModelConfig\n"
            "from pipeline.rnn.model import n_params\n"
            "from tests.test_rnn_trainer import config, run\n"
            "n_params(1000, ModelConfig(hidden=32))\n"
            f"run({str(tmp_path)!r}, config(optim={{'name': 'adam', 'lr': 0.01, 'clip': 1.0}}, epochs=2))\n"
            "print(sorted({'torch._dynamo', 'sympy'} & set(sys.modules)))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
