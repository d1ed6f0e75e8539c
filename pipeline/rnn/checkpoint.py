"""Checkpoint files for exact resume: <ckpt_dir>/ckpt-<epoch>-<batch>.pt.

<epoch>-<batch> is the data cursor in global terms (epochs completed, batches completed of the
next epoch), so ckpt-3-0 closes the third epoch. Files are written atomically (temp file,
fsync, os.replace) and only the newest two are kept: if the newest is unreadable (truncated,
corrupt) `load_latest` falls back to the one before it. What a checkpoint holds is the
trainer's business; this module names, writes, prunes, reads and vets the files, and
captures/restores the global RNGs.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path

import numpy as np
import torch

from pipeline.errors import UserError
from pipeline.io import atomic_open

log = logging.getLogger(__name__)

KEEP = 2
_NAME = re.compile(r"ckpt-(\d+)-(\d+)\.pt")


def checkpoint_files(ckpt_dir: Path) -> list[Path]:
    """Checkpoints in `ckpt_dir`, oldest first (by cursor)."""
    found = [(m, p) for p in ckpt_dir.glob("ckpt-*.pt") if (m := _NAME.fullmatch(p.name))]
    return [p for m, p in sorted(found, key=lambda mp: (int(mp[0][1]), int(mp[0][2])))]


def save_checkpoint(ckpt_dir: Path, epoch: int, batch: int, payload: dict) -> Path:
    path = ckpt_dir / f"ckpt-{epoch}-{batch}.pt"
    with atomic_open(path) as f:
        torch.save(payload, f)
    for old in checkpoint_files(ckpt_dir)[:-KEEP]:
        old.unlink()
    for tmp in ckpt_dir.glob(".ckpt-*.tmp"):  # left behind by a writer that was killed
        tmp.unlink()
    return path


def load_latest(ckpt_dir: Path, params_hash: str, restart_stale: bool = False) -> tuple[Path, dict] | None:
    """The newest readable checkpoint (on CPU) written under `params_hash`, or None.

    One written under another hash is refused (UserError), or with `restart_stale` deleted:
    for callers that know a mismatch means "the inputs changed, start over" (a DVC stage is
    only re-run when its deps or params changed)."""
    for path in reversed(checkpoint_files(ckpt_dir)):
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated or corrupt: torch raises several types
            log.warning("%s: unreadable checkpoint (%s: %s); trying the previous one", path, type(e).__name__, e)
            continue
        if ck.get("params_hash") == params_hash:
            return path, ck
        if not restart_stale:
            raise UserError(
                f"{path}: checkpoint written with other params (params_hash {ck.get('params_hash')}, "
                f"now {params_hash}); delete {ckpt_dir} to train from scratch, or restore the params "
                "it was trained with"
            )
        path.unlink()
        log.warning("%s: written with other params or data; deleted, training starts over", path)
    return None


def rng_state() -> dict:
    """Every global RNG, in types torch.load(weights_only=True) accepts."""
    np_state = np.random.get_state(legacy=False)
    np_state["state"]["key"] = np_state["state"]["key"].tolist()
    state = {"python": random.getstate(), "numpy": np_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np_state = state["numpy"]
    np_state["state"]["key"] = np.asarray(np_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])
