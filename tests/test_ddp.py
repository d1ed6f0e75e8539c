"""Data-parallel training (DDP) under real torchrun, 2 gloo ranks on CPU.

- 2 ranks x batch B follow 1 process x batch 2B step by step (the loss of every step within
  1e-5 relative; dropout 0: each rank draws its own masks), in both batching modes; sharded
  evaluation gives the one-process sums bit for bit; checkpoints resume across world sizes.
- the train stage with train.distributed.nproc 2 starts torchrun itself; one rank SIGKILLed
  mid-epoch, torchrun --max-restarts restarts the group from the last checkpoint, and the run
  ends with the numbers of one uninterrupted process: one result and metrics file, one MLflow run.

The 2-rank side runs in this file's `worker` (python -m torch.distributed.run ... -m tests.test_ddp).
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.config import DistributedConfig, Params, TrainConfig, load_params, parse_params
from pipeline.errors import Interrupted, UserError
from pipeline.io import read_json
from pipeline.rnn import distributed, trainer
from pipeline.rnn.batching import IGNORE, make_batches
from pipeline.rnn.distributed import Group
from pipeline.rnn.model import RNNLM
from pipeline.rnn.run import RunSpec, params_hash, train_run
from pipeline.rnn.scorer import sequence_nll
from pipeline.rnn.trainer import Callback, seed_everything, train
from tests.helpers import ROOT, prepared_project, repo_params, toy_corpus_params

V, BOS = 17, 0
CPU = torch.device("cpu")
RTOL = 1e-5


def _stream(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, V, n)
    ids[rng.random(n) < 0.12] = BOS  # lines, some longer than bptt
    ids[::7] = 3
    return ids


TRAIN, VALID = _stream(1000, 0), _stream(300, 1)
SEGMENTS = [s for s in np.split(VALID, np.flatnonzero(VALID == BOS) + 1) if len(s)]  # lines, each with its bos


def config(mode: str, batch_size: int = 4, **over) -> TrainConfig:
    return TrainConfig.model_validate({
        "model": {"cell": "lstm", "embed_dim": 12, "hidden": 12, "layers": 2, "tie_weights": True, "dropout": 0.0},
        "batching": {"mode": mode, "batch_size": batch_size, "bptt": 10},
        "optim": {"name": "sgd", "lr": 1.0, "momentum": 0.5, "clip": 0.5},  # clip: it acts on most steps
        "schedule": {"kind": "exponential", "rate": 0.5, "start_epoch": 1},
        "epochs": 2, "device": "cpu", "threads": 1, **over,
    })


def evaluate(model: RNNLM) -> dict:
    """Valid scores through the one scoring loop (sharded under DDP: a collective in training)."""
    nll = sequence_nll(model, SEGMENTS, BOS, batch_size=2, bptt=8, device=CPU)
    return {"nll_nats": float(nll.sum()), "n_tokens": int(sum(map(len, SEGMENTS)))}


class Steps(Callback):
    """Every read of the running sums (SYNC_S = 0: after every batch) and what it said."""

    def __init__(self, signal_at: int | None = None):
        self.points, self.signal_at = [], signal_at

    def on_sync(self, point: dict) -> None:
        self.points.append((point["step"], point["train_loss"]))
        if point["step"] == self.signal_at:  # this rank alone is told to stop
            os.kill(os.getpid(), signal.SIGTERM)


def fit(ckpt_dir: Path, cfg: TrainConfig, signal_at: int | None = None) -> dict:
    """Train a fresh net; with trainer.SYNC_S = 0 the loop reads its sums after every batch."""
    steps = Steps(signal_at)
    seed_everything(0)
    model = RNNLM(V, cfg.model)
    result = train(model, TRAIN, cfg, seed=0, newline_id=BOS, ckpt_dir=ckpt_dir, params_hash="h", evaluate=evaluate,
                   callbacks=[steps], progress=False)
    records = [{k: v for k, v in r.items() if k not in ("tokens_per_s", "wall_s")} for r in result.records]
    return {"points": steps.points, "records": records, "best": result.best_state}


def worker(out: str) -> None:
    """Under torchrun: the 2-rank side of the tests below; rank 0 saves what they compare."""
    out_dir = Path(out)
    trainer.SYNC_S = 0.0  # the whole trajectory
    with distributed.joined("cpu") as group:
        assert group.world == 2
        got = {mode: fit(out_dir / f"2x-{mode}", config(mode)) for mode in ("stream", "sentences")}
        seed_everything(1)
        got["nll"] = sequence_nll(RNNLM(V, config("stream").model), SEGMENTS, BOS, batch_size=2, bptt=8, device=CPU)
        try:  # rank 1 gets SIGTERM mid-epoch 2: both ranks checkpoint and stop
            fit(out_dir / "cut-2", config("stream"), signal_at=45 if group.rank == 1 else None)
            raise AssertionError("not interrupted")
        except Interrupted as e:
            got["cut"] = (e.signum, e.kept)
        got["from-1"] = fit(out_dir / "cut-1", config("stream"))  # a 1-process checkpoint, resumed here
        if group.writer:
            torch.save(got, out_dir / "got.pt")


def torchrun(*argv: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", *argv]


def close(a: dict, b: dict) -> None:
    """Records of two runs within RTOL (integers equal)."""
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], float):
            assert a[k] == pytest.approx(b[k], rel=RTOL), k
        else:
            assert a[k] == b[k], k


def same_run(got: dict, ref: dict, trajectory: bool = True) -> None:
    if trajectory:
        steps, losses = zip(*got["points"])
        assert list(steps) == [s for s, _ in ref["points"]] and len(steps) > 40
        np.testing.assert_allclose(losses, [v for _, v in ref["points"]], rtol=RTOL)
    assert len(got["records"]) == len(ref["records"]) == 2
    for a, b in zip(got["records"], ref["records"]):
        close(a, b)
    for k, w in got["best"].items():
        torch.testing.assert_close(w, ref["best"][k], rtol=RTOL, atol=RTOL)


def test_two_ranks_follow_one_process_with_the_global_batch_and_resume_across_world_sizes(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer, "SYNC_S", 0.0)  # the whole trajectory
    # a 1-process checkpoint inside epoch 2 for the ranks to resume (the signal is this process')
    with pytest.raises(Interrupted):
        fit(tmp_path / "cut-1", config("stream"), signal_at=45)
    assert any(re.fullmatch(r"ckpt-1-[1-9]\d*\.pt", p.name) for p in (tmp_path / "cut-1").iterdir())
    proc = subprocess.run(torchrun("-m", "tests.test_ddp", str(tmp_path)), cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    got = torch.load(tmp_path / "got.pt", weights_only=False)

    for mode in ("stream", "sentences"):
        same_run(got[mode], fit(tmp_path / f"1x-{mode}", config(mode)))
    # the sentences epoch ends in a batch of fewer chunks than ranks x 2: rank 1 had a padding row
    sentences = make_batches(TRAIN, config("sentences").batching, max_tokens=None, newline_id=BOS, seed=0,
                             device=CPU)
    assert len(sentences.lens) % 4 in (1, 2)

    seed_everything(1)  # the same net, scored by one process: the same sums, bit for bit
    assert np.array_equal(got["nll"], sequence_nll(RNNLM(V, config("stream").model), SEGMENTS, BOS, 2, 8, CPU))

    reference = fit(tmp_path / "whole", config("stream"))
    signum, kept = got["cut"]
    assert signum == signal.SIGTERM and re.search(r"ckpt-1-[1-9]\d*\.pt$", kept), kept
    same_run(fit(tmp_path / "cut-2", config("stream")), reference, trajectory=False)  # 2 ranks -> 1 process
    same_run(got["from-1"], reference, trajectory=False)  # 1 process -> 2 ranks


# ----------------------------------------------------------------------------- shards, params


def pairs(batch) -> list[tuple[int, int]]:
    """(input, target) of the real positions of a batch."""
    real = batch.y != IGNORE
    return list(zip(batch.x[real].tolist(), batch.y[real].tolist()))


def test_ranks_hold_their_rows_of_the_global_batch():
    ids = _stream(350, 2)  # sentences: 57 chunks, so the last batch of 6 has 3: rank 2 gets none
    for mode in ("stream", "sentences"):
        cfg = config(mode, batch_size=6).batching
        whole = list(make_batches(ids, cfg, max_tokens=None, newline_id=BOS, seed=0, device=CPU).epoch(0))
        shards = [list(make_batches(ids, cfg, max_tokens=None, newline_id=BOS, seed=0, device=CPU,
                                    rows=Group(rank=r, world=3).rows(6)).epoch(0)) for r in range(3)]
        for k, batch in enumerate(whole):
            parts = [s[k] for s in shards]
            assert all(p.n_tokens == batch.n_tokens for p in parts)  # the global batch's count
            if mode == "stream":  # rows [2r, 2r + 2) of the one-process layout
                assert torch.equal(torch.cat([p.x for p in parts]), batch.x)
                assert torch.equal(torch.cat([p.y for p in parts]), batch.y)
            else:  # the same chunks, each rank its share (padding rows hold no target)
                assert sorted(pair for p in parts for pair in pairs(p)) == sorted(pairs(batch))
        if mode == "sentences":
            last = shards[2][-1]  # one padding row: it joins the all-reduce and adds nothing
            assert last.x.shape == (1, 1) and last.y.tolist() == [[IGNORE]] and last.n_tokens == whole[-1].n_tokens
    with pytest.raises(UserError, match=r"batching\.batch_size 6 is the global batch .* the 4 ranks"):
        Group(rank=0, world=4).rows(6)


def test_nproc_is_a_params_switch_that_the_checkpoint_hash_ignores(tmp_path):
    raw = repo_params()
    raw["train"]["distributed"] = {"nproc": 2, "max_restarts": 1}
    params = Params.model_validate(raw)
    spec = RunSpec("r", "shakespeare", "word", "lstm", 0.0, 5, seed=raw["seed"])
    assert params.train_for("word").distributed == DistributedConfig(nproc=2, max_restarts=1)
    assert params_hash(params, spec) == params_hash(Params.model_validate(repo_params()), spec)
    raw["train"]["distributed"]["nproc"] = 3
    with pytest.raises(UserError, match=r"^params\.yaml: train\.distributed: nproc 3 does not divide "
                                        r"batching\.batch_size 32, the global batch"):
        parse_params(raw)


def test_the_stage_starts_torchrun_only_when_asked_and_not_under_torchrun(monkeypatch):
    argv = ["toy", "run", "--lm", "word"]
    assert distributed.torchrun_argv(DistributedConfig(), "stages.train", argv) is None
    cmd = distributed.torchrun_argv(DistributedConfig(nproc=4, max_restarts=2), "stages.train", argv)
    assert cmd == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4",
                   "--max-restarts=2", "-m", "stages.train", *argv]
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert distributed.torchrun_argv(DistributedConfig(nproc=4), "stages.train", argv) is None


# ----------------------------------------------------------------------------- the train stage

WORDS = "thou art the king and i the fool who sings of rome while lords and ladies dance".split()
RUN = "ddp-word"  # a name no other test of the session gives its MLflow run


@pytest.fixture
def project(tmp_path, monkeypatch):
    params = toy_corpus_params(tmp_path, WORDS, n_scenes=20)
    params["train"].update(epochs=2, max_train_tokens=None, samples=1, sample_tokens=12, threads=1,
                           checkpoint_minutes=2e-4, distributed={"nproc": 2, "max_restarts": 1})
    params["train"]["model"].update(embed_dim=16, hidden=16)
    params["train"]["batching"].update(batch_size=8, bptt=10)
    monkeypatch.chdir(tmp_path)
    return prepared_project(tmp_path, params, ("word",))


def rank_pid(root_pid: int, local_rank: int) -> int | None:
    """The PID of the worker with this LOCAL_RANK among root_pid's descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo = list(children.get(root_pid, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"LOCAL_RANK={local_rank}".encode() in env:
            return pid
    return None


def test_train_stage_on_two_ranks_recovers_a_killed_rank_and_matches_one_process(project):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "stages.train", "toy", RUN, "--lm", "word", "--cell", "lstm", "--dropout", "0.0",
            "--clip", "5", "--seed", str(repo_params()["seed"])]
    log = project / "stage.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(argv, env=env, stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not list(Path("checkpoints", RUN).glob("*/model/ckpt-1-[1-9]*.pt")):  # inside epoch 2
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-5000:]
            time.sleep(0.005)
        victim = rank_pid(proc.pid, 1)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        proc.wait(timeout=150)
    finally:
        if proc.poll() is None:  # leave no rank behind
            for pid in filter(None, (rank_pid(proc.pid, r) for r in (0, 1))):
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert proc.returncode == 0, out[-8000:]
    assert re.search(r"resuming from \S+/model/ckpt-1-[1-9]\d*\.pt", out), out[-5000:]  # the restarted group

    # one process with the global batch, the same params (but nproc) under another run name; no
    # MLflow run of its own, checkpoints at epoch ends only (neither shapes the numbers)
    params = load_params()
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["train"].update(distributed={"nproc": 1}, checkpoint_minutes=10.0)
    raw["tracking"]["enabled"] = False
    Path("params.yaml").write_text(yaml.safe_dump(raw))
    one = train_run(load_params(), RunSpec("one", "toy", "word", "lstm", 0.0, 5, seed=raw["seed"]),
                    progress=False).result
    two = read_json(f"results/{RUN}.json")
    assert two["epochs"] == one["epochs"] == 2 and two["best_epoch"] == one["best_epoch"]
    for split in ("valid", "test"):
        for k, v in one[split].items():
            assert two[split][k] == (pytest.approx(v, rel=RTOL) if isinstance(v, float) else v), (split, k)
    assert params_hash(params, RunSpec(RUN, "toy", "word", "lstm", 0.0, 5, seed=raw["seed"], group="toy-word-lstm-0.0-5")) == two["params_hash"]
    assert sorted(p.name for p in Path("metrics").iterdir()) == [f"{RUN}.json"]  # "one" was not written
    assert sorted(p.name for p in Path("results").iterdir()) == [f"{RUN}.json", f"{RUN}.segments.npy"]
    assert Path(f"curves/{RUN}.csv").is_file() and Path(f"models/{RUN}/model.pt").is_file()

    # one MLflow run, finished, though two groups trained it (read from the store's own tables)
    store = os.environ["MLFLOW_TRACKING_URI"].removeprefix("sqlite:///")
    with sqlite3.connect(store) as db:
        runs = db.execute("SELECT run_uuid, status FROM runs WHERE name = ?", (RUN,)).fetchall()
        assert [status for _, status in runs] == ["FINISHED"]
        tags = dict(db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (runs[0][0],)).fetchall())
    assert tags["world_size"] == "2" and tags["params_hash"] == two["params_hash"]

if __name__ == "__main__":
    worker(sys.argv[1])
