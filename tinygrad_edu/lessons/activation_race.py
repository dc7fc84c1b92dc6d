"""Lesson ``activation-race``: the same MNIST MLP trained with each activation for the
same budget.

The classic report (Krizhevsky, Sutskever & Hinton 2012, the AlexNet paper, figure 1): a
four-layer convolutional network with ReLUs reached 25% training error on CIFAR-10 six
times faster than the same network with tanh.  This lesson runs the experiment on MNIST
with an MLP: identical architecture, initialisation scheme per activation (as ``nn.MLP``
picks it), optimizer, data order and number of epochs; only the activation differs.  It
prints the test accuracy after each epoch, the seconds per epoch, the epochs needed to
reach a target test accuracy (measured several times per epoch) and our ReLU/tanh ratio —
whatever it turns out to be.

The cost of the function itself is measured separately: forward f and local gradient f′
of each registry activation on a million float32 numbers, interleaved, median of several
repeats, as a ratio to ReLU's (exp, erf and log against a max and a comparison).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np

from .. import nn, optim
from ..datasets import batches
from ..nn import functional as F
from ..numerics import ARRAY
from ..registry import ONE, get
from ..tensor import Tensor
from ..train import evaluate
from .common import LessonResult, figure, format_table, mnist_subset, save_figure

__all__ = ["ACTIVATIONS", "SIZES", "epochs_to", "function_cost", "race", "run"]

ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "silu", "softplus", "tanh",
               "sigmoid")
SIZES = (784, 256, 128, 10)


def function_cost(names: tuple[str, ...] = ACTIVATIONS, n: int = 1_000_000,
                  repeats: int = 7) -> dict[str, float]:
    """Seconds for f and f′ of each activation on ``n`` float32 numbers: the median of
    ``repeats`` rounds, the activations interleaved within each round."""
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    times: dict[str, list[float]] = {a: [] for a in names}
    for _ in range(repeats):
        for a in names:
            op = get(a)
            start = time.perf_counter()
            y = op.f(ARRAY, x, **op.params)
            if op.df is not ONE:
                op.df(ARRAY, x, y, **op.params)
            times[a].append(time.perf_counter() - start)
    return {a: float(np.median(t)) for a, t in times.items()}


def race(activations: tuple[str, ...], mnist: Any, epochs: int, evals_per_epoch: int,
         seed: int = 0) -> dict[str, dict[str, list[float]]]:
    """Train one MLP per activation *in lockstep* (each batch goes through every model in
    turn, so a slow moment of the machine hits all of them alike).  Per activation:
    ``epochs`` (fractional epoch of each evaluation), ``accuracy`` (test accuracy there),
    ``seconds`` (training seconds of each epoch, evaluations excluded)."""
    models = {a: nn.MLP(SIZES, activation=a, rng=seed) for a in activations}
    opts = {a: optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for a, m in models.items()}
    steps = math.ceil(len(mnist.y_train) / 128)
    marks = {round(steps * k / evals_per_epoch) for k in range(1, evals_per_epoch + 1)}
    out = {a: {"epochs": [], "accuracy": [], "seconds": []} for a in activations}
    for epoch in range(epochs):
        seconds = dict.fromkeys(activations, 0.0)
        order = batches(mnist.x_train, mnist.y_train, 128, seed=seed * 1000 + epoch)
        for step, (xb, yb) in enumerate(order, 1):
            for a, model in models.items():
                start = time.perf_counter()
                loss = F.cross_entropy(model(Tensor(xb)), yb)
                opts[a].zero_grad()
                loss.backward()
                opts[a].step()
                seconds[a] += time.perf_counter() - start
                if step in marks:
                    out[a]["epochs"].append(epoch + step / steps)
                    out[a]["accuracy"].append(evaluate(model, mnist.x_test, mnist.y_test))
        for a in activations:
            out[a]["seconds"].append(seconds[a])
    return out


def epochs_to(result: dict[str, list[float]], target: float) -> float:
    """The first evaluation's (fractional) epoch with test accuracy ≥ ``target`` (inf if
    never)."""
    return next((e for e, a in zip(result["epochs"], result["accuracy"]) if a >= target),
                math.inf)


def run(fast: bool = False, out: str | os.PathLike[str] = "lessons-out", data: Any = None,
        seed: int = 0) -> LessonResult:
    """Nine runs (``fast``: only ReLU, tanh and sigmoid, 5,000 training / 1,000 test
    images, 2 epochs, target 90%; else all of MNIST, 5 epochs, target 97%)."""
    mnist = mnist_subset(5000 if fast else None, 1000 if fast else None, data, seed)
    epochs, evals, target = (2, 4, 0.90) if fast else (5, 5, 0.97)
    names = ("relu", "tanh", "sigmoid") if fast else ACTIVATIONS
    cost = function_cost(names, n=200_000 if fast else 1_000_000, repeats=5 if fast else 9)
    results = race(names, mnist, epochs, evals, seed)
    reach = {a: epochs_to(r, target) for a, r in results.items()}
    rows = []
    for a, r in results.items():
        per_epoch = r["accuracy"][evals - 1::evals]
        rows.append([a, *(f"{100 * v:.2f}%" for v in per_epoch),
                     f"{np.median(r['seconds']):.2f}", f"{reach[a]:.2f}",
                     f"{cost[a] / cost['relu']:.2f}×"])
    ratio = reach["tanh"] / reach["relu"]
    table = (f"MLP {'-'.join(map(str, SIZES))}, SGD lr 0.05 momentum 0.9, batch 128, "
             f"{len(mnist.y_train)} training / {len(mnist.y_test)} test images; test accuracy "
             f"after each epoch, target {100 * target:g}% checked {evals}× per epoch:\n"
             + format_table(["activation", *(f"epoch {i}" for i in range(1, epochs + 1)),
                             "s/epoch", f"epochs to {100 * target:g}%",
                             "f+f′ cost vs ReLU"], rows)
             + f"\n\nepochs to target, tanh / ReLU = {ratio:.2f} (AlexNet, CIFAR-10 CNN: ≈ 6)")
    fig = figure(11.0, 4.5)
    ax = fig.add_subplot(1, 2, 1)
    for a, r in results.items():
        ax.plot(r["epochs"], [100 * v for v in r["accuracy"]], label=a,
                lw=2.5 if a in ("relu", "tanh") else 1.2)
    ax.axhline(100 * target, color="#64748b", linestyle=":", lw=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(max(0, 100 * target - 25), 100)
    ax.set_title("Same MLP, same budget, each activation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncols=2)
    ax = fig.add_subplot(1, 2, 2)
    names = list(cost)
    bars = ax.barh(names, [cost[a] / cost["relu"] for a in names], color="#2563eb")
    ax.bar_label(bars, fmt="%.2f×", padding=3, fontsize=8)
    ax.set_xlabel("f + f′ time, relative to ReLU (log scale)")
    ax.set_xscale("log")
    ax.set_title("Cost of the function itself")
    ax.grid(alpha=0.3, axis="x")
    numbers = {"results": results, "epochs_to_target": reach, "target": target,
               "tanh_over_relu": ratio, "cost_over_relu": {a: cost[a] / cost["relu"]
                                                           for a in cost}}
    return LessonResult(
        "activation-race", "the same MLP with each activation for the same budget: accuracy, "
        "time, epochs to a target (ReLU against tanh)", table,
        [save_figure(fig, out, "activation_race.png")], numbers)
