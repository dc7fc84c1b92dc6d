"""The gradient-flow figure: the gradient's norm per layer, on a log scale, in one call.

>>> from tinygrad_edu import nn, viz                              # doctest: +SKIP
>>> loss.backward(); viz.plot_grad_flow(model, "grad_flow.png")   # doctest: +SKIP

Layers run from the input (left) to the output (right).  A healthy network has norms
within an order of magnitude or two of each other; a line that drops by a factor ~4 per
layer towards the input is the vanishing gradient of a deep sigmoid net (σ' ≤ 1/4), one
that climbs to 1e+3 and beyond is an explosion.  Matplotlib is imported on the call only.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..fileio import atomic_write_bytes
from ..nn.module import Module
from ..nn.utils import GradNorms, grad_norms

__all__ = ["plot_grad_flow"]


def _series(item: Any) -> GradNorms:
    return item if isinstance(item, GradNorms) else grad_norms(item)


def plot_grad_flow(
    model_or_norms: Module | GradNorms | Sequence[Module | GradNorms] | dict[str, Any],
    path: str | Path | None = None,
    title: str = "gradient norm per layer",
) -> Any:
    """Plot ``‖∂loss/∂θ_layer‖₂`` for every layer (log scale) and return the matplotlib Figure.

    ``model_or_norms`` is a model after ``backward()``, a :class:`GradNorms` report, or
    several of them to compare: a list (labelled "run 0", "run 1"...) or a dict
    ``{label: model_or_norms}`` (e.g. one entry per epoch, or a healthy and a broken run).
    Layers without a gradient are left out; a zero norm is drawn at the bottom edge.
    With ``path`` (``.png``, ``.svg``, ``.pdf``) the figure is also written there
    (atomically).
    """
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    if isinstance(model_or_norms, dict):
        runs = {str(k): _series(v) for k, v in model_or_norms.items()}
    elif isinstance(model_or_norms, (list, tuple)):
        runs = {f"run {i}": _series(v) for i, v in enumerate(model_or_norms)}
    else:
        runs = {"": _series(model_or_norms)}
    layers: list[str] = []
    for norms in runs.values():
        layers += [name for name in norms.per_layer if name not in layers]
    if not layers:
        raise ValueError("plot_grad_flow: no layer has a gradient (call backward() first)")
    positive = [v for n in runs.values() for v in n.per_layer.values() if v > 0 and
                math.isfinite(v)]
    floor = min(positive) / 10 if positive else 1e-12
    fig = Figure(figsize=(max(6.0, 0.42 * len(layers) + 2.5), 3.8), dpi=110)
    ax = fig.subplots()
    for label, norms in runs.items():
        xs = [i for i, name in enumerate(layers) if name in norms.per_layer]
        ys = [max(norms.per_layer[layers[i]], floor) for i in xs]
        ax.plot(xs, ys, marker="o", markersize=4, linewidth=1.6, label=label or None)
    ax.set_yscale("log")
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels([name or "(model)" for name in layers], rotation=60, ha="right",
                       fontsize=8)
    ax.set_xlabel("layer (input → output)")
    ax.set_ylabel("‖grad‖₂ of the layer")
    ax.set_title(title)
    ax.grid(True, which="major", axis="y", alpha=0.4)
    if len(runs) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        path = Path(path)
        buffer = io.BytesIO()
        fig.savefig(buffer, format=path.suffix.lstrip(".") or "png")
        atomic_write_bytes(path, buffer.getvalue())
    return fig
