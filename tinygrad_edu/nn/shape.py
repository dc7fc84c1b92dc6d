"""Shape ops for images: flatten the feature maps (the ``flatten`` op and the :class:`Flatten`
layer), zero-pad the spatial dimensions (the ``pad`` op)."""

from __future__ import annotations

import numpy as np

from ..registry import tensor_op
from ..tensor import Tensor
from .conv import IntPair, pair
from .module import Module

__all__ = ["Flatten", "flatten", "pad", "pad_widths"]


@tensor_op(f="x reshaped to (d₀, …, d_{s−1}, d_s·…·d_last)", grads=("∂x = G reshaped back",),
           category="nn", symbol="flatten", params={"start_dim": 1})
class flatten:
    """Merge every axis from ``start_dim`` on into one (C-order, as PyTorch):
    (N, C, H, W) -> (N, C·H·W).  A pure relabelling, so the gradient is reshaped back."""

    def forward(x, start_dim):
        start = start_dim % x.ndim if x.ndim else 0
        return x.reshape(x.shape[:start] + (-1,)), None

    def backward(node, g):
        return (g.reshape(node.parents[0].data.shape),)

    def backward_graph(node, g):
        return (g.reshape(node.parents[0].data.shape),)


class Flatten(Module):
    """(N, C, H, W) -> (N, C·H·W): merge every axis from ``start_dim`` on."""

    def __init__(self, start_dim: int = 1) -> None:
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x: Tensor) -> Tensor:
        return flatten(x, start_dim=self.start_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}"


def pad_widths(padding: IntPair) -> tuple[int, int]:
    """(pad_h, pad_w) from an int or a pair; negative values are an error."""
    ph, pw = pair(padding)
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    return ph, pw


@tensor_op(f="y = x surrounded by p zeros on each side of the last two axes",
           grads=("∂x = G with the border cropped off",), category="nn", symbol="pad",
           params={"padding": 0})
class pad:
    """Zero padding of the spatial (last two) axes: ``padding`` = p or (p_h, p_w) on both
    sides.  y is x placed inside zeros, so ∂x is the centre of G."""

    def forward(x, padding):
        ph, pw = pad_widths(padding)
        widths = [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)]
        return np.pad(x, widths), (ph, pw)

    def backward(node, g):
        ph, pw = node.ctx
        h, w = g.shape[-2], g.shape[-1]
        return (g[..., ph:h - ph, pw:w - pw].copy(),)

    def backward_graph(node, g):
        ph, pw = node.ctx
        h, w = g.shape[-2], g.shape[-1]
        return (g[..., ph:h - ph, pw:w - pw],)
