"""Batch normalisation (Ioffe & Szegedy, 2015): the ``batch_norm`` op with its full backward,
and the :class:`BatchNorm1d` / :class:`BatchNorm2d` layers.

Per feature c (axis 1), over the other axes (N for (N, C); N, H, W for (N, C, H, W)), with
m values per feature:

    μ = (1/m) Σ x,   σ² = (1/m) Σ (x − μ)²,   x̂ = (x − μ)/√(σ² + ε),   y = γ x̂ + β

In training μ and σ² are the batch's (and the running averages move towards them:
r ← (1 − momentum)·r + momentum·batch value, with the unbiased variance, as PyTorch); in
evaluation the running averages are used instead and are constants.

The op checks that γ, β and the input agree on C; a layer adds only its own rule (the
rank: 2-D or 3-D for ``BatchNorm1d``, 4-D for ``BatchNorm2d``) and reports either failure
in its own terms, e.g. ``BatchNorm2d(3, ...): expected input (N, 3, H, W), got (2, 4, 3, 3)``.
"""

from __future__ import annotations

import numpy as np

from ..numerics import column_sums
from ..registry import tensor_op
from ..tensor import Tensor
from .module import Module, Parameter, ShapeError, check_int, check_real

__all__ = ["BatchNorm1d", "BatchNorm2d", "batch_norm"]

#: How the input of each rank is written in messages; C is filled in.
_LAYOUTS = {2: "(N, {0})", 3: "(N, {0}, L)", 4: "(N, {0}, H, W)"}


def _layout(ndim: int, channels: int) -> str:
    return _LAYOUTS.get(ndim, "(N, {0}, ...)").format(channels)


def _check(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> None:
    """Every precondition of the op, checked once: x is (N, C, ...), γ and β are (C,)."""
    if weight.ndim != 1 or bias.shape != weight.shape:
        raise ValueError(f"batch_norm: weight/bias of shapes {weight.shape}/{bias.shape}, "
                         "expected (C,) each")
    if x.ndim < 2 or x.shape[1] != weight.shape[0]:
        raise ShapeError("batch_norm",
                         f"expected input {_layout(x.ndim, weight.shape[0])}, got {x.shape}")


def _axes_and_shape(x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The reduced axes (all but 1) and the (1, C, 1, ...) broadcasting shape."""
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
        _check(x, weight, bias)
        axes, shape = _axes_and_shape(x)
        rows = _rows(x) if training else None
        if rows is not None:  # channels last in memory: the fast path, same formulas
            y, xhat, mean, var, inv = _forward_rows(x, rows, weight, bias, eps)
            _update_running(running_mean, running_var, mean, var, momentum, rows.shape[0])
            return y, (xhat, inv, axes, shape, training, eps)
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
        return y, (xhat, inv, axes, shape, training, eps)

    def backward(node, g):
        (x, weight, bias), (xhat, inv, axes, shape, training, _) = node.parents, node.ctx
        if training and (g2 := _rows(g)) is not None and (xhat2 := _rows(xhat)) is not None:
            gx, gw, gb = _backward_rows(g, g2, xhat2, weight.data * inv, x.requires_grad)
            return (gx, gw if weight.requires_grad else None, gb if bias.requires_grad else None)
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

    def backward_graph(node, g):
        """The same in graph ops; in training x̂ and 1/√(σ²+ε) are rebuilt from x as nodes."""
        (x, weight, bias), (xhat, inv, axes, shape, training, eps) = node.parents, node.ctx
        if training:
            centred = x - x.mean(axis=axes, keepdims=True)
            inv_node = ((centred * centred).mean(axis=axes, keepdims=True) + eps) ** -0.5
            xh = centred * inv_node
        else:  # x̂ = (x − running mean)·inv: its value, with the slope inv
            inv_node = inv.reshape(shape)
            xh = (x - x.data) * inv_node + xhat
        gb = g.sum(axis=axes)
        gw = (g * xh).sum(axis=axes)
        gx = None
        if x.requires_grad:
            scale = weight.reshape(shape) * inv_node
            if training:
                m = float(g.data.size // g.data.shape[1])
                gx = scale * (g - gb.reshape(shape) / m - xh * (gw.reshape(shape) / m))
            else:
                gx = scale * g
        return (gx, gw if weight.requires_grad else None, gb if bias.requires_grad else None)


class _BatchNorm(Module):
    """Shared by the layers: γ, β (parameters, or constants 1 and 0 without ``affine``) and
    the running mean and variance (buffers, saved in the state dict)."""

    _ndims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True) -> None:
        super().__init__()
        who = type(self).__name__
        num_features = check_int(who, "num_features", num_features, 1)
        eps = check_real(who, "eps", eps, 0.0, float("inf"), low_open=True)
        momentum = check_real(who, "momentum", momentum, 0.0, 1.0)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine = affine
        ones, zeros = np.ones(num_features, np.float32), np.zeros(num_features, np.float32)
        # without affine, γ = 1 and β = 0 are constants, not parameters
        self.weight = Parameter(ones) if affine else Tensor(ones)
        self.bias = Parameter(zeros) if affine else Tensor(zeros)
        self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        if np.ndim(x) in self._ndims:  # the layer's own rule (the rank); the op checks C
            try:
                return batch_norm(x, self.weight, self.bias, running_mean=self.running_mean,
                                  running_var=self.running_var, training=self.training,
                                  momentum=self.momentum, eps=self.eps)
            except ShapeError:
                pass  # reported below, in the layer's terms
        layouts = " or ".join(_layout(n, self.num_features) for n in self._ndims)
        raise ShapeError(repr(self), f"expected input {layouts}, got {np.shape(x)}")

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum:g}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input per feature C; running mean and
    variance are buffers (saved in the state dict)."""

    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input per channel, statistics over N, H, W;
    running mean and variance are buffers (saved in the state dict)."""

    _ndims = (4,)


# ------------------------------------------------------------------ speed: channels last
# Convolution outputs are channels-last in memory (see conv.py), so in training x (N, C, H, W)
# is a free (N·H·W, C) matrix: the sums over rows are one BLAS matrix-vector product with a
# vector of ones (20x faster than numpy's reduction over axes (0, 2, 3) of the transposed
# view) and every broadcast is along the rows.  The same formulas as the op's docstring;
# arrays in any other layout take the general path above.
def _rows(a: np.ndarray) -> np.ndarray | None:
    """a (N, C, ...) as a (rows, C) view when its channels are last and contiguous in memory,
    else None."""
    c = a.shape[1]
    last = a if a.ndim == 2 else np.moveaxis(a, 1, -1)
    if not last.flags.c_contiguous:
        return None
    return last.reshape(-1, c)


#: The most times :func:`_wide` tiles a (C,) vector.  numpy pays per row of a broadcast, so
#: longer rows are faster: the MNIST CNN's batch norms in training (float32, batch 128),
#: forward / backward ms with 1024 against 64: (100,352 × 16) 3.0 / 3.6 against 3.7 / 4.4,
#: (25,088 × 32) 1.1 / 1.3 against 1.5 / 1.6 (docs/performance.md).
_WIDE_MAX = 1024


def _wide(rows: np.ndarray) -> tuple[np.ndarray, int]:
    """A C-contiguous (M, C) matrix as (M/r, r·C) for the largest r in 1024, 512, ..., 1
    dividing M: the same elements, so broadcasting a (C,) vector tiled r times along it gives
    the same result with inner loops r times longer (2x faster for C = 16 at r = 64)."""
    m, c = rows.shape
    r = _WIDE_MAX
    while m % r:
        r //= 2
    return rows.reshape(m // r, r * c), r


def _as_input(rows: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A (rows, C) result as an array shaped like ``like`` (N, C, ...), channels last."""
    if like.ndim == 2:
        return rows
    last = np.moveaxis(like, 1, -1).shape
    return np.moveaxis(rows.reshape(last), -1, 1)


def _forward_rows(x: np.ndarray, rows: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                  eps: float) -> tuple:
    """Training forward on the (rows, C) view: (y, x̂, μ, σ², 1/√(σ² + ε))."""
    m = rows.shape[0]
    if m < 2:
        raise ValueError(f"batch_norm: training needs > 1 value per channel, got {x.shape}")
    mean = column_sums(rows) / x.dtype.type(m)
    wide, r = _wide(rows)
    xhat = wide - np.tile(mean, r)
    var = column_sums(np.square(xhat).reshape(rows.shape)) / x.dtype.type(m)
    inv = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    xhat *= np.tile(inv, r)
    y = xhat * np.tile(weight.astype(x.dtype, copy=False), r)
    y += np.tile(bias.astype(x.dtype, copy=False), r)
    return (_as_input(y.reshape(rows.shape), x), _as_input(xhat.reshape(rows.shape), x),
            mean, var, inv)


def _update_running(running_mean: np.ndarray | None, running_var: np.ndarray | None,
                    mean: np.ndarray, var: np.ndarray, momentum: float, m: int) -> None:
    """r ← (1 − momentum)·r + momentum·batch value (the unbiased variance), in place."""
    if running_mean is not None:
        running_mean *= 1.0 - momentum
        running_mean += momentum * mean
    if running_var is not None:
        running_var *= 1.0 - momentum
        running_var += (momentum * m / (m - 1)) * var


def _backward_rows(g: np.ndarray, g2: np.ndarray, xhat2: np.ndarray, scale: np.ndarray,
                   need_x: bool) -> tuple:
    """(∂x, ∂γ, ∂β) in training from the (rows, C) views of G and x̂; scale = γ/√(σ²+ε)."""
    gb = column_sums(g2)
    gw = column_sums(g2 * xhat2)
    if not need_x:
        return None, gw, gb
    m = g2.dtype.type(g2.shape[0])
    (g_wide, r), (xhat_wide, _) = _wide(g2), _wide(xhat2)
    gx = g_wide - np.tile(gb / m, r)
    shifted = xhat_wide * np.tile(gw / m, r)
    gx -= shifted
    gx *= np.tile(scale.astype(g2.dtype, copy=False), r)
    return _as_input(gx.reshape(g2.shape), g), gw, gb

