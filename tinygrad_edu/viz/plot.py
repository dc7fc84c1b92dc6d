"""The activation gallery: every activation of the registry plotted with its derivatives.

>>> from tinygrad_edu.registry import get
>>> svg = activation_svg(get("tanh"))
>>> svg.lstrip().startswith("<?xml") and "<svg" in svg
True

Each plot is drawn by matplotlib from the entry's own ``f`` and ``df`` (the registry's
formulas, evaluated here), on real axes: ticks at 0 and ±1 (and the usual steps between),
the lines x = 0 and y = 0, a legend.  Adding an activation to the registry adds its plot:
run ``tinygrad-edu graph --activations gallery.html``.  A curve is broken at the entry's
``kinks``, so a jump (ReLU's derivative at 0) is not drawn as a steep line.

To add a curve to every panel (a second derivative, say), append a :class:`Curve` in
:func:`curves`; :func:`draw_panel` draws whatever list it is given.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..higher_order import derivative
from ..numerics import ARRAY
from ..registry import ONE, Op, Unary, activation_ops

__all__ = ["Curve", "activation_svg", "curves", "draw_panel", "gallery_html", "sample",
           "write_activation_gallery"]

F_COLOR = "#2563eb"
DF_COLOR = "#ea580c"
D2F_COLOR = "#16a34a"


@dataclass
class Curve:
    """One line of a panel: its values over the panel's x, legend text and style."""

    y: np.ndarray
    label: str
    color: str
    linestyle: str = "-"


def sample(op: Unary, n: int = 241) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x`` over the op's domain, ``f(x)`` and ``f'(x)`` from the registry's own formulas."""
    lo, hi = op.domain
    x = np.linspace(lo, hi, n)
    x = np.union1d(x, [k for k in op.kinks if lo < k < hi])  # sample the kinks exactly
    y = np.asarray(op.f(ARRAY, x, **op.params), dtype=np.float64)
    dy = np.ones_like(x) if op.df is ONE else op.df(ARRAY, x, y, **op.params)
    return x, y, np.broadcast_to(np.asarray(dy, dtype=np.float64), x.shape)


def curves(op: Unary) -> tuple[np.ndarray, list[Curve]]:
    """The panel of ``op``: its x, and the curves f (solid blue) and f′ (dashed orange) from
    the registry's written formulas, and f″ (dotted green) computed by the engine: the
    gradient of the gradient (:func:`~tinygrad_edu.higher_order.derivative`), from the same
    written ``df`` evaluated on graph nodes."""
    x, y, dy = sample(op)
    d2y = derivative(op, x, order=2, **op.params)
    return x, [Curve(y, "f(x)", F_COLOR), Curve(dy, "f′(x)", DF_COLOR, "--"),
               Curve(d2y, "f″(x) (engine)", D2F_COLOR, ":")]


def _ticks(lo: float, hi: float, always: tuple[float, ...] = (-1.0, 0.0, 1.0)) -> list[float]:
    """Evenly spaced ticks, and the ``always`` ones (0 and ±1) whenever they are in view."""
    step = next(s for s in (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0) if (hi - lo) / s <= 8)
    ticks = set(np.arange(np.ceil(lo / step), np.floor(hi / step) + 1) * step)
    ticks |= {t for t in always if lo <= t <= hi}
    return sorted(float(t) + 0.0 for t in ticks)  # + 0.0: no "-0" tick


def draw_panel(ax: Any, x: np.ndarray, lines: list[Curve], kinks: tuple = ()) -> None:
    """Draw ``lines`` over ``x`` on the matplotlib axes ``ax``: each curve broken at the
    ``kinks``, the y range at least [−1.2, 1.2] (so 0 and ±1 are ticked), the zero lines,
    light grid, legend."""
    piece = np.searchsorted(np.asarray(sorted(kinks), dtype=float), x, side="left")
    for curve in lines:
        for k in np.unique(piece):
            mask = (piece == k) & np.isfinite(curve.y)
            ax.plot(x[mask], curve.y[mask], color=curve.color, linestyle=curve.linestyle,
                    linewidth=2, label=curve.label if k == piece[0] else None)
    values = np.concatenate([c.y[np.isfinite(c.y)] for c in lines] + [np.array([-1.2, 1.2])])
    lo, hi = float(values.min()), float(values.max())
    margin = 0.06 * (hi - lo)
    ax.set_ylim(lo - margin, hi + margin)
    ax.set_xlim(float(x[0]), float(x[-1]))
    ax.set_yticks(_ticks(lo - margin, hi + margin))
    ax.set_xticks(_ticks(float(x[0]), float(x[-1]), always=(0.0,)))
    ax.axhline(0.0, color="#64748b", linewidth=0.8)
    ax.axvline(0.0, color="#64748b", linewidth=0.8)
    ax.grid(True, color="#e2e8f0", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=8)
    ax.set_xlabel("x", fontsize=9, labelpad=1)
    ax.legend(fontsize=8, loc="upper left", frameon=False)


def activation_svg(op: Unary, width: int = 320, height: int = 230) -> str:
    """One activation's plot as SVG text (``width`` × ``height`` px), text kept as text."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    x, lines = curves(op)
    with matplotlib.rc_context({"svg.fonttype": "none", "font.family": "DejaVu Sans",
                                "svg.hashsalt": op.name}):
        fig = Figure(figsize=(width / 96, height / 96), dpi=96)
        ax = fig.add_subplot()
        draw_panel(ax, x, lines, op.kinks)
        fig.tight_layout(pad=0.4)
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _doc_html(text: str) -> str:
    """A docstring line as HTML: ``code`` spans (RST double backticks) as <code>."""
    return re.sub(r"``(.+?)``", r"<code>\1</code>", html.escape(text))


def _card(op: Op) -> str:
    doc = _doc_html((op.__doc__ or op.name).splitlines()[0])
    params = ", ".join(f"{k}={v!r}" for k, v in op.params.items())
    title = html.escape(f"{op.name}({params})" if params else op.name)
    plot = activation_svg(op) if isinstance(op, Unary) else (
        '<p class="note">not elementwise: no single curve (see the formulas)</p>')
    plot = re.sub(r"^<\?xml[^>]*>\s*(<!DOCTYPE[^>]*>\s*)?", "", plot)  # inline: no prolog
    plot = re.sub(r"<metadata>.*?</metadata>\s*", "", plot, flags=re.DOTALL)
    grads = "".join(f"<div>{html.escape(t)}</div>" for t in op.grad_texts)
    return (f'<section class="card" id="{html.escape(op.name)}"><h2>{title}</h2>'
            f"<p>{doc}</p>{plot}<div class=\"f\">f = {html.escape(op.f_text)}</div>"
            f'<div class="df">{grads}</div></section>')


def gallery_html() -> str:
    """The gallery page: one card per registry activation (plot, formulas, docstring)."""
    cards = "\n".join(_card(op) for op in activation_ops())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Activation gallery</title>
<style>
body {{ font-family: system-ui, Helvetica, sans-serif; margin: 18px; background: #f8fafc; }}
main {{ display: flex; flex-wrap: wrap; gap: 14px; }}
.card {{ background: white; border: 1px solid #cbd5e1; border-radius: 8px; padding: 10px;
         width: 330px; }}
.card h2 {{ font-size: 16px; margin: 0 0 4px; font-family: ui-monospace, monospace; }}
.card p {{ font-size: 12px; color: #475569; margin: 0 0 6px; }}
.card code {{ font-size: 11px; color: #0f172a; }}
.f, .df {{ font-size: 12px; font-family: ui-monospace, monospace; margin-top: 4px; }}
.f {{ color: {F_COLOR}; }} .df {{ color: {DF_COLOR}; }}
</style></head>
<body><h1>Activation gallery</h1>
<p>Every activation in the registry, drawn from its own forward formula and local gradient
(f in blue, f′ dashed orange), and its second derivative computed by the engine
(f″ dotted green: the gradient of the gradient). Add a registry entry and it appears here.</p>
<main>
{cards}
</main></body></html>
"""


def write_activation_gallery(path: str | Path) -> Path:
    """Write the gallery page to ``path`` (self-contained HTML with inline SVG), atomically."""
    from ..fileio import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(path, gallery_html().encode("utf-8"))
    return path
