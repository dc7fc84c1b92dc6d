"""Lesson ``init``: how the scale of the initial weights carries (or loses) the signal.

A layer z = W a + b with n inputs of variance Var(a) and weights of variance σ² gives
Var(z) = n σ² E[a²].  To keep the scale from layer to layer:

* **He** (Kaiming) σ² = 2/n_in for ReLU, which zeroes half of a symmetric input, so
  E[relu(z)²] = Var(z)/2 and the factor 2 makes up for it;
* **Xavier** (Glorot) σ² = 2/(n_in + n_out) (= 1/n for square layers) for tanh, which is
  linear near 0.

With the wrong pairing the signal dies or saturates: ReLU with Xavier halves the variance
at every layer (after 20 layers the standard deviation is 2^(−10) ≈ 10⁻³ of the first's);
tanh with He pushes the pre-activations into the flat tails (|tanh| > 0.99).  A small
positive bias (0.1) for ReLU moves every pre-activation up, so more units start active.

The backward pass has its own gain per layer, σ² n E[f′(z)²] (the chain rule multiplies
the gradient by Wᵀ and by f′): He's σ² = 2/n makes it 2 E[tanh′(z)²] > 1 for tanh, so the
gradients grow from the output towards the input (the "chaotic" regime), while Xavier keeps
it just below 1.

The lesson pushes one batch of standard-normal inputs through 20 layers of width n (no
training) and prints the activations' standard deviation per layer, the fraction of
active ReLU units (output > 0), of alive ones (output > 0.01) and of saturated tanh units
(|output| > 0.99); then it backpropagates a fixed random read-out of the last layer and
prints how the weight gradients' norm changes from the last layer to the first.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import nn
from ..tensor import Tensor
from .common import LessonResult, figure, format_table, save_figure

__all__ = ["CONFIGS", "DEPTH", "forward_stats", "run"]

DEPTH = 20
#: name -> (activation, init scheme, bias)
CONFIGS: dict[str, tuple[str, str, float]] = {
    "ReLU + He": ("relu", "kaiming_normal", 0.0),
    "ReLU + He, bias 0.1": ("relu", "kaiming_normal", 0.1),
    "ReLU + Xavier": ("relu", "xavier_normal", 0.0),
    "tanh + Xavier": ("tanh", "xavier_normal", 0.0),
    "tanh + He": ("tanh", "kaiming_normal", 0.0),
    "tanh + N(0, 1)": ("tanh", "standard_normal", 0.0),
}
#: A ReLU unit counts as alive when its output exceeds this (the input's std is 1).
ALIVE = 0.01


def _standard_normal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """The naive initialisation: every weight N(0, 1), whatever the fan-in."""
    return rng.standard_normal(shape)


def forward_stats(activation: str, init: str, bias: float, width: int, batch: int,
                  seed: int = 0) -> dict[str, list[float]]:
    """Per layer (1..DEPTH): ``std`` of the activations, ``active`` fraction (> 0),
    ``alive`` fraction (> :data:`ALIVE`) and ``saturated`` fraction (|a| > 0.99) for a
    standard-normal input batch; and ``grad``, the norm of the layer's weight gradient when
    a fixed random read-out ``Σ a ⊙ R`` of the last layer is backpropagated."""
    rng = np.random.default_rng(seed)
    a = Tensor(rng.standard_normal((batch, width)).astype(np.float32))
    stats: dict[str, list[float]] = {"std": [], "active": [], "alive": [], "saturated": []}
    scheme = _standard_normal if init == "standard_normal" else init
    layers = []
    for _ in range(DEPTH):
        # activation="relu": He's variance 2/n_in whatever follows (no tanh gain)
        layer = nn.Linear(width, width, init=scheme, bias_init=bias, activation="relu",
                          rng=rng)
        layers.append(layer)
        a = getattr(layer(a), activation)()
        stats["std"].append(float(a.data.std()))
        stats["active"].append(float((a.data > 0).mean()))
        stats["alive"].append(float((a.data > ALIVE).mean()))
        stats["saturated"].append(float((np.abs(a.data) > 0.99).mean()))
    readout = rng.standard_normal(a.shape).astype(np.float32) / np.sqrt(a.data.size)
    (a * Tensor(readout)).sum().backward()
    stats["grad"] = [float(np.linalg.norm(layer.weight.grad)) for layer in layers]
    return stats


def run(fast: bool = False, out: str | os.PathLike[str] = "lessons-out", data: Any = None,
        seed: int = 0) -> LessonResult:
    """Five configurations through 20 layers (``fast``: width 128, 256 inputs; else width
    512, 1024 inputs); ``data`` is unused (the claim needs no data)."""
    width, batch = (128, 256) if fast else (512, 1024)
    stats = {name: forward_stats(*cfg, width=width, batch=batch, seed=seed)
             for name, cfg in CONFIGS.items()}
    rows = []
    for name, s in stats.items():
        tail = "saturated" if CONFIGS[name][0] == "tanh" else "alive"
        rows.append([name, f"{s['std'][0]:.3g}", f"{s['std'][9]:.3g}", f"{s['std'][-1]:.3g}",
                     f"{s['std'][-1] / s['std'][0]:.3g}",
                     f"{tail} {100 * s[tail][0]:.1f}% → {100 * s[tail][-1]:.1f}%",
                     f"{s['grad'][0] / s['grad'][-1]:.3g}"])
    table = (f"{DEPTH} layers of width {width}, {batch} standard-normal inputs, no training:\n"
             + format_table(["configuration", "std layer 1", "std layer 10",
                             f"std layer {DEPTH}", "last / first", "units (layer 1 → last)",
                             "‖∂W‖ first / last"],
                            rows))
    fig = figure(15.0, 4.5)
    ax = fig.add_subplot(1, 3, 1)
    layers = range(1, DEPTH + 1)
    for name, s in stats.items():
        ax.semilogy(layers, s["std"], marker="o", ms=3, label=name)
    ax.set_xlabel("layer")
    ax.set_xticks(range(1, DEPTH + 1, 2))
    ax.set_ylabel("std of activations (log scale)")
    ax.set_title("Signal scale through the net")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 3, 3)
    for name, s in stats.items():
        growth = [g / s["grad"][-1] for g in s["grad"]]
        if growth[0] > 100:  # N(0, 1)'s explosion would flatten every other line
            ax.plot([], [], marker="o", ms=3, label=f"{name}: ×{growth[0]:.0e} at layer 1 "
                    "(off the scale)")
            continue
        same = name == "ReLU + Xavier"  # relu(c z) = c relu(z): the scale cancels
        ax.semilogy(layers, growth, marker="o", ms=3, linestyle="--" if same else "-",
                    label=f"{name} (same line as ReLU + He)" if same else name)
    ax.set_xlabel("layer")
    ax.set_xticks(range(1, DEPTH + 1, 2))
    ax.set_ylabel(f"‖∂L/∂W‖ relative to layer {DEPTH} (log scale)")
    ax.set_title("Backward: weight-gradient norm per layer")
    from matplotlib.ticker import ScalarFormatter  # matplotlib loads with the first figure

    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 3, 2)
    for name, s in stats.items():
        key = "saturated" if CONFIGS[name][0] == "tanh" else "alive"
        ax.plot(layers, [100 * v for v in s[key]], marker="o", ms=3,
                label=f"{name}: {key}", linestyle="--" if key == "saturated" else "-")
    ax.set_xlabel("layer")
    ax.set_xticks(range(1, DEPTH + 1, 2))
    ax.set_ylabel("% of units")
    ax.set_title(f"ReLU: alive (output > {ALIVE}); tanh: saturated (|a| > 0.99)")
    ax.set_ylim(-2, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center right", bbox_to_anchor=(1.0, 0.72))
    return LessonResult(
        "init", "He keeps ReLU activations alive through depth, Xavier suits tanh (He makes "
        "tanh's gradients grow towards the input); a 0.1 bias makes more ReLU units active", table, [save_figure(fig, out, "init.png")],
        {"stats": stats, "width": width})
