"""Inverted dropout: zero activations at random while training (the ``dropout`` op and the
:class:`Dropout` layer).

Each element is kept with probability 1 − p and scaled by 1/(1 − p), so the expected output
equals the input and evaluation needs no rescaling: there dropout is the identity.
"""

from __future__ import annotations

import numpy as np

from ..registry import tensor_op
from ..tensor import Tensor
from .init import make_rng
from .module import Module

__all__ = ["Dropout", "check_probability", "dropout"]


def check_probability(p: float, who: str) -> None:
    """The one check on a drop probability: 0 <= p < 1 (p = 1 would divide by zero)."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{who}: p must be a number in [0, 1), got {type(p).__name__} {p!r:.40}")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{who}: p must be in [0, 1), got {p}")


@tensor_op(f="y = x · m / (1 − p),  m ~ Bernoulli(1 − p)   (y = x in eval)",
           grads=("∂x = G · m / (1 − p)   (G in eval)",), category="nn", symbol="dropout",
           params={"p": 0.5, "training": True, "rng": None})
class dropout:
    """Inverted dropout with drop probability ``p``; ``rng`` (a Generator) draws the mask.

    The scaled mask s = m/(1 − p) is saved, and the op is y = x·s elementwise, so the local
    gradient is s itself: dropped units get no gradient, kept ones get G/(1 − p).
    """

    def forward(x, p, training, rng):
        check_probability(p, "dropout")
        if not training or p == 0.0:
            return x, None
        rng = rng if rng is not None else np.random.default_rng()
        scale = np.asarray(1.0 / (1.0 - p), dtype=x.dtype)
        mask = (rng.random(x.shape, dtype=np.float32) >= p).astype(x.dtype)
        mask *= scale
        return x * mask, mask

    def backward(node, g):
        mask = node.ctx
        return (g if mask is None else g * mask,)

    def backward_graph(node, g):  # the same: the mask is a constant
        mask = node.ctx
        return (g if mask is None else g * mask,)


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training mode; the identity in eval mode.

    ``rng`` (a Generator or a seed) draws the masks, so a seeded run is reproducible.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        check_probability(p, "Dropout")  # at construction: a bad p fails where it was written
        self.p = p
        self.rng = make_rng(rng)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x  # no graph node at all
        return dropout(x, p=self.p, training=True, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"
