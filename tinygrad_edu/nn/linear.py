"""Fully connected layers: the fused ``linear`` op, the :class:`Linear` layer and the
:class:`MLP` built from it.

``linear(x, W, b)`` is ``x @ W.T + b`` for a weight stored (out, in) as in PyTorch.  Fusing
the transpose, the product and the bias into one node keeps the graph (and the Python work
per step) small, and the weight's gradient comes out directly in the weight's layout.

The op checks its input (``linear: expected input (..., 784), got (128, 28, 28)``); a
:class:`Linear` layer reports the same check under its own name
(``Linear(784, 256): expected input (..., 784), got (128, 28, 28)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np

from ..parallel import matmul
from ..registry import tensor_op
from ..tensor import Tensor
from . import init as _init
from .activation import module_for
from .dropout import Dropout
from .module import Module, Parameter, Sequential, ShapeError, check_int

__all__ = ["MLP", "Linear", "linear"]

Init = str | Callable[..., np.ndarray] | None
RNG = np.random.Generator | int | None


@tensor_op(f="y = x Wᵀ + b", grads=("∂x = G W", "∂W = Gᵀ x", "∂b = Σₙ G"), category="nn",
           symbol="linear")
class linear:
    """Affine map of the last axis: x (..., in), W (out, in), b (out,) -> y (..., out).

    Each output yⱼ = Σᵢ xᵢ Wⱼᵢ + bⱼ, so ∂y/∂x = W, ∂yⱼ/∂Wⱼᵢ = xᵢ, ∂yⱼ/∂bⱼ = 1; the
    upstream G (..., out) gives ∂x = G W, ∂W = Gᵀ x (summed over every leading axis) and
    ∂b = G summed over every leading axis.
    """

    def forward(x, w, b=None):
        if x.shape[-1:] != w.shape[1:]:
            raise ShapeError("linear", f"expected input (..., {w.shape[1]}), got {x.shape}")
        x = x.astype(w.dtype, copy=False)  # the layer's dtype (float64 batch, float32 model)
        y = matmul(x, w.T)  # x @ Wᵀ (when to hold the BLAS at one thread: parallel.py)
        if b is not None:
            y += b
        return y, None

    def backward(node, g):
        parents = node.parents
        x, w = parents[0], parents[1]
        g2 = _rows(g)
        gx = matmul(g, w.data).astype(x.data.dtype, copy=False) if x.requires_grad else None
        gw = _weight_grad(x.data.astype(w.data.dtype, copy=False), g2) if w.requires_grad else None
        if len(parents) == 2:
            return gx, gw
        gb = g2.sum(axis=0) if parents[2].requires_grad else None
        return gx, gw, gb

    def backward_graph(node, g):
        parents = node.parents
        x, w = parents[0], parents[1]
        g2 = g.reshape(-1, w.data.shape[0])
        gx = g @ w if x.requires_grad else None
        gw = g2.T @ x.reshape(-1, w.data.shape[1]) if w.requires_grad else None
        if len(parents) == 2:
            return gx, gw
        return gx, gw, g2.sum(axis=0) if parents[2].requires_grad else None


class Linear(Module):
    """Fully connected layer ``y = x Wᵀ + b`` with W of shape (out, in), b of shape (out,).

    ``init`` names the weight scheme (see :mod:`.init`); by default it suits ``activation``
    (the activation that follows this layer: kaiming for the ReLU family).  ``bias_init``
    is the bias's constant starting value.

    The input is cast to the layer's dtype: a float64 batch fed to a float32 model computes
    in float32 (PyTorch raises a dtype error instead); the input's gradient keeps the
    input's dtype.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: Init = None, bias_init: float = 0.0, activation: str | None = "relu",
                 rng: RNG = None) -> None:
        super().__init__()
        in_features = check_int("Linear", "in_features", in_features, 1)
        out_features = check_int("Linear", "out_features", out_features, 1)
        self.in_features, self.out_features = in_features, out_features
        rng = _init.make_rng(rng)
        w = _init.initialise((out_features, in_features), init, activation, rng)
        self.weight = Parameter(_weight_memory(w))
        bias_value = _init.constant((out_features,), bias_init)
        self.register_parameter("bias", Parameter(bias_value) if bias else None)

    def forward(self, x: Tensor) -> Tensor:
        try:
            if self.bias is None:
                return linear(x, self.weight)
            return linear(x, self.weight, self.bias)
        except ShapeError as err:
            raise self.input_error(err) from None

    def extra_repr(self) -> str:
        extra = "" if self.bias is not None else ", bias=False"
        return f"{self.in_features}, {self.out_features}{extra}"


class MLP(Module):
    """A multilayer perceptron: Linear layers of the given ``sizes`` with ``activation``
    (a registry name such as "relu", "tanh", "leaky_relu", or "prelu"/"rrelu") between
    them and optional dropout after each activation; the last layer outputs raw logits.

    ``nn.MLP([784, 256, 128, 64, 10])`` has 242,762 parameters, named ``layers.0.weight``,
    ``layers.0.bias``, ``layers.2.weight``...  Weights use ``init`` (default: the scheme
    that suits the activation), biases start at ``bias_init``.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu", init: Init = None,
                 bias_init: float = 0.0, dropout: float = 0.0, rng: RNG = None) -> None:
        super().__init__()
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
            raise TypeError(f"MLP: sizes must be a list of ints, got {type(sizes).__name__}")
        sizes = [check_int("MLP", f"sizes[{i}]", s, 1) for i, s in enumerate(sizes)]
        if len(sizes) < 2:
            raise ValueError(f"MLP: need at least an input and an output size, got {sizes}")
        rng = _init.make_rng(rng)
        act_name = activation if isinstance(activation, str) else None
        self.sizes, self.activation = sizes, activation
        layers: list[Module] = []
        for i, (n_in, n_out) in enumerate(pairwise(sizes)):
            last = i == len(sizes) - 2
            layers.append(Linear(n_in, n_out, init=init, bias_init=bias_init,
                                 activation=None if last else _init_name(act_name), rng=rng))
            if not last:
                layers.append(_activation_module(activation, rng))
                if dropout > 0.0:
                    layers.append(Dropout(dropout, rng=rng))
        self.layers = Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


def _activation_module(activation: str | Module | type[Module], rng: np.random.Generator) -> Module:
    """The activation module; a random one (RReLU) draws from the model's ``rng`` so a seeded
    model trains reproducibly."""
    module = module_for(activation)
    if hasattr(module, "rng") and isinstance(activation, (str, type)):
        module.rng = rng
    return module


def _init_name(activation: str | None) -> str | None:
    """Registry-style lower-case name of an activation given as "ReLU" or "relu"."""
    if activation is None:
        return None
    lowered = activation.lower()
    return {"leakyrelu": "leaky_relu", "logsoftmax": "log_softmax"}.get(lowered, lowered)


# ------------------------------------------------------------------ speed: weight memory
# The weight has shape (out, in) as in PyTorch but memory (in, out) (Fortran order): the
# forward's x @ Wᵀ is then a plain row-major GEMM, measurably faster than a transposed one
# (docs/performance.md), and the backward computes ∂W in that same memory order.
def _weight_memory(w: np.ndarray) -> np.ndarray:
    """w (out, in) laid out (in, out) in memory: a Fortran-ordered copy."""
    return np.asfortranarray(w)


def _rows(a: np.ndarray) -> np.ndarray:
    """a (..., k) as a 2-D (rows, k) matrix (itself when already 2-D)."""
    return a if a.ndim == 2 else a.reshape(-1, a.shape[-1])


def _weight_grad(x: np.ndarray, g2: np.ndarray) -> np.ndarray:
    """∂W = Gᵀ x, computed as (xᵀ G)ᵀ so the result is in the weight's memory order."""
    return matmul(_rows(x).T, g2).T
