"""The model zoo's CNN blocks: pooling before a non-decreasing activation is the same function.

``models.POOL_FIRST`` lists the activations that never decrease; for them a conv block pools
first and applies the activation to a quarter of the numbers.  These tests check the claim
(values and gradients) for each listed activation, that the unlisted ones really
do not commute with max-pooling, and that a whole CNN built so computes what the textbook
order computes with the same weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu import Tensor, cross_entropy, nn
from tinygrad_edu.cli.train import _activation_names
from tinygrad_edu.models import POOL_FIRST, build_model


def _pool_then_act_and_back(name: str, x: np.ndarray, order: str):
    act, pool = nn.module_for(name), nn.MaxPool2d(2)
    t = Tensor(x.copy(), requires_grad=True)
    y = act(pool(t)) if order == "pool first" else pool(act(t))
    (y * Tensor(np.linspace(-1.0, 2.0, y.size).reshape(y.shape))).sum().backward()
    return y.data, t.grad


@pytest.mark.parametrize("name", sorted(POOL_FIRST))
def test_listed_activations_commute_with_max_pooling(name) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 6, 6)) * 2.0  # distinct values, none saturated in float64
    y1, g1 = _pool_then_act_and_back(name, x, "pool first")
    y2, g2 = _pool_then_act_and_back(name, x, "textbook")
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(g1, g2)


def test_every_listed_activation_is_one_the_models_offer() -> None:
    assert POOL_FIRST <= set(_activation_names())


@pytest.mark.parametrize("name", ["gelu", "silu"])
def test_activations_that_dip_are_not_listed(name) -> None:
    """GELU and SiLU fall before they rise: the window (−3, −0.5) has max −0.5, but f(−3) is
    closer to 0 than f(−0.5), so pooling first gives a different number."""
    assert name not in POOL_FIRST
    x = np.array([-3.0, -0.5, -4.0, -5.0]).reshape(1, 1, 2, 2)
    y1, _ = _pool_then_act_and_back(name, x, "pool first")
    y2, _ = _pool_then_act_and_back(name, x, "textbook")
    assert y1.item() != y2.item()


def test_learned_and_random_slopes_keep_the_textbook_order() -> None:
    assert {"prelu", "rrelu"}.isdisjoint(POOL_FIRST)
    prelu = nn.module_for("prelu")
    prelu.weight.data[...] = -0.5  # a learned slope may turn negative: f then decreases
    x = Tensor(np.array([-3.0, -0.5, -4.0, -5.0]).reshape(1, 1, 2, 2))
    assert prelu(nn.MaxPool2d(2)(x)).item() != nn.MaxPool2d(2)(prelu(x)).item()


@pytest.mark.parametrize(("activation", "expected"), [("relu", ["MaxPool2d", "ReLU"]),
                                                      ("gelu", ["GELU", "MaxPool2d"])])
def test_cnn_blocks_pool_first_only_for_listed_activations(activation, expected) -> None:
    model = build_model("cnn", rng=0, activation=activation, batch_norm=True)
    names = [type(m).__name__ for m in model]
    assert names[:4] == ["Conv2d", "BatchNorm2d", *expected]


def test_cnn_computes_what_the_textbook_order_computes() -> None:
    """The built CNN (pool first) and the same layers in conv → ReLU → pool order, with the
    same weights: the same loss and gradients, bit for bit."""
    model = build_model("cnn", rng=0, batch_norm=True, hidden=16)
    layers = list(model)
    textbook, i = [], 0
    while i < len(layers):  # each "MaxPool2d, ReLU" pair swapped back
        if isinstance(layers[i], nn.MaxPool2d) and type(layers[i + 1]).__name__ == "ReLU":
            textbook += [layers[i + 1], layers[i]]
            i += 2
        else:
            textbook.append(layers[i])
            i += 1
    textbook = nn.Sequential(*textbook)
    assert [type(m).__name__ for m in textbook][:4] == ["Conv2d", "BatchNorm2d", "ReLU",
                                                        "MaxPool2d"]
    x = np.random.default_rng(2).standard_normal((4, 1, 28, 28), dtype=np.float32)
    y = np.array([0, 3, 7, 9])
    grads = []
    for net in (model, textbook):
        model.zero_grad()
        loss = cross_entropy(net(Tensor(x)), y)
        loss.backward()
        grads.append((loss.item(), [p.grad.copy() for p in model.parameters()]))
    assert grads[0][0] == grads[1][0]
    for a, b in zip(grads[0][1], grads[1][1]):
        np.testing.assert_array_equal(a, b)
