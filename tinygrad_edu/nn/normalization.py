"""Batch normalisation (Ioffe & Szegedy, 2015) as one registry op with its full backward.

Per feature c (axis 1), over the other axes (N for (N, C); N, H, W for (N, C, H, W)), with
m values per feature:

    μ = (1/m) Σ x,   σ² = (1/m) Σ (x − μ)²,   x̂ = (x − μ)/√(σ² + ε),   y = γ x̂ + β

In training μ and σ² are the batch's (and the running averages move towards them:
r ← (1 − momentum)·r + momentum·batch value, with the unbiased variance, as PyTorch); in
evaluation the running averages are used instead and are constants.
"""

from __future__ import annotations

import numpy as np

from ..registry import tensor_op

__all__ = ["batch_norm"]


def _axes_and_shape(x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The reduced axes (all but 1) and the (1, C, 1, ...) broadcasting shape."""
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input (N, C, ...), got {x.shape}")
    axes = (0,) + tuple(range(2, x.ndim))
    return axes, (1, x.shape[1]) + (1,) * (x.ndim - 2)


@tensor_op(f="y = γ (x − μ)/√(σ² + ε) + β,  μ, σ² over N (and H, W) per channel",
           grads=("∂x = γ/√(σ²+ε) · (G − mean(G) − x̂ · mean(G x̂))   (training; γ/√(σ²+ε) · G in eval)",
                  "∂γ = Σ G x̂", "∂β = Σ G"),
           category="nn", symbol="BN",
           params={"running_mean": None, "running_var": None, "training": True,
                   "momentum": 0.1, "eps": 1e-5})
class batch_norm:
    """Batch normalisation of x (N, C, ...) per channel, with scale γ (C,) and shift β (C,).

    Training: μ and σ² depend on every x in the channel, which gives the two extra terms of
    ∂x (the gradient through μ and through σ²): with m values per channel,
    ∂x = (γ/√(σ²+ε)) (G − (1/m) Σ G − x̂ (1/m) Σ G x̂).  Evaluation: μ, σ² are the running
    statistics (constants), so ∂x = γ G/√(σ²+ε).
    """

    def forward(x, weight, bias, running_mean, running_var, training, momentum, eps):
        axes, shape = _axes_and_shape(x)
        if weight.shape != (x.shape[1],) or bias.shape != (x.shape[1],):
            raise ValueError(
                f"batch_norm: input {x.shape} has {x.shape[1]} channels but weight/bias have "
                f"shapes {weight.shape}/{bias.shape}"
            )
        if training:
            m = x.size // x.shape[1]
            if m < 2:
                raise ValueError(f"batch_norm: training needs > 1 value per channel, got {x.shape}")
            mean = x.mean(axis=axes, dtype=x.dtype)
            centred = x - mean.reshape(shape)
            var = np.square(centred).mean(axis=axes, dtype=x.dtype)
            if running_mean is not None:
                running_mean *= 1.0 - momentum
                running_mean += momentum * mean
            if running_var is not None:
                running_var *= 1.0 - momentum
                running_var += (momentum * m / (m - 1)) * var
        else:
            if running_mean is None or running_var is None:
                raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
            centred = x - running_mean.astype(x.dtype).reshape(shape)
            var = running_var.astype(x.dtype)
        inv = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        xhat = centred * inv.reshape(shape)
        y = xhat * weight.reshape(shape) + bias.reshape(shape)
        return y, (xhat, inv, axes, shape, training)

    def backward(node, g):
        (x, weight, bias), (xhat, inv, axes, shape, training) = node._parents, node._ctx
        gb = g.sum(axis=axes)
        gw = (g * xhat).sum(axis=axes)
        gx = None
        if x.requires_grad:
            scale = (weight.data * inv).reshape(shape)
            if training:
                m = g.size // g.shape[1]
                gx = scale * (g - (gb / m).reshape(shape) - xhat * (gw / m).reshape(shape))
            else:
                gx = scale * g
        return (gx, gw if weight.requires_grad else None, gb if bias.requires_grad else None)
