"""Data-parallel training under torchrun: one process per device, synced by DistributedDataParallel.

torchrun starts the processes and puts RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous in their
environment; `joined()` makes torch's process group of it (NCCL on GPUs, gloo on CPU) for a block,
and `group()` is what the training code asks. A process torchrun did not start is a group of one
whose collectives are the identity, so one process runs the very same code.

Where each rank's share is decided:
- batches (batching.py): `batching.batch_size` is the global batch G; rank r holds rows
  [r*G/W, (r+1)*G/W) of the one-process layout, so the data order does not depend on W.
- gradients (trainer.py): DDP averages them in backward; each rank's summed loss is scaled by
  W / (target tokens of the global batch), so the average is the gradient of the global per-token
  mean however the tokens fall on the ranks, and clipping sees the same norm as one process would.
- evaluation (scorer.py): eval batches are dealt round-robin; per-sequence sums are all-reduced.
- writes: rank 0 alone (checkpoints, run artifacts, the MLflow run). Checkpoints hold global terms
  (cursor, summed losses, every rank's carried state and RNGs), so one written by one world size
  resumes under another.

`torchrun_argv` is how the train stage starts itself under torchrun (train.distributed.nproc > 1).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from pipeline.config import DistributedConfig
from pipeline.errors import UserError
from pipeline.rnn.model import Hidden

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Group:
    """The ranks training one model. `active`: a torch process group exists (torchrun started
    this process), even a group of one, whose model is then wrapped in DDP all the same."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    active: bool = False
    comm: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where collectives' tensors live

    @property
    def writer(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """This rank's device: its own GPU (LOCAL_RANK) when the run trains on CUDA."""
        return torch.device("cuda", self.local_rank) if self.active and device.type == "cuda" else device

    def rows(self, n: int) -> slice:
        """This rank's share of the n rows of a global batch."""
        if n % self.world:
            raise UserError(f"train.batching.batch_size {n} is the global batch and must split evenly over "
                            f"the {self.world} ranks: make it a multiple of {self.world}")
        share = n // self.world
        return slice(self.rank * share, (self.rank + 1) * share)

    def seed(self, seed: int, *cursor: int) -> int:
        """The seed of this rank's RNGs (its dropout masks): `seed` itself on rank 0, so one process
        is unchanged; one of its own on every other rank (and `cursor`, for a rank that joins a run
        whose checkpoint holds no RNG state for it)."""
        if self.rank == 0:
            return seed
        return int(np.random.SeedSequence([seed, self.rank, *cursor]).generate_state(1)[0])

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to train: DDP around `model` (its gradients all-reduced in backward)."""
        if not self.active:
            return model
        dev = next(model.parameters()).device
        return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """`t` summed over the ranks, in place (on the training device)."""
        if self.active:
            dist.all_reduce(t)
        return t

    def any(self, flag: bool) -> bool:
        """Whether `flag` is true on any rank."""
        if not self.active:
            return flag
        return bool(self.sum(torch.tensor([float(flag)], device=self.comm)).item())

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self.comm)
        return box[0]

    def gather(self, obj: Any) -> list:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.active:
            return [obj]
        out: list = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def gather_rows(self, h: Hidden | None) -> Hidden | None:
        """Carried state of the global batch: the ranks' [layers, B/W, H] rows stacked in rank order."""
        if h is None or not self.active:
            return h
        if isinstance(h, tuple):
            return tuple(self.gather_rows(t) for t in h)
        parts = [torch.empty_like(h) for _ in range(self.world)]
        dist.all_gather(parts, h.contiguous())
        return torch.cat(parts, dim=1)

    def own_rows(self, h: Hidden | None) -> Hidden | None:
        """This rank's rows of a global carried state [layers, B, H]."""
        if h is None:
            return None
        if isinstance(h, (tuple, list)):
            return tuple(self.own_rows(t) for t in h)
        return h[:, self.rows(h.size(1))].contiguous()


_GROUP = Group()


def group() -> Group:
    """The group this process trains in (a group of one outside `joined`)."""
    return _GROUP


def under_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


@contextlib.contextmanager
def joined(device_type: str) -> Iterator[Group]:
    """Inside, `group()` is torchrun's process group when torchrun started this process (NCCL
    for a run on CUDA, gloo on CPU), else a group of one. device_type: the run's (pick_device)."""
    global _GROUP
    if not under_torchrun():
        yield _GROUP
        return
    if device_type not in ("cuda", "cpu"):
        raise UserError(f"train.device: distributed training runs on cuda (NCCL) or cpu (gloo), not {device_type}")
    env = os.environ
    if int(env.get("TORCHELASTIC_MAX_RESTARTS", "0")) and env.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        log.warning("torchrun --max-restarts > 0 with a shared rendezvous store: a restarted group may fail to "
                    "connect; start torchrun with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 (README, DDP)")
    local = int(env["LOCAL_RANK"])
    comm = torch.device("cpu")
    if device_type == "cuda":
        torch.cuda.set_device(local)
        comm = torch.device("cuda", local)
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    _GROUP = Group(dist.get_rank(), dist.get_world_size(), local, True, comm)
    try:
        yield _GROUP
    finally:
        _GROUP = Group()
        dist.destroy_process_group()


def torchrun_argv(cfg: DistributedConfig, module: str, argv: Sequence[str]) -> list[str] | None:
    """The command that runs `python -m module argv` as cfg.nproc ranks on this machine (torchrun
    with the same interpreter, a private rendezvous); None when it should run as it is: one
    process, or already started by torchrun (whose world then wins)."""
    if cfg.nproc == 1 or under_torchrun():
        return None
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={cfg.nproc}",
            f"--max-restarts={cfg.max_restarts}", "-m", module, *argv]


# torchrun's agent shares its rendezvous store with the workers by default, and a restarted group
# can then read the addresses of the group it replaces (pytorch/pytorch#135712: "Connection
# refused" after a restart); with this, each attempt's rank 0 serves a store of its own.
FRESH_STORE = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}


def relaunch(cfg: DistributedConfig, module: str, argv: Sequence[str]) -> None:
    """Become torchrun running this stage when `torchrun_argv` says so (does not return then):
    signals and the exit status are torchrun's."""
    cmd = torchrun_argv(cfg, module, argv)
    if cmd is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(cmd[0], cmd, {**os.environ, **FRESH_STORE})
