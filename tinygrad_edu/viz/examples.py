"""The built-in example graphs of ``tinygrad-edu graph`` (also handy in notebooks)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["mlp", "network_step", "neuron"]


def neuron(backward: bool = True) -> Any:
    """The micrograd-style neuron ``o = tanh(x1·w1 + x2·w2 + b)`` on Values, labelled."""
    from ..value import Value

    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    x1w1, x2w2 = x1 * w1, x2 * w2
    x1w1.label, x2w2.label = "x1·w1", "x2·w2"
    s = x1w1 + x2w2
    s.label = "x1·w1 + x2·w2"
    n = s + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    if backward:
        o.backward()
    return o


def mlp(backward: bool = True, seed: int = 0) -> Any:
    """A 2-layer MLP on Tensors: 4 samples, 3 features, 4 hidden tanh units, 2 classes."""
    from ..losses import cross_entropy
    from ..tensor import Tensor

    rng = np.random.default_rng(seed)

    def param(shape: tuple, label: str) -> Tensor:
        return Tensor(rng.standard_normal(shape).astype(np.float32) * 0.5, requires_grad=True,
                      label=label)

    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32), label="X")
    w1, b1, w2, b2 = param((3, 4), "W1"), param((4,), "b1"), param((4, 2), "W2"), param((2,), "b2")
    z1 = x @ w1
    z1.label = "X@W1"
    a1 = z1 + b1
    a1.label = "X@W1 + b1"
    h = a1.tanh()
    h.label = "h"
    z2 = h @ w2
    z2.label = "h@W2"
    logits = z2 + b2
    logits.label = "logits"
    loss = cross_entropy(logits, np.array([0, 1, 1, 0]))
    loss.label = "loss"
    if backward:
        loss.backward()
    return loss


def network_step(name: str, batch: int = 16, seed: int = 0) -> Any:
    """One training step of the model zoo's ``name`` ("mlp"/"cnn") on random MNIST-shaped
    data, drawn layer by layer (see :mod:`.module_view`)."""
    from ..models import build_model, input_shape
    from .module_view import draw_training_step

    rng = np.random.default_rng(seed)
    model = build_model(name, rng=seed)
    images = rng.standard_normal((batch, *input_shape(name))).astype(np.float32)
    labels = rng.integers(0, 10, size=batch)
    return draw_training_step(model, images, labels)
