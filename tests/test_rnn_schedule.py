"""LR schedules: exponential = tf.train.exponential_decay after start_epoch; plateau; constant."""

import math

import pytest

from pipeline.config import ScheduleConfig
from pipeline.rnn.schedule import lr_at, plateau_decays


def tf_exponential_decay(lr0, global_step, decay_steps, decay_rate, staircase):
    """The documented formula of tf.compat.v1.train.exponential_decay."""
    p = global_step / decay_steps
    return lr0 * decay_rate ** (math.floor(p) if staircase else p)


@pytest.mark.parametrize("staircase", [True, False])
@pytest.mark.parametrize("unit", ["epoch", "step"])
@pytest.mark.parametrize("start_epoch", [0, 3])
@pytest.mark.parametrize("decay_steps", [1, 4])
def test_exponential_is_tf_decay_after_start_epoch(staircase, unit, start_epoch, decay_steps):
    cfg = ScheduleConfig(kind="exponential", rate=0.7, decay_steps=decay_steps, unit=unit, staircase=staircase,
                         start_epoch=start_epoch)
    spe = 5  # steps per epoch
    for epoch in range(9):
        for step in range(epoch * spe, (epoch + 1) * spe):
            lr = lr_at(cfg, 2.0, epoch=epoch, step=step, steps_per_epoch=spe, valid_losses=[])
            if epoch < start_epoch:
                assert lr == 2.0
            else:
                t = epoch - start_epoch if unit == "epoch" else step - start_epoch * spe
                assert lr == tf_exponential_decay(2.0, t, decay_steps, 0.7, staircase)


def test_exponential_worked_example():
    cfg = ScheduleConfig(kind="exponential", rate=0.5, decay_steps=1, unit="epoch", staircase=True, start_epoch=4)
    lrs = [lr_at(cfg, 1.0, epoch=e, step=0, steps_per_epoch=1, valid_losses=[]) for e in range(7)]
    assert lrs == [1, 1, 1, 1, 1, 0.5, 0.25]  # see schedule.py: start_epoch 4 = TF PTB max_epoch 5


def test_plateau_decays_after_patience_plus_one_bad_epochs():
    losses = [5, 4, 4.5, 4.2, 3, 3.5, 3.6, 3.7]
    # patience 0: every epoch not below the best so far decays
    assert [plateau_decays(losses[:i], 0) for i in range(9)] == [0, 0, 0, 1, 2, 2, 3, 4, 5]
    # patience 1: two bad epochs in a row decay, and the count restarts
    assert [plateau_decays(losses[:i], 1) for i in range(9)] == [0, 0, 0, 0, 1, 1, 1, 2, 2]
    cfg = ScheduleConfig(kind="plateau", rate=0.25, patience=1)
    assert lr_at(cfg, 1.0, epoch=8, step=0, steps_per_epoch=1, valid_losses=losses) == 0.25**2
    assert plateau_decays([3, 3], 0) == 1  # equal is not an improvement


def test_constant():
    cfg = ScheduleConfig(kind="constant", rate=0.1, start_epoch=0)
    assert lr_at(cfg, 0.3, epoch=7, step=99, steps_per_epoch=10, valid_losses=[9, 9, 9]) == 0.3
