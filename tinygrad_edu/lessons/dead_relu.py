"""Lesson ``dead-relu``: a learning rate high enough to kill ReLU units, against Leaky
ReLU and ELU; and ReLU's sparsity in healthy training.

A ReLU unit whose pre-activation is negative for every input outputs 0 for all of them,
and its gradient relu′ = 0 there: no gradient reaches its incoming weights, so nothing
moves them back — the unit is *dead*.  One large step can push a unit's bias and weights
there.  Leaky ReLU (slope 0.01 below 0) and ELU (eˣ − 1) keep a nonzero derivative for
negative inputs, so a unit in the negative region still learns (the lesson also counts
those "negative for every input" units: they are not dead).

The experiment: an MNIST MLP 784-256-256-10 trained with Adam at lr 0.03 (too high) with
each activation, and with ReLU at a healthy setting (SGD lr 0.05, momentum 0.9).  Every
few steps, on a fixed batch of training images, it counts per hidden unit whether its
output is 0 for every image (dead) and whether its pre-activation is ≤ 0 for every image,
and the fraction of exact zeros among all ReLU outputs (the sparsity).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import nn, optim
from ..autograd import no_grad
from ..tensor import Tensor
from .common import LessonResult, figure, format_table, mnist_subset, save_figure, train_epochs

__all__ = ["RUNS", "SIZES", "run", "unit_stats"]

SIZES = (784, 256, 256, 10)
#: name -> (activation, optimizer, lr)
RUNS: dict[str, tuple[str, str, float]] = {
    "ReLU, Adam lr 0.03": ("relu", "adam", 0.03),
    "Leaky ReLU, Adam lr 0.03": ("leaky_relu", "adam", 0.03),
    "ELU, Adam lr 0.03": ("elu", "adam", 0.03),
    "ReLU, SGD lr 0.05 (healthy)": ("relu", "sgd", 0.05),
}


def unit_stats(model: nn.MLP, x: np.ndarray) -> dict[str, float]:
    """Over all hidden units of ``model`` on the batch ``x``: the fraction ``dead``
    (output exactly 0 for every input), ``negative`` (pre-activation ≤ 0 for every input)
    and ``zeros`` (fraction of exact zeros among all hidden outputs)."""
    dead, negative, zeros, units = 0, 0, 0, 0
    with no_grad():
        a = Tensor(x)
        for layer in model.layers:
            pre, a = a, layer(a)
            if isinstance(layer, nn.Linear):
                continue
            out = a.data
            dead += int((out == 0).all(axis=0).sum())
            negative += int((pre.data <= 0).all(axis=0).sum())
            zeros += int((out == 0).sum())
            units += out.shape[1]
    return {"dead": dead / units, "negative": negative / units,
            "zeros": zeros / (units * len(x))}


def _train(activation: str, opt_name: str, lr: float, mnist: Any, probe: np.ndarray,
           epochs: int, every: int, seed: int) -> tuple[list[int], list[dict[str, float]], float]:
    model = nn.MLP(SIZES, activation=activation, rng=seed)
    opt = (optim.Adam(model.parameters(), lr=lr) if opt_name == "adam"
           else optim.SGD(model.parameters(), lr=lr, momentum=0.9))
    steps, stats = [0], [unit_stats(model, probe)]

    def after(step: int) -> None:
        if step % every == 0:
            steps.append(step)
            stats.append(unit_stats(model, probe))

    accs = train_epochs(model, opt, mnist, epochs, batch_size=64, seed=seed, after_step=after)
    return steps, stats, accs[-1]


def run(fast: bool = False, out: str | os.PathLike[str] = "lessons-out", data: Any = None,
        seed: int = 0) -> LessonResult:
    """The four runs (``fast``: 4,000 training images, 1 epoch, probe of 500 images; else
    all 60,000, 2 epochs, probe of 1,000)."""
    mnist = mnist_subset(4000 if fast else None, 1000 if fast else None, data, seed)
    probe = mnist.x_train[:500 if fast else 1000]
    epochs, every = (1, 5) if fast else (2, 50)
    results = {name: _train(*cfg, mnist, probe, epochs, every, seed)
               for name, cfg in RUNS.items()}
    rows = []
    for name, (_, stats, acc) in results.items():
        end = stats[-1]
        rows.append([name, f"{100 * max(s['dead'] for s in stats):.1f}%",
                     f"{100 * end['dead']:.1f}%", f"{100 * end['negative']:.1f}%",
                     f"{100 * end['zeros']:.1f}%", f"{100 * acc:.2f}%"])
    table = (f"MLP {'-'.join(map(str, SIZES))}, {len(mnist.y_train)} training images, "
             f"{epochs} epoch(s), batch 64; units measured on {len(probe)} fixed images:\n"
             + format_table(["run", "dead (max)", "dead (end)", "negative for all (end)",
                             "exact zeros (end)", "test accuracy"], rows))
    fig = figure(11.0, 4.5)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    # Leaky ReLU's and ELU's lines both lie on 0: the first thick, the second dashed on top
    # of it, so that each stays visible.
    on_zero = iter([{"lw": 4.0}, {"linestyle": (0, (4, 4)), "lw": 2.0}])
    for name, (steps, stats, _) in results.items():
        style = {} if name.startswith("ReLU") else next(on_zero)
        line, = ax1.plot(steps, [100 * s["dead"] for s in stats], label=f"{name}: dead",
                         **style)
        if not name.startswith("ReLU"):
            ax1.plot(steps, [100 * s["negative"] for s in stats], linestyle=":",
                     color=line.get_color(), label=f"{name}: negative for all inputs")
        ax2.plot(steps, [100 * s["zeros"] for s in stats], label=name, color=line.get_color(),
                 **style)
    ax1.set_title("Hidden units outputting 0 for every probe image\n"
                  "(Leaky ReLU and ELU: never; their lines lie on 0)", fontsize=10)
    ax1.set_xlabel("training step")
    ax1.set_ylabel("% of hidden units")
    ax1.legend(fontsize=7)
    ax1.grid(alpha=0.3)
    ax2.set_title("Sparsity: exact zeros among hidden outputs")
    ax2.set_xlabel("training step")
    ax2.set_ylabel("% of outputs")
    ax2.legend(fontsize=7)
    ax2.grid(alpha=0.3)
    numbers = {name: {"steps": steps, "stats": stats, "accuracy": acc}
               for name, (steps, stats, acc) in results.items()}
    return LessonResult(
        "dead-relu", "a too-high learning rate kills ReLU units (Leaky ReLU and ELU cannot "
        "die); healthy ReLU training is sparse", table,
        [save_figure(fig, out, "dead_relu.png")], numbers)
