"""Lesson ``regularisation``: L1 against L2 on the MNIST MLP, and batch normalisation.

* **L2** (weight decay) adds λ/2·Σθ² to the loss: its gradient λθ shrinks every weight in
  proportion to its size, so weights get *small* but rarely exactly zero
  (``optim.SGD(..., weight_decay=λ)``).
* **L1** adds λ·Σ|θ|: its (sub)gradient λ·sign(θ) pulls every weight toward zero by the
  same amount, whatever its size, so weights the loss does not need are driven *to* zero
  (up to the oscillation of size lr·λ that plain SGD leaves): sparse weights
  (``optim.l1_penalty``).
* **Batch normalisation** standardises each unit's pre-activation over the batch,
  ẑ = (z − mean)/√(var + ε), then scales and shifts it (γẑ + β): the next layer sees
  inputs of a stable scale whatever the weights did, which lets training use a larger
  learning rate.

The lesson trains the MLP 784-256-128-10 (ReLU) with no penalty, L2 and L1 (on the weight
matrices), prints the test accuracy and the fraction of near-zero first-layer weights
(|w| < 10⁻³), draws their histograms; then trains it with BatchNorm1d after each hidden
linear layer at the usual learning rate and at a ten times larger one, against the plain
net.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import nn, optim
from .common import LessonResult, figure, format_table, mnist_subset, save_figure, train_epochs

__all__ = ["NEAR_ZERO", "PENALTIES", "mlp", "run"]

NEAR_ZERO = 1e-3
#: name -> (weight decay λ for L2, λ for L1)
PENALTIES: dict[str, tuple[float, float]] = {
    "none": (0.0, 0.0), "L2 (weight decay 5e-3)": (5e-3, 0.0), "L1 (λ = 3e-4)": (0.0, 3e-4),
}
LR, HIGH_LR = 0.05, 0.5


def mlp(batch_norm: bool, seed: int = 0) -> nn.Sequential:
    """784-256-128-10 with ReLU, optionally BatchNorm1d between each hidden Linear and its
    ReLU."""
    rng = np.random.default_rng(seed)
    layers: list[nn.Module] = []
    for n_in, n_out in ((784, 256), (256, 128)):
        layers.append(nn.Linear(n_in, n_out, rng=rng))
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(nn.ReLU())
    layers.append(nn.Linear(128, 10, activation=None, rng=rng))
    return nn.Sequential(*layers)


def _train(model: nn.Module, lr: float, mnist: Any, epochs: int, seed: int,
           weight_decay: float = 0.0, l1: float = 0.0) -> list[float] | str:
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")
               and p.data.ndim == 2]
    penalty = (lambda: optim.l1_penalty(weights, l1)) if l1 else None
    try:
        with np.errstate(all="ignore"):
            return train_epochs(model, opt, mnist, epochs, seed=seed, penalty=penalty)
    except FloatingPointError as err:
        return f"diverged ({err})"


def _pct(series: list[float] | str) -> str:
    return series if isinstance(series, str) else f"{100 * series[-1]:.2f}%"


def run(fast: bool = False, out: str | os.PathLike[str] = "lessons-out", data: Any = None,
        seed: int = 0) -> LessonResult:
    """Three penalties and three batch-norm runs (``fast``: 4,000 training / 1,000 test
    images, 2 epochs; else all of MNIST, 4 epochs)."""
    mnist = mnist_subset(4000 if fast else None, 1000 if fast else None, data, seed)
    epochs = 2 if fast else 4
    reg, hists = {}, {}
    for name, (wd, l1) in PENALTIES.items():
        model = mlp(False, seed)
        accs = _train(model, LR, mnist, epochs, seed, wd, l1)
        w = model[0].weight.data.ravel()
        hists[name] = w
        reg[name] = {"accuracy": accs, "near_zero": float((np.abs(w) < NEAR_ZERO).mean()),
                     "mean_abs": float(np.abs(w).mean())}
    bn = {
        f"plain, lr {LR}": reg["none"]["accuracy"],
        f"batch norm, lr {LR}": _train(mlp(True, seed), LR, mnist, epochs, seed),
        f"plain, lr {HIGH_LR}": _train(mlp(False, seed), HIGH_LR, mnist, epochs, seed),
        f"batch norm, lr {HIGH_LR}": _train(mlp(True, seed), HIGH_LR, mnist, epochs, seed),
    }
    rows = [[name, f"{100 * r['near_zero']:.1f}%", f"{r['mean_abs']:.4f}", _pct(r["accuracy"])]
            for name, r in reg.items()]
    table = (f"MLP 784-256-128-10 (ReLU), SGD momentum 0.9, lr {LR}, {epochs} epochs, "
             f"{len(mnist.y_train)} training / {len(mnist.y_test)} test images; first-layer "
             "weights:\n"
             + format_table(["penalty", f"|w| < {NEAR_ZERO:g}", "mean |w|", "test accuracy"],
                            rows)
             + "\n\n" + format_table(["batch normalisation", "test accuracy"],
                                     [[k, _pct(v)] for k, v in bn.items()]))
    fig = figure(11.0, 4.5)
    ax = fig.add_subplot(1, 2, 1)
    edges = np.linspace(-0.15, 0.15, 121)
    for name, w in hists.items():
        ax.hist(w, bins=edges, histtype="step", lw=1.5,
                label=f"{name}: {100 * reg[name]['near_zero']:.0f}% near 0")
    ax.set_yscale("log")
    ax.set_xlabel("first-layer weight")
    ax.set_ylabel("count (log scale)")
    ax.set_title("Weights after training")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    for name, series in bn.items():
        if isinstance(series, str):
            ax.plot([], [], label=f"{name}: diverged")
            continue
        ax.plot(range(1, len(series) + 1), [100 * a for a in series], marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Batch normalisation")
    ax.set_xticks(range(1, epochs + 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return LessonResult(
        "regularisation", "L1 drives weights to zero where L2 only shrinks them; batch norm "
        "trains at a learning rate that makes the plain net diverge", table,
        [save_figure(fig, out, "regularisation.png")], {"penalties": reg, "batch_norm": bn})
