"""Inverted dropout as a registry op: zero activations at random while training.

Each element is kept with probability 1 − p and scaled by 1/(1 − p), so the expected output
equals the input and evaluation needs no rescaling: there dropout is the identity.
"""

from __future__ import annotations

import numpy as np

from ..registry import tensor_op

__all__ = ["dropout"]


@tensor_op(f="y = x · m / (1 − p),  m ~ Bernoulli(1 − p)   (y = x in eval)",
           grads=("∂x = G · m / (1 − p)   (G in eval)",), category="nn", symbol="dropout",
           params={"p": 0.5, "training": True, "rng": None})
class dropout:
    """Inverted dropout with drop probability ``p``; ``rng`` (a Generator) draws the mask.

    The scaled mask s = m/(1 − p) is saved, and the op is y = x·s elementwise, so the local
    gradient is s itself: dropped units get no gradient, kept ones get G/(1 − p).
    """

    def forward(x, p, training, rng):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout: p must be in [0, 1), got {p}")
        if not training or p == 0.0:
            return x, None
        rng = rng if rng is not None else np.random.default_rng()
        scale = np.asarray(1.0 / (1.0 - p), dtype=x.dtype)
        mask = (rng.random(x.shape, dtype=np.float32) >= p).astype(x.dtype)
        mask *= scale
        return x * mask, mask

    def backward(node, g):
        mask = node._ctx
        return (g if mask is None else g * mask,)
