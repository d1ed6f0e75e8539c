"""The training loop: a library call, config in, one record per epoch out, exact resume.

    result = train(model, ids, cfg, seed=1337, newline_id=tok.newline_id, ckpt_dir=ckpt_dir,
                   params_hash=h, evaluate=valid_metrics, callbacks=[...])

Per epoch, `evaluate(model)` (the caller's valid-split evaluator: a dict with at least
"nll_nats" and "n_tokens") is called and a record is built:
    epoch          1-based
    lr             lr of the epoch's first step (see schedule.py)
    train_loss     nats per real target token over the epoch (padding excluded)
    grad_norm      pre-clip global gradient norm, mean over the epoch's steps; grad_norm_max
    valid_loss     valid nll_nats / n_tokens (picks the best epoch, drives `plateau`)
    valid_<key>    every metric evaluate() returned
    tokens_per_s   training tokens per training second (evaluation excluded)
    wall_s         training + evaluation seconds of the epoch
Each callback's `on_epoch_end(record)` is called with it (the one hook for logging, curves
and pruning); any returning True stops the run after that epoch (result.stopped_early).
On resume, callbacks see only the epochs run in this call; result.records has them all.

Hot path: no device->host reads per batch. Loss and norm sums stay on the device and are read
every SYNC_S seconds (progress bar, divergence check), before a checkpoint and at epoch end. A
non-finite grad norm, or a train or valid loss that is non-finite or above 10 ln V + 10 nats per
token (blown-up weights; see `_Run.max_loss`), ends the run: the result says diverged with the
(1-based) epoch; that is a result, not an exception.

Checkpoints (checkpoint.py) are written at each epoch end and every cfg.checkpoint_minutes at
a batch boundary, holding everything a bitwise-identical continuation needs (see `_Run.save`).
A finished run called again loads its final checkpoint and returns the same result.

Under torchrun the same loop runs on every rank of `distributed.group()` (see distributed.py for
what is sharded where): the model is wrapped in DDP, every decision that ends a loop or writes
is taken by all ranks at the same batch from all-reduced values, and rank 0 alone writes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils import clip_grads_with_norm_, get_total_norm
from tqdm.auto import tqdm

from pipeline.config import TrainConfig
from pipeline.errors import Interrupted, UserError
from pipeline.rnn import distributed
from pipeline.rnn.batching import IGNORE, Batch, make_batches
from pipeline.rnn.checkpoint import checkpoint_path, load_latest, rng_state, save_checkpoint, set_rng_state
from pipeline.rnn.distributed import Group
from pipeline.rnn.model import Hidden, RNNLM
from pipeline.rnn.optim import Optimizer
from pipeline.rnn.schedule import lr_at

log = logging.getLogger(__name__)

SYNC_S = 1.0  # seconds between device->host reads (and, under DDP, agreements) in the training loop


class Callback:
    """What the trainer calls back; subclasses override what they need."""

    def on_epoch_end(self, record: dict) -> bool | None:
        """Called after every epoch with its record; return True to stop training."""

    def on_valid(self, point: dict) -> bool | None:
        """Called at every intermediate evaluation (train(report_every=...)): {"step", "epoch"
        (fractional), "valid_<metric>": ...}; return True to stop training (a pruned trial)."""

    def on_sync(self, point: dict) -> None:
        """Called at every read of the running sums (every SYNC_S seconds): {"step": global
        optimizer step, "epoch": fractional epoch, "train_loss": nats/token of the epoch so far}."""


@dataclass
class TrainResult:
    records: list[dict]  # one per epoch that finished training and evaluation
    best_state: dict[str, torch.Tensor] | None  # CPU state_dict of the lowest valid loss; None if none
    best_epoch: int | None  # 1-based
    epochs: int  # epochs run (len(records))
    wall_s: float  # all sessions of this run together
    tokens_per_s: float  # training tokens per training second, all epochs
    train_tokens: int  # training tokens of the finished epochs (a run's data budget, in its own units)
    diverged: bool
    diverged_epoch: int | None  # 1-based
    stopped_early: bool  # a callback returned True


# ----------------------------------------------------------------------------- setup helpers


def pick_device(name: str) -> torch.device:
    """'auto' -> cuda > mps > cpu; a named device must exist here."""
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}
    if name == "auto":
        name = next(d for d, ok in available.items() if ok)
    if name not in available:
        raise UserError(f"train.device: unknown device {name!r}; allowed auto, cpu, cuda, mps")
    if not available[name]:
        raise UserError(f"train.device is {name!r}, but this machine has no {name} device; use auto or cpu")
    return torch.device(name)


def configure_torch(cfg: TrainConfig) -> None:
    """Threads and deterministic kernels. Call before any CUDA work (train() does)."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    # torch.use_deterministic_algorithms also imports torch._inductor (seconds of CPU in every
    # stage) to set torch.compile's flag; nothing here compiles, so set the kernels' flag only.
    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    set_flag(cfg.deterministic) if set_flag else torch.use_deterministic_algorithms(cfg.deterministic)
    torch.backends.cudnn.deterministic = cfg.deterministic


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # CPU and every CUDA device


def batch_loss(model: torch.nn.Module, batch: Batch, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
    """Summed NLL (nats) of the batch's real targets, and the state after it. Padded targets are
    IGNORE: exactly zero loss and zero gradient. `model`: an RNNLM or DDP around one."""
    logits, hidden = model(batch.x, hidden, batch.lengths)  # [B, T, V]
    loss = F.cross_entropy(logits.flatten(0, 1), batch.y.flatten(), ignore_index=IGNORE, reduction="sum")
    return loss, hidden


# ----------------------------------------------------------------------------- the loop


def train(
    model: RNNLM,
    ids: np.ndarray,
    cfg: TrainConfig,
    *,
    seed: int,
    newline_id: int,
    ckpt_dir: Path,
    params_hash: str,
    evaluate: Callable[[RNNLM], dict],
    callbacks: Sequence[Callback] = (),
    report_every: float | None = None,
    progress: bool = True,
    device: torch.device | None = None,
) -> TrainResult:
    """Train `model` (in place) on the 1-D id stream `ids`; on return it holds the best state.
    Gradients are clipped to `cfg.optim.clip` (0: not clipped). With `report_every` (a fraction
    of an epoch), the valid split is also evaluated within epochs and the callbacks' `on_valid`
    may stop the run there (pruning); evaluation draws no random numbers, so it changes nothing.

    Resumes from the newest readable checkpoint in `ckpt_dir`; `params_hash` must
    name everything that shapes the weights (params, data); a checkpoint of another is refused.

    Under torchrun every rank calls this alike (`evaluate` too must be called by all: it may
    all-reduce); only rank 0 writes checkpoints and shows progress."""
    group = distributed.group()
    device = device or group.device(pick_device(cfg.device))
    configure_torch(cfg)
    seed_everything(group.seed(seed))
    run = _Run(model.to(device), cfg, Path(ckpt_dir), params_hash, device, group, seed)
    if not run.p.done:
        batches = make_batches(ids, cfg.batching, max_tokens=cfg.max_train_tokens, newline_id=newline_id, seed=seed,
                               device=device, rows=group.rows(cfg.batching.batch_size))
        run.fit(batches, evaluate, callbacks, progress, report_every)
    return run.result()


@dataclass
class _Progress:
    """Everything about the run so far except model, optimizer, RNGs and carried state."""

    epoch: int = 0  # cursor: epochs completed
    batch: int = 0  # cursor: (global) batches completed of epoch `epoch`
    records: list[dict] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch: int | None = None
    best_loss: float = math.inf
    wall_s: float = 0.0  # all sessions, up to the last checkpoint
    train_s: float = 0.0  # training seconds of finished epochs
    train_tokens: int = 0  # training tokens of finished epochs
    diverged_epoch: int | None = None
    stopped_early: bool = False
    done: bool = False
    # the current epoch so far; the sums stay on the device until read. loss_sum is this rank's
    # share (the ranks' sum is the epoch's; a checkpoint holds that); the norms are the same on
    # every rank (of the all-reduced gradients); tokens counts the whole global batches.
    loss_sum: torch.Tensor | None = None
    norm_sum: torch.Tensor | None = None
    norm_max: torch.Tensor | None = None
    tokens: int = 0
    steps: int = 0
    epoch_train_s: float = 0.0

    def new_epoch(self, device: torch.device) -> None:
        dtype = torch.float32 if device.type == "mps" else torch.float64  # mps has no float64
        self.loss_sum, self.norm_sum, self.norm_max = (torch.zeros((), dtype=dtype, device=device) for _ in range(3))
        self.tokens = self.steps = 0
        self.epoch_train_s = 0.0


class _Run:
    def __init__(self, model: RNNLM, cfg: TrainConfig, ckpt_dir: Path, params_hash: str,
                 device: torch.device, group: Group, seed: int):
        self.model, self.cfg, self.clip, self.device = model, cfg, cfg.optim.clip, device
        self.ckpt_dir, self.params_hash, self.group = ckpt_dir, params_hash, group
        self.signals: list[int] = []  # SIGINT/SIGTERM received and deferred (see `fit`)
        # Loss per token past which the run has diverged: ten uniform guesses' worth. Blown-up
        # weights give finite losses of 1e6; a vanilla RNN that recovered from a bad first
        # epoch was seen at 4 ln V, still well below this.
        self.max_loss = 10 * math.log(model.vocab_size) + 10
        self.opt = Optimizer(model.parameters(), cfg.optim)
        self.p, self.hidden = _Progress(), None  # hidden: the state carried into the next batch
        self.p.new_epoch(device)
        # every rank resumes from what rank 0 read: the same checkpoint, shared storage or not
        found = group.broadcast(load_latest(ckpt_dir, params_hash) if group.writer else None)
        if found:
            path, ck = found
            if group.writer:
                log.info("resuming from %s", path)
            model.load_state_dict(ck["model"])
            self.opt.load_state_dict(ck["optimizer"])
            self.p = _Progress(**ck["progress"])
            rngs = ck["rng"]  # one per rank of the run that wrote it
            if group.rank < len(rngs):
                set_rng_state(rngs[group.rank])
            else:  # a rank more than that run had: RNGs of its own, as a fresh rank gets
                seed_everything(group.seed(seed, self.p.epoch, self.p.batch))
            if not group.writer:
                self.p.loss_sum = torch.zeros_like(self.p.loss_sum)  # the epoch's sum goes on on rank 0
            for name in ("loss_sum", "norm_sum", "norm_max"):
                setattr(self.p, name, getattr(self.p, name).to(device))
            self.hidden = group.own_rows(_to_device(ck["hidden"], device))
        self.t0, self.wall0 = time.monotonic(), self.p.wall_s

    def save(self) -> tuple[Path, int | None]:
        """A checkpoint at the current cursor: model, optimizer (momentum / Adam moments), every
        RNG, the carried TBPTT state, and _Progress (cursor, records, best state, the current
        epoch's partial sums, timings, outcome). The lr schedule is a pure function of the
        cursor and the records; the sentence shuffle one of (seed, epoch): neither has state.

        All ranks take part; rank 0 writes it in global terms: the ranks' summed loss, their
        carried states as the rows of the global batch, their RNGs in rank order. Returns the
        path and the signal (if any rank got one) the run must stop for, agreed by all."""
        p, g = self.p, self.group
        p.wall_s = self.wall0 + time.monotonic() - self.t0
        hidden, loss_sum = g.gather_rows(self.hidden), g.sum(p.loss_sum.clone())
        states = g.gather((rng_state(), self.signals[0] if self.signals else 0))
        if g.writer:
            save_checkpoint(self.ckpt_dir, p.epoch, p.batch, {
                "params_hash": self.params_hash,
                "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(),
                "rng": [rng for rng, _ in states],
                "hidden": hidden,
                "progress": {**vars(p), "loss_sum": loss_sum},
            })
        return checkpoint_path(self.ckpt_dir, p.epoch, p.batch), max(s for _, s in states) or None

    def lr(self, k: int) -> float:
        """The lr of batch k of the current epoch."""
        n = self.batches.n_batches
        return lr_at(self.cfg.schedule, self.cfg.optim.lr, epoch=self.p.epoch, step=self.p.epoch * n + k,
                     steps_per_epoch=n, valid_losses=[r["valid_loss"] for r in self.p.records])

    def fit(self, batches, evaluate: Callable[[RNNLM], dict], callbacks: Sequence[Callback], progress: bool,
            report_every: float | None = None) -> None:
        p, cfg, model, opt, g = self.p, self.cfg, self.model, self.opt, self.group
        self.batches, params, net = batches, list(model.parameters()), g.wrap(model)
        autocast = torch.autocast(self.device.type, torch.bfloat16, enabled=cfg.bf16 and self.device.type == "cuda")
        bar = tqdm(total=cfg.epochs * batches.n_tokens, initial=p.epoch * batches.n_tokens + p.tokens, unit="tok",
                   unit_scale=True, dynamic_ncols=True, disable=not progress or not g.writer)

        def step() -> int:
            return p.epoch * batches.n_batches + p.batch

        def beat() -> bool:
            """Read the sums once, every rank at the same batch: update the bar, call on_sync,
            say whether training has diverged; and agree whether a checkpoint is due (clock)."""
            votes = clock.votes(step())
            sums = g.sum(torch.cat([p.loss_sum.view(1), p.loss_sum.new_tensor(votes)]))  # one all-reduce
            loss, save, signalled, ahead, norm = torch.cat([sums, p.norm_sum.view(1)]).tolist()
            clock.agreed(step(), save + signalled > 0, ahead / g.world)
            point = {"step": step(), "epoch": p.epoch + p.batch / batches.n_batches,
                     "train_loss": loss / max(p.tokens, 1)}
            for cb in callbacks:
                cb.on_sync(point)
            bar.update(p.epoch * batches.n_tokens + p.tokens - bar.n)
            bar.set_postfix(loss=f"{loss / p.tokens:.4f}", lr=f"{opt.lr:.4g}", refresh=False)
            if math.isfinite(norm) and loss / max(p.tokens, 1) <= self.max_loss:
                return False
            p.diverged_epoch, p.done = p.epoch + 1, True
            return True

        # batches after which the valid split is evaluated within an epoch (not at its end)
        every = max(1, round(report_every * batches.n_batches)) if report_every else 0
        t_mark = time.monotonic()  # start of the training time not yet added to p.epoch_train_s
        with bar, deferred_signals() as self.signals:
            clock = _Clock(g.world, cfg.checkpoint_minutes * 60, self.signals, step())
            while not p.done:
                model.train()
                for k, batch in enumerate(batches.epoch(p.epoch, p.batch), p.batch):
                    opt.lr = self.lr(k)
                    with autocast:
                        loss_sum, hidden = batch_loss(net, batch, self.hidden)
                    opt.zero_grad()
                    # DDP averages the ranks' gradients: scaled by the world size, the ranks' sums
                    # give the gradient of the global batch's per-token mean (one process: x 1)
                    (loss_sum * g.world / batch.n_tokens).backward()
                    norm = get_total_norm([q.grad for q in params if q.grad is not None])
                    if self.clip > 0:
                        clip_grads_with_norm_(params, self.clip, norm)
                    opt.step()
                    self.hidden = model.detach_hidden(hidden) if batches.carries_state else None
                    p.loss_sum += loss_sum.detach()
                    p.norm_sum += norm
                    torch.maximum(p.norm_max, norm, out=p.norm_max)
                    p.tokens, p.steps, p.batch = p.tokens + batch.n_tokens, p.steps + 1, k + 1
                    if every and p.batch % every == 0 and p.batch < batches.n_batches:
                        if beat() or self.valid_point(evaluate, callbacks):
                            break

                    if clock.due(step()):
                        if beat():
                            break
                        if clock.save_due:
                            p.epoch_train_s += time.monotonic() - t_mark
                            stop(*self.save())
                            t_mark = clock.saved()
                else:  # the epoch's batches are done
                    if not beat():
                        p.epoch_train_s += time.monotonic() - t_mark
                        self.end_epoch(evaluate, callbacks)
                stop(*self.save())  # the epoch's end, or the run's (diverged)
                t_mark = clock.saved()

    def valid_point(self, evaluate: Callable[[RNNLM], dict], callbacks: Sequence[Callback]) -> bool:
        """An intermediate valid evaluation; True when a callback stops the run there."""
        p, n = self.p, self.batches.n_batches
        self.model.eval()
        with torch.no_grad():
            metrics = {k: v.item() if isinstance(v, (np.generic, torch.Tensor)) else v
                       for k, v in evaluate(self.model).items()}
        self.model.train()
        point = {"step": p.epoch * n + p.batch, "epoch": p.epoch + p.batch / n,
                 **{f"valid_{k}": v for k, v in metrics.items()}}
        if self.group.any(any([bool(cb.on_valid(point)) for cb in callbacks])):  # every callback sees every point
            p.stopped_early = p.done = True
        return p.done

    def end_epoch(self, evaluate: Callable[[RNNLM], dict], callbacks: Sequence[Callback]) -> None:
        p, model = self.p, self.model
        t0 = time.monotonic()
        model.eval()
        with torch.no_grad():
            metrics = {k: v.item() if isinstance(v, (np.generic, torch.Tensor)) else v
                       for k, v in evaluate(model).items()}
        model.train()
        valid_loss = metrics["nll_nats"] / metrics["n_tokens"]
        loss_sum, norm_sum, norm_max = torch.stack([self.group.sum(p.loss_sum.clone()), p.norm_sum,
                                                    p.norm_max]).tolist()
        record = {
            "epoch": p.epoch + 1,
            "lr": self.lr(0),
            "train_loss": loss_sum / p.tokens,
            "grad_norm": norm_sum / p.steps,
            "grad_norm_max": norm_max,
            **{f"valid_{k}": v for k, v in metrics.items()},
            "valid_loss": valid_loss,
            "tokens_per_s": p.tokens / p.epoch_train_s,
            "wall_s": p.epoch_train_s + time.monotonic() - t0,
        }
        p.records.append(record)
        if valid_loss < p.best_loss and valid_loss <= self.max_loss:  # never a diverged state
            p.best_loss, p.best_epoch = valid_loss, p.epoch + 1
            p.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        p.train_s, p.train_tokens = p.train_s + p.epoch_train_s, p.train_tokens + p.tokens
        stops = [bool(cb.on_epoch_end(record)) for cb in callbacks]  # every callback sees every epoch
        p.stopped_early = self.group.any(any(stops))
        if not valid_loss <= self.max_loss:  # also true for NaN
            p.diverged_epoch = p.epoch + 1
        p.epoch, p.batch = p.epoch + 1, 0
        p.done = p.stopped_early or p.diverged_epoch is not None or p.epoch == self.cfg.epochs
        p.new_epoch(self.device)
        self.hidden = None  # each epoch starts from a fresh state

    def result(self) -> TrainResult:
        p = self.p
        if p.best_state is not None:
            self.model.load_state_dict(p.best_state)
        return TrainResult(
            records=p.records,
            best_state=p.best_state,
            best_epoch=p.best_epoch,
            epochs=len(p.records),
            wall_s=p.wall_s,
            tokens_per_s=p.train_tokens / p.train_s if p.train_s > 0 else 0.0,
            train_tokens=p.train_tokens,
            diverged=p.diverged_epoch is not None,
            diverged_epoch=p.diverged_epoch,
            stopped_early=p.stopped_early,
        )


class _Clock:
    """When the loop stops to read its sums (a beat): every SYNC_S seconds, and at once when a
    checkpoint is due (every checkpoint_minutes) or a signal came; a beat that finds either due
    sets `save_due`. One process reads its clock every batch. The ranks of a group must stop at
    the same batch, and one clock for all would cost a collective per batch: so each beat sets
    the batch of the next from the pace measured so far (the ranks' mean), and the ranks vote
    there (any rank counts); a checkpoint or a signal waits at most about SYNC_S."""

    def __init__(self, world: int, ckpt_s: float, signals: list[int], step: int):
        self.world, self.ckpt_s, self.signals = world, ckpt_s, signals
        self.save_due = False
        now = time.monotonic()
        self.next_sync, self.next_ckpt = now + SYNC_S, now + ckpt_s  # one process
        self.next_step, self.mark = step + 1, (step, now)  # a group: the first beat after one batch

    def due(self, step: int) -> bool:
        if self.world == 1:
            return time.monotonic() >= min(self.next_sync, self.next_ckpt) or bool(self.signals)
        return step >= self.next_step

    def votes(self, step: int) -> list[float]:
        """[a checkpoint is due here, a signal came here, batches from here to the next beat]."""
        now = time.monotonic()
        pace = (step - self.mark[0]) / max(now - self.mark[1], 1e-9)  # batches per second, here
        return [float(now >= self.next_ckpt), float(bool(self.signals)),
                max(1.0, pace * min(SYNC_S, self.next_ckpt - now))]

    def agreed(self, step: int, save_due: bool, ahead: float) -> None:
        """The ranks' votes: any rank due to save, their mean batches ahead (the same on every rank)."""
        now = time.monotonic()
        self.save_due, self.next_sync = save_due, now + SYNC_S
        self.next_step, self.mark = step + max(1, int(ahead)), (step, now)

    def saved(self) -> float:
        """After a checkpoint (its time counts as neither training nor pace); returns the time."""
        now = time.monotonic()
        self.save_due, self.next_ckpt, self.mark = False, now + self.ckpt_s, (self.mark[0], now)
        return now


@contextlib.contextmanager
def deferred_signals() -> Iterator[list[int]]:
    """Inside, SIGINT and SIGTERM are recorded in the yielded list instead of raised, so the loop
    stops at a batch boundary with a checkpoint (`stop`); a second signal raises at once."""
    pending: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        yield pending
        return

    def record(signum: int, frame) -> None:
        if pending:
            raise Interrupted(signum)
        pending.append(signum)

    old = {s: signal.signal(s, record) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield pending
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def stop(checkpoint: Path, signum: int | None) -> None:
    """After a checkpoint: raise Interrupted if a signal came (to any rank: see `_Run.save`)."""
    if signum:
        raise Interrupted(signum, f"the last checkpoint is {checkpoint}")


def _to_device(h: Hidden | None, device: torch.device) -> Hidden | None:
    if h is None:
        return None
    return tuple(t.to(device) for t in h) if isinstance(h, (tuple, list)) else h.to(device)
