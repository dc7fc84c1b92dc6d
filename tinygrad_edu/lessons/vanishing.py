"""Lesson ``vanishing-gradients``: the gradient norm per layer of a 20-layer MLP at
initialisation, one backward pass per activation.

Backpropagation multiplies the upstream gradient by f′(z) at every layer.  The sigmoid's
derivative is at most 1/4 (lesson ``activations``), so through 19 hidden layers the
gradient reaching the first layer shrinks by up to 4¹⁹ ≈ 3·10¹¹ (Xavier's weights do not
make it up); ReLU's derivative is 1 on active units and He's initialisation keeps the
scale, so its gradient arrives at the first layer intact.  Each network uses the weight
initialisation ``nn.MLP`` picks for its activation (He for the ReLU family, LeCun for
SELU, Xavier for sigmoid and tanh); the norms come from ``nn.utils.grad_norms``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import nn
from ..nn import functional as F
from ..nn.utils import grad_norms
from ..tensor import Tensor
from .common import LessonResult, figure, format_table, mnist_subset, save_figure

__all__ = ["ACTIVATIONS", "DEPTH", "layer_norms", "run"]

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "silu",
               "softplus")
#: Number of linear layers.
DEPTH = 20


def layer_norms(activation: str, x: np.ndarray, y: np.ndarray, width: int,
                seed: int = 0) -> list[float]:
    """‖∂loss/∂(layer parameters)‖₂ for each of the :data:`DEPTH` linear layers (input
    side first) after one cross-entropy backward pass at initialisation."""
    sizes = [x.shape[1], *([width] * (DEPTH - 1)), 10]
    model = nn.MLP(sizes, activation=activation, rng=seed)
    F.cross_entropy(model(Tensor(x)), y).backward()
    return list(grad_norms(model).per_layer.values())


def run(fast: bool = False, out: str | os.PathLike[str] = "lessons-out", data: Any = None,
        seed: int = 0) -> LessonResult:
    """One backward pass per activation on 256 MNIST training images (``fast``: 64 images,
    width 64; else width 256)."""
    n, width = (64, 64) if fast else (256, 256)
    mnist = mnist_subset(n, 0, data, seed)
    norms = {a: layer_norms(a, mnist.x_train, mnist.y_train, width, seed) for a in ACTIVATIONS}
    relu_first = norms["relu"][0]
    rows = [[a, f"{v[0]:.3e}", f"{v[DEPTH // 2]:.3e}", f"{v[-1]:.3e}", f"{v[0] / v[-1]:.2e}",
             f"{v[0] / relu_first:.2e}"] for a, v in norms.items()]
    table = (f"{DEPTH}-layer MLP 784-{width}×{DEPTH - 1}-10 at initialisation, one backward "
             f"pass on {n} MNIST images (gradient 2-norm of each linear layer's parameters):\n"
             + format_table(["activation", "layer 1", f"layer {DEPTH // 2 + 1}",
                             f"layer {DEPTH}", "first / last", "first / ReLU's first"], rows))
    fig = figure(9.0, 5.5)
    ax = fig.add_subplot(1, 1, 1)
    for a, v in norms.items():
        ax.semilogy(range(1, DEPTH + 1), v, marker="o", ms=3, label=a,
                    lw=2.5 if a in ("sigmoid", "relu") else 1.2,
                    zorder=3 if a in ("sigmoid", "relu") else 2)
    ax.set_xlabel("linear layer (1 = input side)")
    ax.set_ylabel("‖gradient‖₂ (log scale)")
    ax.set_xticks(range(1, DEPTH + 1))
    ax.set_title(f"Gradient norm per layer, {DEPTH}-layer MLP at initialisation")
    ax.grid(alpha=0.3, which="both")
    ax.legend(ncols=3, fontsize=8)
    numbers = {"norms": norms, "sigmoid_over_relu_first": norms["sigmoid"][0] / relu_first}
    return LessonResult(
        "vanishing-gradients",
        "through 20 sigmoid layers the first layer's gradient is orders of magnitude "
        "below ReLU's", table, [save_figure(fig, out, "vanishing_gradients.png")], numbers)
