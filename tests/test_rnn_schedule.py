"""LR schedules: exponential = tf.train.exponential_decay after start_epoch; plateau; constant."""

import pytest

from pipeline.config import ScheduleConfig
from pipeline.rnn.schedule import lr_at, plateau_decays


def lrs(cfg: ScheduleConfig, epochs: int, steps_per_epoch: int = 1, lr0: float = 1.0) -> list[float]:
    """The lr of every step of the first `epochs` epochs."""
    return [lr_at(cfg, lr0, epoch=e, step=e * steps_per_epoch + k, steps_per_epoch=steps_per_epoch, valid_losses=[])
            for e in range(epochs) for k in range(steps_per_epoch)]


def test_exponential_by_epoch_worked_examples():
    # rate 0.5 every 2 epochs after 1 epoch at lr0: t = epoch - 1 = 0, 0, 1, 2, 3, 4, 5
    cfg = ScheduleConfig(kind="exponential", rate=0.5, decay_steps=2, interval="epoch", staircase=True, start_epoch=1)
    assert lrs(cfg, 7) == [1, 1, 1, 0.5, 0.5, 0.25, 0.25]
    smooth = lrs(cfg.model_copy(update={"staircase": False}), 5)  # 0.5 ** (t / 2)
    assert smooth == pytest.approx([1, 1, 0.7071067811865476, 0.5, 0.35355339059327373], rel=1e-15)


def test_exponential_by_step_worked_example():
    # 4 steps per epoch; t counts steps after epoch 0: steps 4.. have t = 0, 1, 2, ...
    cfg = ScheduleConfig(kind="exponential", rate=0.5, decay_steps=2, interval="step", staircase=True, start_epoch=1)
    assert lrs(cfg, 3, steps_per_epoch=4, lr0=2.0) == [2, 2, 2, 2, 2, 2, 1, 1, 0.5, 0.5, 0.25, 0.25]


def test_exponential_worked_example():
    cfg = ScheduleConfig(kind="exponential", rate=0.5, decay_steps=1, interval="epoch", staircase=True, start_epoch=4)
    lrs = [lr_at(cfg, 1.0, epoch=e, step=0, steps_per_epoch=1, valid_losses=[]) for e in range(7)]
    assert lrs == [1, 1, 1, 1, 1, 0.5, 0.25]  # see schedule.py: start_epoch 4 = TF PTB max_epoch 5


def test_plateau_decays_after_patience_plus_one_bad_epochs():
    losses = [5, 4, 4.5, 4.2, 3, 3.5, 3.6, 3.7]
    # patience 0: every epoch not below the best so far decays
    assert [plateau_decays(losses[:i], 0) for i in range(9)] == [0, 0, 0, 1, 2, 2, 3, 4, 5]
    # patience 1: two bad epochs in a row decay, and the count restarts
    assert [plateau_decays(losses[:i], 1) for i in range(9)] == [0, 0, 0, 0, 1, 1, 1, 2, 2]
    cfg = ScheduleConfig(kind="plateau", factor=0.25, rate=0.9, patience=1)  # rate is exponential's
    assert lr_at(cfg, 1.0, epoch=8, step=0, steps_per_epoch=1, valid_losses=losses) == 0.25**2
    assert plateau_decays([3, 3], 0) == 1  # equal is not an improvement


def test_constant():
    cfg = ScheduleConfig(kind="constant", rate=0.1, start_epoch=0)
    assert lr_at(cfg, 0.3, epoch=7, step=99, steps_per_epoch=10, valid_losses=[9, 9, 9]) == 0.3
