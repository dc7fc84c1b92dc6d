"""Layers: Linear, MLP, Flatten, Dropout (convolution, pooling and batch-norm modules live
in :mod:`.conv_layers`).

Every layer checks the shape of what it is given and names itself and both shapes when it
does not fit, e.g. ``Linear(784, 256): expected input (..., 784), got (128, 28, 28)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from ..tensor import Tensor
from . import init as _init
from .activation import module_for
from .dropout import dropout
from .linear import linear
from .module import Module, Parameter, Sequential
from .shape import flatten

__all__ = ["MLP", "Dropout", "Flatten", "Linear"]

Init = str | Callable[..., np.ndarray] | None
RNG = np.random.Generator | int | None


def _data(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


class Linear(Module):
    """Fully connected layer ``y = x Wᵀ + b`` with W of shape (out, in), b of shape (out,).

    ``init`` names the weight scheme (see :mod:`.init`); by default it suits ``activation``
    (the activation that follows this layer: kaiming for the ReLU family).  ``bias_init``
    is the bias's constant starting value.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: Init = None, bias_init: float = 0.0, activation: str | None = "relu",
                 rng: RNG = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        rng = _init.make_rng(rng)
        w = _init.initialise((out_features, in_features), init, activation, rng)
        # Shape (out, in) as in PyTorch, memory (in, out): the forward's x @ Wᵀ is then a
        # plain row-major GEMM, measurably faster than a transposed one (docs/performance.md).
        self.weight = Parameter(np.asfortranarray(w))
        if bias:
            self.bias = Parameter(_init.constant((out_features,), bias_init))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        shape = _data(x).shape
        if not shape or shape[-1] != self.in_features:
            raise ValueError(f"{self!r}: expected input (..., {self.in_features}), got {shape}")
        if self.bias is None:
            return linear(x, self.weight)
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        extra = "" if self.bias is not None else ", bias=False"
        return f"{self.in_features}, {self.out_features}{extra}"


class Flatten(Module):
    """(N, C, H, W) -> (N, C·H·W): merge every axis from ``start_dim`` on."""

    def __init__(self, start_dim: int = 1) -> None:
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x: Tensor) -> Tensor:
        return flatten(x, start_dim=self.start_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}"


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training mode; the identity in eval mode.

    ``rng`` (a Generator or a seed) draws the masks, so a seeded run is reproducible.
    """

    def __init__(self, p: float = 0.5, rng: RNG = None) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p
        self.rng = _init.make_rng(rng)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        return dropout(x, p=self.p, training=True, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


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
        sizes = [int(s) for s in sizes]
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
