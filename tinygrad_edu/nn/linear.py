"""The affine map of a fully connected layer, as one fused registry op.

``linear(x, W, b)`` is ``x @ W.T + b`` for a weight stored (out, in) as in PyTorch.  Fusing
the transpose, the product and the bias into one node keeps the graph (and the Python work
per step) small, and the weight's gradient comes out directly in the weight's layout.
"""

from __future__ import annotations

from ..registry import tensor_op

__all__ = ["linear"]


@tensor_op(f="y = x Wᵀ + b", grads=("∂x = G W", "∂W = Gᵀ x", "∂b = Σₙ G"), category="nn",
           symbol="linear")
class linear:
    """Affine map of the last axis: x (..., in), W (out, in), b (out,) -> y (..., out).

    Each output yⱼ = Σᵢ xᵢ Wⱼᵢ + bⱼ, so ∂y/∂x = W, ∂yⱼ/∂Wⱼᵢ = xᵢ, ∂yⱼ/∂bⱼ = 1; the
    upstream G (..., out) gives ∂x = G W, ∂W = Gᵀ x (summed over every leading axis) and
    ∂b = G summed over every leading axis.
    """

    def forward(x, w, b=None):
        y = x @ w.T
        if b is not None:
            y += b
        return y, None

    def backward(node, g):
        parents = node._parents
        x, w = parents[0], parents[1]
        gx = g @ w.data if x.requires_grad else None
        g2 = g if g.ndim == 2 else g.reshape(-1, g.shape[-1])
        gw = None
        if w.requires_grad:
            x2 = x.data if x.data.ndim == 2 else x.data.reshape(-1, x.data.shape[-1])
            gw = (x2.T @ g2).T  # = Gᵀ x, computed in the weight's memory order (in, out)
        if len(parents) == 2:
            return gx, gw
        gb = g2.sum(axis=0) if parents[2].requires_grad else None
        return gx, gw, gb

