"""OneCycleLR: PyTorch's 1cycle schedule (two cosine phases, momentum cycled the other way),
stepped per batch by ``fit``."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import nn, optim
from tinygrad_edu.datasets import load_mnist
from tinygrad_edu.models import build_model, prepare_inputs
from tinygrad_edu.train import fit, make_optimizer, make_scheduler


def _params() -> list:
    return nn.Linear(2, 2, rng=0).parameters()


def _expected(step: int, total: int, max_lr: float, pct: float = 0.3) -> float:
    """PyTorch's piecewise formula, written out independently of the class."""
    low = max_lr / 25.0
    end = low / 1e4
    peak = pct * total - 1
    if step <= peak:
        start, stop, p = low, max_lr, step / peak
    else:
        start, stop, p = max_lr, end, (step - peak) / (total - 1 - peak)
    return stop + (start - stop) * (1 + math.cos(math.pi * p)) / 2


def test_rate_rises_to_the_peak_then_anneals_to_the_floor() -> None:
    opt = optim.SGD(_params(), lr=123.0, momentum=0.9)
    sched = optim.OneCycleLR(opt, max_lr=0.1, total_steps=100)
    lrs = [opt.lr] + [sched.step() for _ in range(99)]
    assert lrs[0] == pytest.approx(0.004)  # max_lr / div_factor, set on construction
    assert lrs[29] == pytest.approx(0.1)  # the peak at pct_start·T − 1
    assert lrs[99] == pytest.approx(0.004 / 1e4)  # / final_div_factor on the last step
    np.testing.assert_allclose(lrs, [_expected(s, 100, 0.1) for s in range(100)], rtol=1e-12)
    assert all(a < b for a, b in itertools.pairwise(lrs[:30]))
    assert all(a > b for a, b in itertools.pairwise(lrs[29:]))


@pytest.mark.parametrize("make, name", [
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9), "momentum"),
    (lambda p: optim.Adam(p, lr=0.1), "beta1"),
    (lambda p: optim.AdamW(p, lr=0.1), "beta1"),
])
def test_momentum_moves_against_the_rate(make, name) -> None:
    opt = make(_params())
    sched = optim.OneCycleLR(opt, max_lr=0.1, total_steps=20)
    values = [getattr(opt, name)] + [(sched.step(), getattr(opt, name))[1] for _ in range(19)]
    assert values[0] == pytest.approx(0.95) and values[-1] == pytest.approx(0.95)
    assert values[5] == pytest.approx(0.85)  # at the peak of the rate (0.3·20 − 1 = 5)
    assert min(values) == pytest.approx(0.85)


def test_plain_sgd_and_cycle_momentum_false_keep_the_momentum() -> None:
    plain = optim.SGD(_params(), lr=0.1)
    optim.OneCycleLR(plain, max_lr=0.1, total_steps=10).step()
    assert plain.momentum == 0.0
    adam = optim.Adam(_params(), lr=0.1)
    optim.OneCycleLR(adam, max_lr=0.1, total_steps=10, cycle_momentum=False).step()
    assert adam.beta1 == 0.9


def test_epochs_times_steps_and_errors() -> None:
    opt = optim.Adam(_params(), lr=0.1)
    sched = optim.OneCycleLR(opt, max_lr=0.1, epochs=2, steps_per_epoch=3)
    assert sched.total_steps == 6
    for _ in range(6):
        sched.step()
    with pytest.raises(ValueError, match="more than total_steps = 6"):
        sched.step()
    with pytest.raises(ValueError, match="total_steps, or epochs and steps_per_epoch"):
        optim.OneCycleLR(opt, max_lr=0.1, epochs=2)
    with pytest.raises(ValueError, match="max_lr"):
        optim.OneCycleLR(opt, max_lr=-1.0, total_steps=5)
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        make_scheduler("linear", opt, 1, 1)


@pytest.mark.usefixtures("one_blas_thread")
def test_fit_steps_a_per_batch_schedule_after_every_batch(real_mnist_dir: Path) -> None:
    x, y, x_test, y_test = load_mnist(real_mnist_dir, download=False)
    data = (prepare_inputs("mlp", x[:300]), y[:300], prepare_inputs("mlp", x_test[:100]),
            y_test[:100])
    model = build_model("mlp", rng=0, sizes=[784, 16, 10])
    opt = make_optimizer("sgd", model.parameters(), lr=0.1)
    sched = make_scheduler("onecycle", opt, epochs=2, steps_per_epoch=3)
    results = fit(model, opt, data, epochs=2, batch_size=100, seed=0, scheduler=sched)
    assert sched.last_epoch == 6  # stepped per batch, not per epoch
    assert [r.epoch_lr for r in results] == pytest.approx([_expected(0, 6, 0.1),
                                                           _expected(3, 6, 0.1)])
