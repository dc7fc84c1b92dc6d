"""Lesson ``linear-collapse``: without a nonlinearity, depth buys nothing.

A network of L linear layers with the identity activation computes

    y = W_L(⋯ W_2(W_1 x + b_1) + b_2 ⋯) + b_L = W x + b,
    W = W_L ⋯ W_2 W_1,   b = W_L(⋯(W_2 b_1 + b_2)⋯) + b_L,

one affine map.  The lesson builds a deep identity MLP in float64, multiplies its weight
matrices and checks that the single map reproduces the network's output to float64
precision.  Then it trains, for the same budget on MNIST, logistic regression (one Linear
layer), the deep identity MLP, and the same MLP with ReLU: the identity net stays at
logistic regression's accuracy (it *is* a linear classifier), the ReLU net goes beyond.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import nn, optim
from ..tensor import Tensor
from .common import LessonResult, figure, format_table, mnist_subset, save_figure, train_epochs

__all__ = ["FAST_SIZES", "SIZES", "collapse", "run"]

#: The deep network: 784 → 256 → 256 → 256 → 128 → 10 (5 linear layers).
SIZES = (784, 256, 256, 256, 128, 10)
#: The same depth, narrower, for ``fast`` mode.
FAST_SIZES = (784, 64, 64, 64, 10)


def collapse(model: nn.MLP) -> tuple[np.ndarray, np.ndarray]:
    """The single affine map (W, b) of an MLP whose activations are all the identity."""
    w, b = None, None
    for layer in model.layers:
        if not isinstance(layer, nn.Linear):
            continue
        wl, bl = layer.weight.data, layer.bias.data
        w, b = (wl, bl) if w is None else (wl @ w, wl @ b + bl)
    return w, b


def _float64(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        p.data = np.asarray(p.data, dtype=np.float64)
    return model


def _plot(accs: dict[str, list[float]], net_out: np.ndarray, map_out: np.ndarray,
          out: str | os.PathLike[str]) -> Any:
    fig = figure(11.0, 4.2)
    ax = fig.add_subplot(1, 2, 1)
    ax.scatter(net_out.ravel(), map_out.ravel(), s=4, alpha=0.5, color="#2563eb")
    lo, hi = float(net_out.min()), float(net_out.max())
    ax.plot([lo, hi], [lo, hi], color="#ea580c", lw=1, label="y = x")
    err = float(np.max(np.abs(net_out - map_out)))
    ax.set_title("deep identity net vs its one matrix $W = W_L \\cdots W_1$\n"
                 f"max |difference| = {err:.1e}")
    ax.set_xlabel("network output (logit)")
    ax.set_ylabel("x Wᵀ + b")
    ax.legend()
    ax = fig.add_subplot(1, 2, 2)
    colors = {"logistic regression": "#64748b", "deep MLP, identity": "#2563eb",
              "deep MLP, ReLU": "#16a34a"}
    for name, series in accs.items():
        ax.plot(range(1, len(series) + 1), [100 * a for a in series], marker="o",
                label=name, color=colors[name])
    ax.set_xlabel("epoch")
    ax.set_xticks(range(1, len(next(iter(accs.values()))) + 1))
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("MNIST, same budget")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, out, "linear_collapse.png")


def run(fast: bool = False, out: str | os.PathLike[str] = "lessons-out", data: Any = None,
        seed: int = 0) -> LessonResult:
    """The collapse check (float64) and the three MNIST runs (``fast``: 10,000 training
    images, 3 epochs, the narrower :data:`FAST_SIZES`; else all 60,000, 5 epochs)."""
    mnist = mnist_subset(10000 if fast else None, 2000 if fast else None, data, seed)
    epochs = 3 if fast else 5
    sizes = FAST_SIZES if fast else SIZES

    deep = _float64(nn.MLP(sizes, activation="identity", rng=seed))
    x = mnist.x_test[:500].astype(np.float64)
    net_out = deep(Tensor(x)).data
    w, b = collapse(deep)
    map_out = x @ w.T + b
    max_err = float(np.max(np.abs(net_out - map_out)))

    models = {
        "logistic regression": nn.Linear(784, 10, activation=None, rng=seed),
        "deep MLP, identity": nn.MLP(sizes, activation="identity", rng=seed),
        "deep MLP, ReLU": nn.MLP(sizes, activation="relu", rng=seed),
    }
    accs = {}
    for name, model in models.items():
        opt = optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
        accs[name] = train_epochs(model, opt, mnist, epochs, seed=seed)
    rows = [[name, *(f"{100 * a:.2f}%" for a in series)] for name, series in accs.items()]
    table = (f"deep identity MLP {'-'.join(map(str, sizes))} (float64), 500 test images:\n"
             f"max |network output − (x Wᵀ + b)| = {max_err:.3g}  (W = product of its "
             f"{len(sizes) - 1} weight matrices)\n\n"
             f"MNIST, {len(mnist.y_train)} training / {len(mnist.y_test)} test images, SGD "
             "lr 0.02 momentum 0.9, batch 128:\n"
             + format_table(["model", *(f"epoch {i}" for i in range(1, epochs + 1))], rows))
    final = {name: series[-1] for name, series in accs.items()}
    numbers = {"max_collapse_error": max_err, "accuracy": final, "history": accs,
               "n_train": len(mnist.y_train)}
    return LessonResult(
        "linear-collapse",
        "a deep identity network is one linear map; it stays at logistic regression's "
        "accuracy while ReLU goes beyond", table,
        [_plot(accs, net_out, map_out, out)], numbers)
