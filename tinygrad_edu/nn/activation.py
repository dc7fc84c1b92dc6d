"""Activation layers: the modules generated from the registry, and PReLU (op and module) and
RReLU.

Every activation in :func:`tinygrad_edu.registry.activation_ops` gets a module class named in
CamelCase (``leaky_relu`` -> ``LeakyReLU``) whose constructor takes the activation's
parameters (``LeakyReLU(alpha=0.2)``, ``Softmax(axis=1)``).  Add an activation to the
registry and its module appears here with no further code.

``prelu`` is a registry op of its own because its slope is an *input* with a gradient; it
reuses the leaky ReLU definition (forward ``f`` and local gradient ``df``) for the math.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import unbroadcast
from ..higher_order import sum_to
from ..numerics import ARRAY
from ..registry import REGISTRY, Op, activation_ops, tensor_op
from ..tensor import Tensor
from .init import make_rng
from .module import Module, Parameter

__all__ = ["PReLU", "RReLU", "activation_modules", "module_for", "module_name"]

_LEAKY = REGISTRY["leaky_relu"]

#: Registry name -> module class name, where plain CamelCase would be wrong.
NAMES = {
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU",
    "elu": "ELU",
    "selu": "SELU",
    "gelu": "GELU",
    "silu": "SiLU",
    "softmax": "Softmax",
    "log_softmax": "LogSoftmax",
    "prelu": "PReLU",
    "rrelu": "RReLU",
}


def module_name(op_name: str) -> str:
    """The module class name for a registry activation: table entry or CamelCase."""
    return NAMES.get(op_name) or "".join(part.capitalize() for part in op_name.split("_"))


def _broadcast_slope(alpha: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A slope array broadcastable to x: as is if scalar-like or of x's rank, else one
    slope per channel (axis 1)."""
    if alpha.size == 1 or alpha.ndim == x.ndim:
        return alpha
    return alpha.reshape((1, alpha.size) + (1,) * (x.ndim - 2))


@tensor_op(f="x if x > 0 else α·x   (α learned)",
           grads=("∂x = G · (1 if x > 0 else α)", "∂α = Σ G · (0 if x > 0 else x)"),
           category="nn", symbol="PReLU", kinks=(0.0,))
class prelu:
    """Parametric ReLU (He et al., 2015): a leaky ReLU whose slope α is an input.

    α is one number, one per channel (axis 1), or an array of x's rank.  f is linear in α:
    f(x, α) = f(x, 0) + α·(x − f(x, 0)), so ∂f/∂α = x − f(x, 0) = min(x, 0).
    """

    def forward(x, alpha):
        a = _broadcast_slope(alpha, x)
        return _LEAKY.f(ARRAY, x, a), a

    def backward(node, g):
        (x, alpha), a = node.parents, node.ctx
        gx = ga = None
        if x.requires_grad:
            gx = g * _LEAKY.df(ARRAY, x.data, node.data, a)
        if alpha.requires_grad:
            ga = g * (x.data - _LEAKY.f(ARRAY, x.data, 0.0))
            ga = unbroadcast(ga, a.shape).reshape(alpha.data.shape)
        return gx, ga

    def backward_graph(node, g):  # [x > 0] is a constant mask; α enters linearly
        (x, alpha), a = node.parents, node.ctx
        pos = (x.data > 0).astype(x.data.dtype)
        gx = ga = None
        if x.requires_grad:
            gx = g * (pos + (1.0 - pos) * alpha.reshape(a.shape))
        if alpha.requires_grad:
            ga = sum_to(g * (x * (1.0 - pos)), a.shape).reshape(alpha.data.shape)
        return gx, ga


def _make(op: Op) -> type[Module]:
    """A Module class applying the registry activation ``op``."""

    def __init__(self: Module, *args: Any, **kwargs: Any) -> None:
        Module.__init__(self)
        params = dict(op._bind(args, kwargs))
        self.__dict__.update(params)
        self.__dict__["_params"] = params

    if op.params:
        def forward(self: Module, x: Tensor) -> Tensor:
            return op(x, **self._params)
    else:
        def forward(self: Module, x: Tensor) -> Tensor:
            return op(x)

    def extra_repr(self: Module) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._params.items())

    name = module_name(op.name)
    return type(name, (Module,), {
        "__init__": __init__, "forward": forward, "extra_repr": extra_repr,
        "__doc__": op.__doc__, "__module__": __name__, "op": op,
    })


_GENERATED: dict[str, type[Module]] = {}


def activation_modules() -> dict[str, type[Module]]:
    """Module classes for every registry activation, by class name (made on first use, so
    activations registered later also get one)."""
    for op in activation_ops():
        name = module_name(op.name)
        if name not in _GENERATED or _GENERATED[name].op is not op:  # new, or re-defined
            _GENERATED[name] = _make(op)
    return dict(_GENERATED)


class PReLU(Module):
    """Leaky ReLU with a learned slope: ``num_parameters`` = 1 (shared) or the channel count.

    The slope starts at ``init`` (0.25 as in the paper) and is trained with the weights.
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25) -> None:
        super().__init__()
        self.num_parameters = num_parameters
        self.weight = Parameter(np.full((num_parameters,), init, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        return prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class RReLU(Module):
    """Randomised leaky ReLU (Xu et al., 2015).

    Training: each element's negative slope is drawn from U(lower, upper) afresh every call
    (applied through :func:`prelu` with a constant slope array).  Evaluation: the mean slope
    (lower + upper)/2 through the registry's ``leaky_relu``.
    """

    def __init__(self, lower: float = 1.0 / 8.0, upper: float = 1.0 / 3.0,
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if not 0.0 <= lower <= upper:
            raise ValueError(f"RReLU: need 0 <= lower <= upper, got {lower}, {upper}")
        self.lower, self.upper = lower, upper
        self.rng = make_rng(rng)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return _LEAKY(x, alpha=(self.lower + self.upper) / 2.0)
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        slopes = self.rng.uniform(self.lower, self.upper, data.shape).astype(data.dtype)
        return prelu(x, Tensor(slopes))

    def extra_repr(self) -> str:
        return f"lower={self.lower:g}, upper={self.upper:g}"


def module_for(activation: str | Module | type[Module], **kwargs: Any) -> Module:
    """An activation module from a name ("relu", "ReLU", "leaky_relu", "prelu"...), a class
    or an instance (returned as is)."""
    if isinstance(activation, Module):
        return activation
    if isinstance(activation, type) and issubclass(activation, Module):
        return activation(**kwargs)
    if not isinstance(activation, str):
        raise TypeError(f"activation must be a registry activation name (e.g. 'relu'), a "
                        f"Module class or a Module, got {type(activation).__name__}")
    classes = {**activation_modules(), "PReLU": PReLU, "RReLU": RReLU}
    by_lower = {k.lower(): v for k, v in classes.items()}
    key = module_name(activation).lower() if activation.islower() else activation.lower()
    cls = by_lower.get(key) or by_lower.get(activation.replace("_", "").lower())
    if cls is None:
        raise ValueError(f"unknown activation {activation!r}; choose from {sorted(classes)}")
    return cls(**kwargs)
