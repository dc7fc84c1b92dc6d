"""Optimizers against updates computed by hand from the published formulas; schedules;
the L1 penalty."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_edu import Tensor, nn, optim

TESTED_OPS: set[str] = set()  # no registry ops of their own (l1_penalty uses abs and sum)


def param(values) -> nn.Parameter:
    return nn.Parameter(np.array(values, dtype=np.float64))


def test_sgd_plain_step():
    p = param([1.0, -2.0])
    p.grad = np.array([0.5, 0.25])
    optim.SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [1.0 - 0.05, -2.0 - 0.025])


def test_sgd_momentum_two_steps():
    p = param([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.array([1.0])
    opt.step()  # b = g = 1;  θ = 1 − 0.1·1
    np.testing.assert_allclose(p.data, [0.9])
    p.grad = np.array([2.0])
    opt.step()  # b = 0.9·1 + 2 = 2.9;  θ = 0.9 − 0.29
    np.testing.assert_allclose(p.data, [0.61])


def test_sgd_nesterov_and_weight_decay():
    p = param([2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.1)
    p.grad = np.array([1.0])
    opt.step()  # g = 1 + 0.1·2 = 1.2; b = 1.2; step = g + 0.5·b = 1.8; θ = 2 − 0.18
    np.testing.assert_allclose(p.data, [1.82])
    p.grad = np.array([1.0])
    opt.step()  # g = 1 + 0.182 = 1.182; b = 0.6 + 1.182 = 1.782; step = 1.182 + 0.891
    np.testing.assert_allclose(p.data, [1.82 - 0.1 * (1.182 + 0.5 * 1.782)])
    np.testing.assert_allclose(p.grad, [1.0])  # the gradient itself is not modified


def test_sgd_weight_decay_is_l2_on_the_gradient():
    p = param([3.0])
    p.grad = np.array([0.0])
    optim.SGD([p], lr=0.5, weight_decay=0.2).step()
    np.testing.assert_allclose(p.data, [3.0 - 0.5 * 0.2 * 3.0])


def adam_by_hand(theta, grads, lr, b1, b2, eps, wd=0.0, decoupled=False):
    m = v = 0.0
    for t, g in enumerate(grads, start=1):
        if decoupled:
            theta = theta * (1 - lr * wd)
        else:
            g = g + wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        theta = theta - lr * m_hat / (math.sqrt(v_hat) + eps)
    return theta


def test_adam_matches_published_formulas_for_three_steps():
    p = param([0.5])
    opt = optim.Adam([p], lr=0.1, betas=(0.8, 0.9), eps=1e-3)
    grads = [0.3, -0.2, 0.05]
    for g in grads:
        p.grad = np.array([g])
        opt.step()
    # first step by hand: m̂ = g, v̂ = g², so θ = 0.5 − 0.1·0.3/(0.3 + 1e-3)
    expected = adam_by_hand(0.5, grads, 0.1, 0.8, 0.9, 1e-3)
    assert 0.5 - 0.1 * 0.3 / 0.301 == pytest.approx(adam_by_hand(0.5, grads[:1], 0.1, 0.8,
                                                                  0.9, 1e-3))
    np.testing.assert_allclose(p.data, [expected], rtol=1e-12)


def test_adam_l2_and_adamw_decoupled_decay_differ_as_published():
    grads = [0.3, -0.2, 0.05]
    for cls, decoupled in ((optim.Adam, False), (optim.AdamW, True)):
        p = param([0.5])
        opt = cls([p], lr=0.1, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.5)
        for g in grads:
            p.grad = np.array([g])
            opt.step()
        expected = adam_by_hand(0.5, grads, 0.1, 0.9, 0.99, 1e-8, wd=0.5, decoupled=decoupled)
        np.testing.assert_allclose(p.data, [expected], rtol=1e-12)
    assert optim.AdamW([param([1.0])]).weight_decay == 0.01


def test_adamw_decay_applies_with_zero_gradient():
    p = param([2.0])
    p.grad = np.array([0.0])
    optim.AdamW([p], lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(p.data, [2.0 * (1 - 0.05)])


def test_params_without_grad_are_skipped_and_no_graph_is_built():
    a, b = param([1.0, 2.0]), param([3.0])
    a.grad = np.array([1.0, 1.0])
    for opt in (optim.SGD([a, b], lr=0.1, momentum=0.9), optim.Adam([a, b])):
        data_id = id(b.data)
        opt.step()
        assert b.data.tolist() == [3.0] and id(b.data) == data_id
        assert a.is_leaf and a._parents == ()
    opt.zero_grad()
    assert a.grad is None


def test_float32_parameters_stay_float32_and_in_place():
    model = nn.MLP([3, 4, 2], rng=0)
    arrays = [p.data for p in model.parameters()]
    from tinygrad_edu import cross_entropy

    for opt in (optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4),
                optim.Adam(model.parameters(), weight_decay=1e-4),
                optim.AdamW(model.parameters())):
        loss = cross_entropy(model(Tensor(np.ones((2, 3), dtype=np.float32))), [0, 1])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(p.data is a and a.dtype == np.float32 for p, a in zip(model.parameters(), arrays))


def test_optimizer_state_dict_round_trip():
    p = param([1.0])
    opt = optim.Adam([p], lr=0.01)
    p.grad = np.array([1.0])
    opt.step()
    state = opt.state_dict()
    q = param([1.0])
    other = optim.Adam([q], lr=0.5)
    other.load_state_dict(state)
    assert other.lr == 0.01 and other.t == 1
    np.testing.assert_array_equal(other.state[0]["m"], opt.state[0]["m"])


def test_optimizer_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="not a Tensor"):
        optim.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam([param([1.0])], lr=-1.0)


def test_step_lr():
    opt = optim.SGD([param([1.0])], lr=1.0)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    lrs = [sched.step() for _ in range(5)]
    assert lrs == [1.0, 0.5, 0.5, 0.25, 0.25]
    assert opt.lr == sched.get_last_lr() == 0.25


def test_cosine_annealing_lr():
    opt = optim.Adam([param([1.0])], lr=0.1)
    sched = optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
    lrs = [sched.step() for _ in range(4)]
    expected = [0.01 + 0.09 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(1, 5)]
    np.testing.assert_allclose(lrs, expected)
    assert lrs[-1] == pytest.approx(0.01)


def test_l1_penalty_value_and_gradient():
    a, b = param([1.5, -2.0, 0.0]), param([[-0.5]])
    penalty = optim.l1_penalty([a, b], strength=0.1)
    assert penalty.item() == pytest.approx(0.1 * 4.0)
    penalty.backward()
    np.testing.assert_allclose(a.grad, [0.1, -0.1, 0.0])
    np.testing.assert_allclose(b.grad, [[-0.1]])
