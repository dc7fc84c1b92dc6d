"""The activation gallery: every activation of the registry plotted with its derivative.

>>> from tinygrad_edu.registry import get
>>> svg = activation_svg(get("tanh"))
>>> svg.startswith("<svg") and "polyline" in svg
True

The plots are plain SVG polylines computed here from each entry's own ``f`` and ``df``
(no plotting library), so adding an activation to the registry adds its plot: run
``tinygrad-edu graph --activations gallery.html``.  Elementwise activations are drawn over
their ``domain``; the derivative's polyline is broken at the entry's ``kinks`` so a jump
(ReLU at 0) is not drawn as a steep line.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from ..numerics import ARRAY
from ..registry import ONE, Op, Unary, activation_ops
from . import _fmt

__all__ = ["activation_svg", "gallery_html", "sample", "write_activation_gallery"]

F_COLOR = "#2563eb"
DF_COLOR = "#ea580c"


def sample(op: Unary, n: int = 241) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x`` over the op's domain, ``f(x)`` and ``f'(x)`` from the registry's own formulas."""
    lo, hi = op.domain
    x = np.linspace(lo, hi, n)
    x = np.union1d(x, [k for k in op.kinks if lo < k < hi])  # sample the kinks exactly
    y = np.asarray(op.f(ARRAY, x, **op.params), dtype=np.float64)
    dy = np.ones_like(x) if op.df is ONE else op.df(ARRAY, x, y, **op.params)
    return x, y, np.broadcast_to(np.asarray(dy, dtype=np.float64), x.shape)


class _Frame:
    """Maps data coordinates to the pixel box of one plot."""

    def __init__(self, x: np.ndarray, ys: list[np.ndarray], width: int, height: int) -> None:
        self.width, self.height, self.pad = width, height, 46
        values = np.concatenate([y[np.isfinite(y)] for y in ys])
        lo, hi = (float(values.min()), float(values.max())) if values.size else (-1.0, 1.0)
        if hi - lo < 1e-9:
            lo, hi = lo - 1.0, hi + 1.0
        margin = 0.08 * (hi - lo)
        self.x0, self.x1 = float(x[0]), float(x[-1])
        self.y0, self.y1 = lo - margin, hi + margin

    def px(self, x: float) -> float:
        return self.pad + (x - self.x0) / (self.x1 - self.x0) * (self.width - self.pad - 8)

    def py(self, y: float) -> float:
        return 8 + (self.y1 - y) / (self.y1 - self.y0) * (self.height - self.pad - 8)


def _polylines(frame: _Frame, x: np.ndarray, y: np.ndarray, kinks: tuple, color: str,
               dash: str = "") -> list[str]:
    """One polyline per piece between kinks (and between non-finite values)."""
    piece = np.searchsorted(np.asarray(sorted(kinks), dtype=float), x, side="left")
    out = []
    for k in np.unique(piece):
        mask = (piece == k) & np.isfinite(y)
        if mask.sum() < 2:
            continue
        points = " ".join(f"{frame.px(a):.1f},{frame.py(b):.1f}" for a, b in zip(x[mask], y[mask]))
        style = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{points}" fill="none" stroke="{color}" '
                   f'stroke-width="2"{style}/>')
    return out


def _axes(frame: _Frame) -> list[str]:
    w, h, pad = frame.width, frame.height, frame.pad
    parts = [(f'<rect x="{pad}" y="8" width="{w - pad - 8}" height="{h - pad - 8}" '
             'fill="white" stroke="#cbd5e1"/>')]
    if frame.x0 < 0 < frame.x1:
        parts.append(f'<line x1="{frame.px(0):.1f}" y1="8" x2="{frame.px(0):.1f}" '
                     f'y2="{h - pad}" stroke="#94a3b8"/>')
    if frame.y0 < 0 < frame.y1:
        parts.append(f'<line x1="{pad}" y1="{frame.py(0):.1f}" x2="{w - 8}" '
                     f'y2="{frame.py(0):.1f}" stroke="#94a3b8"/>')
    text = 'font-size="10" fill="#475569" font-family="Helvetica, sans-serif"'
    parts += [
        f'<text x="{pad}" y="{h - pad + 13}" {text}>{_fmt.num(frame.x0)}</text>',
        (f'<text x="{w - 8}" y="{h - pad + 13}" text-anchor="end" {text}>{_fmt.num(frame.x1)}'
        "</text>"),
        f'<text x="{pad - 3}" y="16" text-anchor="end" {text}>{_fmt.num(frame.y1)}</text>',
        f'<text x="{pad - 3}" y="{h - pad}" text-anchor="end" {text}>{_fmt.num(frame.y0)}</text>',
        (f'<text x="{pad + 6}" y="{h - 6}" {text}><tspan fill="{F_COLOR}">━ f(x)</tspan>'
        f'  <tspan fill="{DF_COLOR}">┅ f′(x)</tspan></text>'),
    ]
    return parts


def activation_svg(op: Unary, width: int = 320, height: int = 220) -> str:
    """One activation's plot: f (solid blue) and f′ (dashed orange) over its domain."""
    x, y, dy = sample(op)
    frame = _Frame(x, [y, dy], width, height)
    parts = _axes(frame)
    parts += _polylines(frame, x, y, op.kinks, F_COLOR)
    parts += _polylines(frame, x, dy, op.kinks, DF_COLOR, dash="5,3")
    body = "\n".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{op.name}">\n{body}\n</svg>')


def _card(op: Op) -> str:
    doc = html.escape((op.__doc__ or op.name).splitlines()[0])
    params = ", ".join(f"{k}={v!r}" for k, v in op.params.items())
    title = html.escape(f"{op.name}({params})" if params else op.name)
    plot = activation_svg(op) if isinstance(op, Unary) else (
        '<p class="note">not elementwise: no single curve (see the formulas)</p>')
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
.f, .df {{ font-size: 12px; font-family: ui-monospace, monospace; margin-top: 4px; }}
.f {{ color: {F_COLOR}; }} .df {{ color: {DF_COLOR}; }}
</style></head>
<body><h1>Activation gallery</h1>
<p>Every activation in the registry, drawn from its own forward formula and local gradient
(f in blue, f′ dashed orange). Add a registry entry and it appears here.</p>
<main>
{cards}
</main></body></html>
"""


def write_activation_gallery(path: str | Path) -> Path:
    """Write the gallery page to ``path`` (self-contained HTML with inline SVG)."""
    path = Path(path)
    path.write_text(gallery_html(), encoding="utf-8")
    return path
