"""Lesson ``softmax-stability``: why the loss is computed from the logits.

Cross-entropy of logits z with target class y is

    L = −log softmax(z)_y = −z_y + log Σⱼ exp(zⱼ),      ∂L/∂z = softmax(z) − onehot(y).

Three ways to compute it, all with the engine's own ops:

* **naive**: p = exp(z) / Σ exp(z), then −log p_y.  exp overflows for z > 88.7 in float32
  (709.8 in float64): inf / inf is NaN, and the gradient is NaN.
* **softmax, then log**: the registry's softmax subtracts max(z) first, so nothing
  overflows, but a small probability underflows to 0: log 0 = −∞, the loss is infinite and
  the backward pass multiplies ∞ by 0 — the gradient is NaN (or, just before underflow,
  computed from a denormal with a handful of significant bits: wrong).
* **fused** (``F.cross_entropy``): L = log Σ exp(z − m) + m − z_y with m = max(z), and its
  backward is softmax − onehot directly; finite and exact at any scale.

The exact values are computed here in float64 with the same shift (the reference).  The
lesson sweeps the logit scale s for z = s·(1, 0, −1) with target the last class.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..nn import functional as F
from ..tensor import Tensor
from .common import LessonResult, figure, format_table, save_figure

__all__ = ["SCALES", "evaluate", "exact", "methods", "run"]

#: Logit scales of the table.
SCALES = (1.0, 10.0, 40.0, 50.0, 60.0, 100.0, 1000.0)
TARGET = np.array([2])


def _logits(scale: float, dtype: type) -> np.ndarray:
    return np.array([[scale, 0.0, -scale]], dtype=dtype)


def exact(scale: float) -> tuple[float, np.ndarray]:
    """The reference loss and gradient in float64, computed with the max shift."""
    z = _logits(scale, np.float64)[0]
    m = z.max()
    lse = m + np.log(np.exp(z - m).sum())
    p = np.exp(z - lse)
    return float(lse - z[2]), p - np.eye(3)[2]


def _naive(z: Tensor) -> Tensor:
    e = z.exp()
    return F.nll_loss((e / e.sum(axis=1, keepdims=True)).log(), TARGET)


def _softmax_then_log(z: Tensor) -> Tensor:
    return F.nll_loss(z.softmax().log(), TARGET)


def _fused(z: Tensor) -> Tensor:
    return F.cross_entropy(z, TARGET)


def methods() -> dict[str, Callable[[Tensor], Tensor]]:
    """The three ways, by name."""
    return {"naive exp/sum, log": _naive, "softmax, then log": _softmax_then_log,
            "fused cross_entropy": _fused}


def evaluate(method: Callable[[Tensor], Tensor], scale: float,
             dtype: type) -> tuple[float, np.ndarray]:
    """(loss, gradient with respect to the logits) of ``method`` at ``scale``."""
    z = Tensor(_logits(scale, dtype), requires_grad=True)
    with np.errstate(all="ignore"):  # the overflows are the lesson
        loss = method(z)
        loss.backward()
    return float(loss.data), np.asarray(z.grad, dtype=np.float64)[0]


def _error(value: float, grad: np.ndarray, scale: float) -> tuple[float, float]:
    """(relative error of the loss, max abs error of the gradient); inf when not finite."""
    ref_loss, ref_grad = exact(scale)
    if not np.isfinite(value) or not np.all(np.isfinite(grad)):
        return float("inf"), float("inf")
    return abs(value - ref_loss) / abs(ref_loss), float(np.max(np.abs(grad - ref_grad)))


def _fmt(loss: float, grad: np.ndarray) -> str:
    g = ", ".join(f"{v:.3g}" for v in grad)
    return f"{loss:.6g} [{g}]"


def run(fast: bool = False, out: str | os.PathLike[str] = "lessons-out", data: Any = None,
        seed: int = 0) -> LessonResult:
    """The table (float32, the training dtype) and the sweep figure (float32 and float64);
    ``fast``, ``data`` and ``seed`` change nothing (three logits per case)."""
    rows, numbers = [], {"float32": {}, "float64": {}}
    for scale in SCALES:
        ref_loss, ref_grad = exact(scale)
        row = [f"{scale:g}", _fmt(ref_loss, ref_grad)]
        for name, method in methods().items():
            loss, grad = evaluate(method, scale, np.float32)
            row.append(_fmt(loss, grad))
            numbers["float32"].setdefault(name, {})[scale] = _error(loss, grad, scale)
        rows.append(row)
    table = ("z = s·(1, 0, −1), target class 2, float32: loss [∂L/∂z]\n"
             + format_table(["s", "exact (float64)", *methods()], rows))
    sweep = np.logspace(0, 3.3, 60)
    fig = figure(11.0, 4.2)
    for i, dtype in enumerate((np.float32, np.float64)):
        ax = fig.add_subplot(1, 2, i + 1)
        for k, ((name, method), style) in enumerate(zip(methods().items(), ("-o", "-s", "-^"))):
            errs = []
            for s in sweep:
                loss, grad = evaluate(method, float(s), dtype)
                errs.append(_error(loss, grad, float(s))[1])
            errs_arr = np.asarray(errs)
            shown = np.where(np.isfinite(errs_arr), np.maximum(errs_arr, 1e-17), np.nan)
            ax.loglog(sweep, shown, style, ms=3, label=name)
            bad = ~np.isfinite(errs_arr)
            if bad.any():
                ax.plot(sweep[bad], np.full(bad.sum(), 10.0 ** (1 - k)), "x", color=ax.lines[-1].get_color(),
                        ms=5)
            if dtype is np.float64:
                numbers["float64"][name] = {float(s): float(e) for s, e in zip(sweep, errs_arr)}
        ax.set_title(f"{np.dtype(dtype).name}: gradient error\n(×: NaN or inf; an exact 0 is drawn at 1e-17)")
        ax.set_xlabel("logit scale s")
        ax.set_ylabel("max |∂L/∂z − exact|")
        ax.set_ylim(1e-18, 1e2)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="center left")
    return LessonResult(
        "softmax-stability",
        "naive softmax-then-log overflows or underflows (NaN/inf loss, wrong gradient); the "
        "fused log-softmax cross-entropy stays exact", table,
        [save_figure(fig, out, "softmax_stability.png")], numbers)
