"""Learning-rate schedules as pure functions of the training position and the valid history.

The lr of any optimizer step follows from (epoch, step, valid losses of finished epochs), all
of which a checkpoint holds (cursor and epoch records), so resuming needs no scheduler state.

- constant:    lr0.
- exponential: tf.train.exponential_decay, lr0 * rate ** (t / decay_steps), the exponent
               floored when `staircase`. t counts the `interval`s (epochs or optimizer steps)
               completed since the first `start_epoch` epochs, which run at lr0:
                   interval epoch: t = max(0, epoch - start_epoch)                    (epoch 0-based)
                   interval step:  t = max(0, step - start_epoch * steps_per_epoch)   (step 0-based, global)
               As in TF, the decay's own first unit (t = 0) is at lr0 too: with rate 0.5,
               decay_steps 1, staircase, start_epoch 4, epochs 0..4 run at lr0, epoch 5 at
               lr0/2, epoch 6 at lr0/4. (TF's PTB tutorial `max_epoch = m`, whose epoch m is
               the first decayed one, is start_epoch = m - 1; start_epoch 0 is plain TF.)
- plateau:     after each epoch, a valid loss not strictly below the best so far counts as a
               bad epoch; when bad epochs in a row exceed `patience` the lr is multiplied by
               `factor` and the count restarts (patience 0: decay after every epoch that did not
               improve). PyTorch's ReduceLROnPlateau with threshold 0 and no cooldown.
"""

from __future__ import annotations

import math
from typing import Sequence

from pipeline.config import ScheduleConfig


def plateau_decays(valid_losses: Sequence[float], patience: int) -> int:
    """How many times the plateau rule has decayed the lr after these epochs."""
    best, bad, decays = math.inf, 0, 0
    for loss in valid_losses:
        if loss < best:
            best, bad = loss, 0
        else:
            bad += 1
            if bad > patience:
                decays, bad = decays + 1, 0
    return decays


def lr_at(cfg: ScheduleConfig, lr0: float, *, epoch: int, step: int, steps_per_epoch: int,
          valid_losses: Sequence[float]) -> float:
    """The lr of global optimizer step `step` (0-based), which lies in epoch `epoch` (0-based);
    `valid_losses`: one per epoch finished before it."""
    if cfg.kind == "constant":
        return lr0
    if cfg.kind == "plateau":
        return lr0 * cfg.factor ** plateau_decays(valid_losses, cfg.patience)
    if cfg.interval == "epoch":
        t = max(0, epoch - cfg.start_epoch)
    else:
        t = max(0, step - cfg.start_epoch * steps_per_epoch)
    p = t / cfg.decay_steps
    return lr0 * cfg.rate ** (math.floor(p) if cfg.staircase else p)
