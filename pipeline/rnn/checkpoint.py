"""Checkpoint files for exact resume: <ckpt_dir>/ckpt-<epoch>-<batch>.pt.

<epoch>-<batch> is the data cursor in global terms (epochs completed, batches completed of the
next epoch), so ckpt-3-0 closes the third epoch. Files are written atomically (temp file,
fsync, os.replace) and only the newest two are kept: if the newest is unreadable (truncated,
corrupt) `load_latest` falls back to the one before it. What a checkpoint holds is the
trainer's business; this module names, writes, prunes, reads and vets the files, and
captures/restores the global RNGs.
"""

from __future__ import annotations

import io
import logging
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from pipeline.errors import UserError
from pipeline.io import write_bytes

log = logging.getLogger(__name__)

KEEP = 2
_NAME = re.compile(r"ckpt-(\d+)-(\d+)\.pt")


def checkpoint_files(ckpt_dir: Path) -> list[Path]:
    """Checkpoints in `ckpt_dir`, oldest first (by cursor)."""
    found = [(m, p) for p in ckpt_dir.glob("ckpt-*.pt") if (m := _NAME.fullmatch(p.name))]
    return [p for m, p in sorted(found, key=lambda mp: (int(mp[0][1]), int(mp[0][2])))]


def checkpoint_path(ckpt_dir: Path, epoch: int, batch: int) -> Path:
    return ckpt_dir / f"ckpt-{epoch}-{batch}.pt"


def save_checkpoint(ckpt_dir: Path, epoch: int, batch: int, payload: dict) -> Path:
    path = checkpoint_path(ckpt_dir, epoch, batch)
    save_torch(payload, path)
    for old in checkpoint_files(ckpt_dir)[:-KEEP]:
        old.unlink()
    for tmp in ckpt_dir.glob(".ckpt-*.tmp"):  # left behind by a writer that was killed
        tmp.unlink()
    return path


def save_torch(obj, path: Path) -> None:
    """torch.save, atomically. Serialised in memory first: torch's own writer reports a full disk
    as a RuntimeError from its zip container; a plain write raises the OSError it is."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(path, buf.getbuffer())


def load_latest(ckpt_dir: Path, params_hash: str) -> tuple[Path, dict] | None:
    """The newest readable checkpoint (on CPU) written under `params_hash`, or None.

    Checkpoint folders are keyed by params hash (paths.RunDir), so one written under another
    hash means a folder was copied by hand: it is refused (UserError), never deleted."""
    for path in reversed(checkpoint_files(ckpt_dir)):
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated or corrupt: torch raises several types, with advice that
            log.warning("%s: unreadable checkpoint (%s); trying the previous one", path, type(e).__name__)
            continue  # does not apply here (weights_only=False would run code from the file)
        if ck.get("params_hash") != params_hash:
            raise UserError(
                f"{path}: checkpoint written with other params (params_hash {ck.get('params_hash')}, "
                f"expected {params_hash}); delete {ckpt_dir} to train from scratch"
            )
        return path, ck
    return None


def prune_runs(root: Path, current: str, keep: int) -> None:
    """Keep the `keep` most recently used params-hash folders of a run (`current` among them),
    delete the rest: a changed and reverted param finds its run while it is among them."""
    if (root / current).is_dir():
        os.utime(root / current)  # used now: the newest
    others = sorted((p for p in root.glob("*") if p.is_dir() and p.name != current),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for old in others[max(keep - 1, 0):]:
        shutil.rmtree(old, ignore_errors=True)


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
