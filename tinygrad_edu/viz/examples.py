"""The built-in example graphs of ``tinygrad-edu graph`` (also handy in notebooks)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["RANKDIR", "mlp", "mnist_batch", "network_step", "neuron"]

#: The layout each example reads best in at a screen's width: the MLP's tensor records are
#: wide, so its chain runs top to bottom (left to right it is 3,800 px wide; this: 1,160).
RANKDIR = {"mlp": "TB"}


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


def mnist_batch(name: str, batch: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """``batch`` MNIST test images shaped for the model zoo's ``name``, their labels, and
    what they are.  Real MNIST when it is already on this machine (never downloaded here);
    else a *synthetic* batch (uniform random pixels in [0, 1], random labels), said so."""
    from ..datasets import DatasetError, load_mnist
    from ..models import input_shape, prepare_inputs

    rng = np.random.default_rng(seed)
    try:
        _, _, x_test, y_test = load_mnist(download=False)
    except DatasetError:
        images = rng.random((batch, *input_shape(name)), dtype=np.float32)
        return images, rng.integers(0, 10, size=batch), "synthetic batch (no MNIST found)"
    pick = rng.choice(len(x_test), size=batch, replace=False)
    return prepare_inputs(name, x_test[pick]), y_test[pick], "MNIST batch"


def network_step(name: str, batch: int = 16, seed: int = 0) -> Any:
    """One training step of the model zoo's ``name`` ("mlp"/"cnn") at initialisation, drawn
    layer by layer (see :mod:`.module_view`), on a real MNIST test batch when the data is
    present (the loss is then near ln 10 ≈ 2.3), else on a batch labelled "synthetic"."""
    from ..models import build_model
    from ..tensor import Tensor
    from .module_view import draw_training_step

    model = build_model(name, rng=seed)
    images, labels, source = mnist_batch(name, batch, seed)
    dot = draw_training_step(model, Tensor(images, label=f"{source}, {batch} images"), labels)
    dot.attr(label=f"one training step of mnist-{name} at initialisation: {source}",
             labelloc="t", fontsize="13")
    return dot
