"""Lesson ``backprop-by-hand``: the textbook network, its δ terms by hand, against the engine.

The classic network: 2 inputs, 2 sigmoid hidden units, 1 sigmoid output, squared error::

    net_hⱼ = wⱼ₁ x₁ + wⱼ₂ x₂ + bⱼ      hⱼ = σ(net_hⱼ)            (j = 1, 2)
    net_o  = v₁ h₁ + v₂ h₂ + c         o  = σ(net_o)
    E      = ½ (t − o)²

The backward pass by the textbook formulas (σ′(z) = σ(z)(1 − σ(z))):

    δ_o  = ∂E/∂net_o  = (o − t) · o (1 − o)
    δ_hⱼ = ∂E/∂net_hⱼ = hⱼ (1 − hⱼ) · vⱼ δ_o
    ∂E/∂vⱼ = δ_o hⱼ,   ∂E/∂c = δ_o,   ∂E/∂wⱼᵢ = δ_hⱼ xᵢ,   ∂E/∂bⱼ = δ_hⱼ

and one gradient-descent step wᵢ ← wᵢ − η ∂E/∂wᵢ.  The lesson computes these with plain
floats, then builds the same network from ``Value``s (each pre-activation labelled) and
compares: the δ terms with the engine's ``net.grad``, every weight gradient with the
engine's ``.grad`` and with the totals the backward stepper (``explain_backward``) records,
and the hand update with one ``optim.SGD`` step on ``Tensor`` parameters.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import optim
from ..nn import functional as F
from ..tensor import Tensor
from ..value import Value
from ..viz import explain_backward
from .common import LessonResult, figure, format_table, save_figure

__all__ = ["NETWORK", "by_engine", "by_hand", "run", "sgd_step"]

#: Inputs, target, weights and learning rate (the numbers of the classic worked example).
NETWORK: dict[str, float] = {
    "x1": 0.05, "x2": 0.10, "t": 0.01,
    "w11": 0.15, "w12": 0.20, "w21": 0.25, "w22": 0.30, "b1": 0.35, "b2": 0.35,
    "v1": 0.40, "v2": 0.45, "c": 0.60, "lr": 0.5,
}
RADIUS = 0.45  # of a unit's circle in the figure
WEIGHTS = ("w11", "w12", "w21", "w22", "b1", "b2", "v1", "v2", "c")


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def by_hand(p: dict[str, float] = NETWORK) -> dict[str, float]:
    """Forward signal, δ terms, gradients and updated weights with plain floats."""
    r: dict[str, float] = {}
    x = (p["x1"], p["x2"])
    for j in (1, 2):
        r[f"net_h{j}"] = p[f"w{j}1"] * x[0] + p[f"w{j}2"] * x[1] + p[f"b{j}"]
        r[f"h{j}"] = _sigmoid(r[f"net_h{j}"])
    r["net_o"] = p["v1"] * r["h1"] + p["v2"] * r["h2"] + p["c"]
    r["o"] = _sigmoid(r["net_o"])
    r["E"] = 0.5 * (p["t"] - r["o"]) ** 2
    r["delta_o"] = (r["o"] - p["t"]) * r["o"] * (1.0 - r["o"])
    for j in (1, 2):
        h = r[f"h{j}"]
        r[f"delta_h{j}"] = h * (1.0 - h) * p[f"v{j}"] * r["delta_o"]
        r[f"dv{j}"] = r["delta_o"] * h
        r[f"dw{j}1"] = r[f"delta_h{j}"] * x[0]
        r[f"dw{j}2"] = r[f"delta_h{j}"] * x[1]
        r[f"db{j}"] = r[f"delta_h{j}"]
    r["dc"] = r["delta_o"]
    for w in WEIGHTS:
        r[f"new_{w}"] = p[w] - p["lr"] * r[f"d{w}"]
    return r


def by_engine(p: dict[str, float] = NETWORK) -> tuple[dict[str, float], dict[str, float]]:
    """The same network from labelled ``Value``s: (engine gradients, stepper totals).

    Keys are the weight names and the pre-activations ``net_h1``, ``net_h2``, ``net_o``
    (whose gradients are the δ terms)."""
    v = {k: Value(p[k], label=k) for k in ("x1", "x2", *WEIGHTS)}
    nets = {}
    hs = []
    for j in (1, 2):
        net = v[f"w{j}1"] * v["x1"] + v[f"w{j}2"] * v["x2"] + v[f"b{j}"]
        net.label = f"net_h{j}"
        nets[net.label] = net
        hs.append(net.sigmoid())
    net_o = v["v1"] * hs[0] + v["v2"] * hs[1] + v["c"]
    net_o.label = "net_o"
    nets["net_o"] = net_o
    err = (Value(p["t"]) - net_o.sigmoid()) ** 2 * 0.5
    err.label = "E"
    trace = explain_backward(err, print_steps=False)
    totals = {s.parent: float(s.total) for s in trace.steps}
    grads = {k: float(v[k].grad) for k in WEIGHTS}
    grads.update({k: float(n.grad) for k, n in nets.items()})
    return grads, totals


def sgd_step(p: dict[str, float] = NETWORK) -> dict[str, float]:
    """One ``optim.SGD`` step on the network written with ``Tensor`` parameters (float64)."""
    w1 = Tensor(np.array([[p["w11"], p["w12"]], [p["w21"], p["w22"]]]), requires_grad=True)
    b1 = Tensor(np.array([p["b1"], p["b2"]]), requires_grad=True)
    w2 = Tensor(np.array([[p["v1"], p["v2"]]]), requires_grad=True)
    b2 = Tensor(np.array([p["c"]]), requires_grad=True)
    x = Tensor(np.array([[p["x1"], p["x2"]]]))
    o = F.linear(F.linear(x, w1, b1).sigmoid(), w2, b2).sigmoid()
    loss = ((o - p["t"]) ** 2).sum() * 0.5
    opt = optim.SGD([w1, b1, w2, b2], lr=p["lr"])
    opt.zero_grad()
    loss.backward()
    opt.step()
    flat = [*w1.data.ravel(), *b1.data, *w2.data.ravel(), *b2.data]
    return dict(zip(WEIGHTS, (float(a) for a in flat)))


def _plot(p: dict[str, float], r: dict[str, float], out: str | os.PathLike[str]) -> Path:
    fig = figure(9.0, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_axis_off()
    pos = {"x1": (0, 2), "x2": (0, 0), "h1": (2.2, 2), "h2": (2.2, 0), "o": (4.4, 1)}
    # edge, weight name, where along the edge its label sits
    edges = [("x1", "h1", "w11", 0.5), ("x2", "h1", "w12", 0.3), ("x1", "h2", "w21", 0.3),
             ("x2", "h2", "w22", 0.5), ("h1", "o", "v1", 0.5), ("h2", "o", "v2", 0.5)]
    for a, b, w, t in edges:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        d = np.array([xb - xa, yb - ya]) / math.hypot(xb - xa, yb - ya)
        ax.annotate("", xy=(xb - RADIUS * d[0], yb - RADIUS * d[1]),
                    xytext=(xa + RADIUS * d[0], ya + RADIUS * d[1]),
                    arrowprops={"arrowstyle": "->", "color": "#64748b"})
        ax.text(xa + (xb - xa) * t, ya + (yb - ya) * t + 0.08,
                f"{w}={p[w]:g}\n∂E/∂{w}={r['d' + w]:.3e}", fontsize=7, ha="center",
                va="bottom", color="#1e293b",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    labels = {
        "x1": f"x₁={p['x1']:g}", "x2": f"x₂={p['x2']:g}",
        "h1": f"h₁={r['h1']:.4f}\nδ={r['delta_h1']:.3e}",
        "h2": f"h₂={r['h2']:.4f}\nδ={r['delta_h2']:.3e}",
        "o": f"o={r['o']:.4f}\nδ={r['delta_o']:.3e}\nE={r['E']:.5f}",
    }
    for name, (x, y) in pos.items():
        color = "#dbeafe" if name.startswith("x") else "#ffedd5"
        ax.add_patch(_circle((x, y), color))
        ax.text(x, y, labels[name], ha="center", va="center", fontsize=8)
    ax.set_xlim(-0.6, 5.0)
    ax.set_ylim(-0.6, 2.7)
    ax.set_aspect("equal")
    ax.set_title(f"Forward signal and δ terms (target t={p['t']:g}); one SGD step η={p['lr']:g}")
    return save_figure(fig, out, "backprop_by_hand.png")


def _circle(center: tuple[float, float], color: str) -> Any:
    from matplotlib.patches import Circle

    return Circle(center, RADIUS, facecolor=color, edgecolor="#334155")


def run(fast: bool = False, out: str | os.PathLike[str] = "lessons-out", data: Any = None,
        seed: int = 0) -> LessonResult:
    """Backprop by hand against the engine, the stepper and one SGD step (``fast``,
    ``data`` and ``seed`` change nothing: the lesson is a handful of floats)."""
    p = NETWORK
    hand = by_hand(p)
    engine, stepper = by_engine(p)
    stepped = sgd_step(p)
    forward = format_table(["forward", "value"], [[k, hand[k]] for k in
                           ("net_h1", "h1", "net_h2", "h2", "net_o", "o", "E")])
    rows, diffs = [], []
    for k, net in (("delta_o", "net_o"), ("delta_h1", "net_h1"), ("delta_h2", "net_h2")):
        rows.append([f"{k} (= ∂E/∂{net})", f"{hand[k]:.12e}", f"{engine[net]:.12e}",
                     f"{stepper[net]:.12e}"])
        diffs += [abs(hand[k] - engine[net]), abs(hand[k] - stepper[net])]
    for w in WEIGHTS:
        rows.append([f"∂E/∂{w}", f"{hand['d' + w]:.12e}", f"{engine[w]:.12e}",
                     f"{stepper[w]:.12e}"])
        diffs += [abs(hand["d" + w] - engine[w]), abs(hand["d" + w] - stepper[w])]
    grads = format_table(["quantity", "by hand", "engine .grad", "stepper total"], rows)
    upd = [[w, f"{p[w]:.12f}", f"{hand['new_' + w]:.12f}", f"{stepped[w]:.12f}"]
           for w in WEIGHTS]
    update = format_table(["weight", "before", "w − η ∂E/∂w by hand", "after optim.SGD"], upd)
    max_update = max(abs(hand["new_" + w] - stepped[w]) for w in WEIGHTS)
    numbers = {"max_grad_diff": max(diffs), "max_update_diff": max_update,
               "hand": hand, "engine": engine, "stepper": stepper, "sgd": stepped}
    table = (f"{forward}\n\n{grads}\n\nmax |by hand − engine/stepper| = {max(diffs):.3g}\n\n"
             f"{update}\n\nmax |hand update − SGD step| = {max_update:.3g}")
    return LessonResult("backprop-by-hand",
                        "the textbook δ terms equal the engine's gradients; one update by hand "
                        "equals one optimizer step", table, [_plot(p, hand, out)], numbers)
