"""Schedules against values worked out by hand: no torch needed, so these run everywhere.
They pin what the torch comparisons in test_optim.py leave to their arguments: PyTorch's
defaults and the exact improvement thresholds of ReduceLROnPlateau."""

import pytest

from graphc import schedules
from graphc.optim import SGD


def test_linear_lr_defaults_are_torchs():
    # start_factor 1/3 rising linearly to 1 over 5 epochs
    opt = SGD(lr=0.3)
    s = schedules.LinearLR(opt)
    seen = [opt.lr]
    for _ in range(6):
        s.step()
        seen.append(opt.lr)
    want = [0.3 * (1 / 3 + (2 / 3) * min(e, 5) / 5) for e in range(7)]
    assert seen == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("mode,best,value,better", [
    ("min", 10.0, 9.05, False),   # rel: better only below 10 * (1 - 0.1) = 9
    ("min", 10.0, 8.95, True),
    ("max", 10.0, 10.95, False),  # rel: better only above 10 * (1 + 0.1) = 11
    ("max", 10.0, 11.05, True),
])
def test_plateau_relative_threshold(mode, best, value, better):
    opt = SGD(lr=1.0)
    s = schedules.ReduceLROnPlateau(opt, mode=mode, factor=0.5, patience=0, threshold=0.1)
    s.step(best)
    s.step(value)
    assert s.best == (value if better else best)
    assert opt.lr == (1.0 if better else 0.5)


@pytest.mark.parametrize("mode,value,better", [
    ("min", 9.05, False), ("min", 8.95, True),    # abs: better only below 10 - 1
    ("max", 10.95, False), ("max", 11.05, True),  # abs: better only above 10 + 1
])
def test_plateau_absolute_threshold(mode, value, better):
    opt = SGD(lr=1.0)
    s = schedules.ReduceLROnPlateau(opt, mode=mode, factor=0.5, patience=0, threshold=1.0,
                                    threshold_mode="abs")
    s.step(10.0)
    s.step(value)
    assert opt.lr == (1.0 if better else 0.5)


def test_plateau_patience_cooldown_and_floor():
    opt = SGD(lr=1.0)
    s = schedules.ReduceLROnPlateau(opt, factor=0.1, patience=1, cooldown=1, min_lr=0.005)
    lrs = []
    for _ in range(12):
        s.step(5.0)
        lrs.append(opt.lr)
    # epoch 1 sets the best; then two bad epochs, a cut and a cooldown epoch, again and
    # again: 1 -> 0.1 -> 0.01 -> 0.005 (the floor, not 0.001), where it stays
    assert lrs == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.005, 0.005,
                                 0.005, 0.005])
