"""Lesson ``activations``: every activation of the registry and its derivative.

Each panel is drawn from the registry entry's own ``f`` and ``df`` (the formulas the
engines differentiate with; there is no second copy here), evaluated on numpy arrays with
the array backend ``m``.  The lesson prints f and f′ at a few points, the *saturation
ranges* — where |f′(x)| < 10⁻³, so almost no gradient passes — and the maximum of the
sigmoid's derivative: σ′(x) = σ(x)(1 − σ(x)) ≤ 1/4, reached at x = 0, which is why a chain
of sigmoids multiplies the gradient by at most 1/4 per layer.

As a check that the drawn f′ is the derivative of the drawn f, the lesson also compares
``df`` with central differences of ``f`` (float64, step 10⁻⁵) away from the kinks.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..numerics import ARRAY
from ..registry import ONE, Unary, activation_ops
from .common import LessonResult, figure, format_table, save_figure

__all__ = ["POINTS", "SATURATION", "derivative", "run", "saturation_ranges", "value"]

#: The points at which f and f′ are tabulated.
POINTS = (-5.0, -1.0, 0.0, 1.0, 5.0)
#: |f′| below this counts as saturated.
SATURATION = 1e-3
#: The x range of every panel.
PLOT_RANGE = (-8.0, 8.0)
#: The range searched for saturation.
SPAN = (-20.0, 20.0)


def value(op: Unary, x: np.ndarray) -> np.ndarray:
    """f(x) from the registry entry's own ``f`` (float64)."""
    return np.asarray(op.f(ARRAY, np.asarray(x, dtype=np.float64), **op.params), dtype=np.float64)


def derivative(op: Unary, x: np.ndarray) -> np.ndarray:
    """f′(x) from the registry entry's own ``df`` (written in terms of x and y = f(x))."""
    x = np.asarray(x, dtype=np.float64)
    if op.df is ONE:
        return np.ones_like(x)
    dy = op.df(ARRAY, x, value(op, x), **op.params)
    return np.broadcast_to(np.asarray(dy, dtype=np.float64), x.shape).copy()


def saturation_ranges(op: Unary, n: int = 40001) -> list[tuple[float, float]]:
    """The intervals of :data:`SPAN` where |f′(x)| < :data:`SATURATION` (on an n-point grid;
    an interval touching the edge of the span extends beyond it)."""
    x = np.linspace(*SPAN, n)
    flat = np.abs(derivative(op, x)) < SATURATION
    ranges, start = [], None
    for i, is_flat in enumerate(flat):
        if is_flat and start is None:
            start = i
        if start is not None and (not is_flat or i == n - 1):
            stop = i if is_flat else i - 1
            lo = -math.inf if start == 0 else float(x[start])
            hi = math.inf if stop == n - 1 else float(x[stop])
            ranges.append((lo, hi))
            start = None
    return ranges


def _max_fd_error(op: Unary) -> float:
    """max |df − central difference of f| / max(1, |df|) over the domain, off the kinks."""
    lo, hi = op.domain
    x = np.linspace(lo, hi, 401)
    for k in op.kinks:
        x = x[np.abs(x - k) > 1e-3]
    h = 1e-5
    numeric = (value(op, x + h) - value(op, x - h)) / (2 * h)
    analytic = derivative(op, x)
    return float(np.max(np.abs(analytic - numeric) / np.maximum(1.0, np.abs(analytic))))


def _fmt_range(r: tuple[float, float]) -> str:
    if r[1] - r[0] < 0.1:  # a zero crossing of f′ (a minimum of f), not a flat range
        return f"f′ = 0 near {(r[0] + r[1]) / 2:.2f}"
    lo, hi = (("−∞" if math.isinf(v) and v < 0 else "∞" if math.isinf(v) else f"{v:.2f}")
              for v in r)
    return f"({lo}, {hi})"


def _plot(ops: list[Unary], out: str | os.PathLike[str]) -> Path:
    cols = 4
    rows = math.ceil(len(ops) / cols)
    fig = figure(4.0 * cols, 3.0 * rows)
    for i, op in enumerate(ops):
        ax = fig.add_subplot(rows, cols, i + 1)
        lo, hi = PLOT_RANGE
        x = np.union1d(np.linspace(lo, hi, 801), [k for k in op.kinks if lo < k < hi])
        ax.plot(x, value(op, x), color="#2563eb", label="f(x)")
        dy = derivative(op, x)
        for k in op.kinks:  # break the derivative's line at a jump
            dy = np.where(x == k, np.nan, dy)
        ax.plot(x, dy, color="#ea580c", linestyle="--", label="f′(x)")
        for r in (r for r in saturation_ranges(op) if r[1] - r[0] >= 0.1):
            a, b = max(r[0], lo), min(r[1], hi)
            if a < b:
                ax.axvspan(a, b, color="#94a3b8", alpha=0.25, lw=0)
        ax.axhline(0, color="#94a3b8", lw=0.6)
        ax.axvline(0, color="#94a3b8", lw=0.6)
        params = ", ".join(f"{k}={v}" for k, v in op.params.items())
        ax.set_title(f"{op.name}({params})" if params else op.name)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(loc="upper left", fontsize=8)
    fig.suptitle("Registry activations: f (solid), f′ (dashed), grey: |f′| < 1e-3")
    return save_figure(fig, out, "activations.png")


def run(fast: bool = False, out: str | os.PathLike[str] = "lessons-out", data: Any = None,
        seed: int = 0) -> LessonResult:
    """Tabulate and draw every elementwise registry activation with its derivative.

    ``fast`` changes nothing here (the lesson takes well under a second); ``data`` and
    ``seed`` are unused (the claim needs no data).
    """
    ops = [op for op in activation_ops() if isinstance(op, Unary)]
    rows, numbers = [], {"saturation": {}, "fd_error": {}, "f": {}, "df": {}}
    for op in ops:
        f_at, df_at = value(op, np.array(POINTS)), derivative(op, np.array(POINTS))
        sat = saturation_ranges(op)
        numbers["saturation"][op.name] = sat
        numbers["fd_error"][op.name] = _max_fd_error(op)
        numbers["f"][op.name], numbers["df"][op.name] = f_at.tolist(), df_at.tolist()
        rows.append([op.name, *(f"{a:.3g} / {b:.3g}" for a, b in zip(f_at, df_at)),
                     ", ".join(_fmt_range(r) for r in sat) or "none"])
    grid = np.linspace(-20, 20, 400001)
    sigmoid = next(op for op in ops if op.name == "sigmoid")
    d_sig = derivative(sigmoid, grid)
    numbers["sigmoid_df_max"] = float(d_sig.max())
    numbers["sigmoid_df_argmax"] = float(grid[int(d_sig.argmax())])
    headers = ["activation", *(f"f/f′ at {p:g}" for p in POINTS), "saturated (|f′| < 1e-3)"]
    table = (format_table(headers, rows)
             + f"\n\nmax σ′(x) on [−20, 20] = {numbers['sigmoid_df_max']:.17g} at x = "
             f"{numbers['sigmoid_df_argmax']:g}  (bound: 1/4)")
    return LessonResult(
        "activations",
        "each activation and its derivative from the registry; saturation where |f′| < 1e-3; "
        "σ′ ≤ 1/4",
        table, [_plot(ops, out)], numbers)
