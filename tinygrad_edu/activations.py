"""The activation catalogue: each activation's forward formula and local gradient, once.

Every entry is numerically stable: at inputs of ±1000 each forward and backward value is
finite and numpy emits no warning (``exp`` is only ever taken of non-positive numbers).
The local gradient is written in terms of the input ``x`` and/or the output ``y``,
whichever is the natural form (σ' = y(1 − y), tanh' = 1 − y²).

Adding an activation is one entry here: it becomes a method of Value and Tensor, a module
in :mod:`tinygrad_edu.nn`, and is picked up by the gradient tests, plots and graphs.
"""

from __future__ import annotations

import math

import numpy as np

from .registry import tensor_op, unary


def _logistic(m, x):
    """σ(x) = 1/(1 + e^{−x}) without overflow: only e^{−|x|} ∈ (0, 1] is ever computed.

    −|x| is written as ``where(x >= 0, −x, x)``, the same branches as the result's, so on
    graph nodes (higher-order gradients) its derivative at 0 is the x ≥ 0 side's, not
    sign(0) = 0."""
    z = m.exp(m.where(x >= 0, -x, x))
    return m.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


@unary(f="x", df="1", category="activation")
class identity:
    """The identity: passes values and gradients through unchanged."""

    def f(m, x):
        return x

    df = 1


@unary(f="σ(x) = 1 / (1 + e^(−x))", df="y · (1 − y)", category="activation", symbol="σ",
       domain=(-6.0, 6.0))
class sigmoid:
    """Logistic sigmoid: squashes the reals into (0, 1)."""

    def f(m, x):
        return _logistic(m, x)

    def df(m, x, y):
        return y * (1.0 - y)


@unary(f="tanh x = (eˣ − e^(−x)) / (eˣ + e^(−x))", df="1 − y²", category="activation",
       domain=(-3.0, 3.0))
class tanh:
    """Hyperbolic tangent: squashes the reals into (−1, 1), zero-centred."""

    def f(m, x):
        return m.tanh(x)

    def df(m, x, y):
        return 1.0 - y * y


@unary(f="max(0, x)", df="1 if x > 0 else 0   (0 at x = 0)", category="activation",
       kinks=(0.0,))
class relu:
    """Rectified linear unit."""

    def f(m, x):
        return m.maximum(x, 0)

    def df(m, x, y):
        return m.indicator(x > 0, x)


@unary(f="x if x > 0 else α·x", df="1 if x > 0 else α", category="activation",
       params={"alpha": 0.01}, kinks=(0.0,))
class leaky_relu:
    """Leaky ReLU: a small slope α for negative inputs keeps their gradient alive."""

    def f(m, x, alpha):
        return m.where(x > 0, x, alpha * x)

    def df(m, x, y, alpha):
        return alpha + (1.0 - alpha) * m.indicator(x > 0, x)


@unary(f="x if x > 0 else α·(eˣ − 1)", df="1 if x > 0 else y + α", category="activation",
       params={"alpha": 1.0}, kinks=(0.0,))
class elu:
    """Exponential linear unit: smooth negative part saturating at −α."""

    def f(m, x, alpha):
        return m.where(x > 0, x, alpha * m.expm1(m.minimum(x, 0)))

    def df(m, x, y, alpha):
        return m.where(x > 0, 1.0, y + alpha)


SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


@unary(f="λ·(x if x > 0 else α·(eˣ − 1)),  λ ≈ 1.0507, α ≈ 1.6733",
       df="λ if x > 0 else λ·α·eˣ", category="activation", kinks=(0.0,))
class selu:
    """Scaled ELU (Klambauer et al., 2017) with the published self-normalising constants."""

    def f(m, x):
        return SELU_LAMBDA * m.where(x > 0, x, SELU_ALPHA * m.expm1(m.minimum(x, 0)))

    def df(m, x, y):
        return SELU_LAMBDA * m.where(x > 0, 1.0, SELU_ALPHA * m.exp(m.minimum(x, 0)))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = 0.044715


@unary(f="x·Φ(x) = ½x(1 + erf(x/√2));  'tanh': ½x(1 + tanh(√(2/π)(x + 0.044715x³)))",
       df="Φ(x) + x·φ(x);  'tanh': ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)",
       category="activation", params={"approximate": "none"})
class gelu:
    """Gaussian error linear unit; ``approximate="tanh"`` gives the tanh approximation."""

    def f(m, x, approximate):
        if approximate == "tanh":
            c = _clamp(m, x)
            return 0.5 * x * (1.0 + m.tanh(_SQRT_2_OVER_PI * (c + _GELU_C * c * c * c)))
        _check_gelu_mode(approximate)
        return 0.5 * x * (1.0 + m.erf(x / math.sqrt(2.0)))

    def df(m, x, y, approximate):
        c = _clamp(m, x)
        if approximate == "tanh":
            t = m.tanh(_SQRT_2_OVER_PI * (c + _GELU_C * c * c * c))
            dt = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * c * c)
            return 0.5 * (1.0 + t) + 0.5 * c * (1.0 - t * t) * dt
        cdf = 0.5 * (1.0 + m.erf(x / math.sqrt(2.0)))
        return cdf + c * _INV_SQRT_2PI * m.exp(-0.5 * c * c)


#: Beyond |x| = 40 both GELUs' curved parts are exactly 0 in float32 and float64 (tanh is
#: ±1, e^(−x²/2) underflows): clamping there changes no result and keeps x³ and x² from
#: overflowing into inf · 0 = NaN at large finite inputs.
_GELU_CLAMP = 40.0


def _clamp(m, x):
    return m.minimum(m.maximum(x, -_GELU_CLAMP), _GELU_CLAMP)


def _check_gelu_mode(approximate: str) -> None:
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


@unary(f="ln(1 + eˣ) = max(x, 0) + ln(1 + e^(−|x|))", df="σ(x)", category="activation")
class softplus:
    """Softplus: a smooth ReLU whose derivative is the sigmoid."""

    def f(m, x):
        return m.maximum(x, 0) + m.log1p(m.exp(-m.abs(x)))

    def df(m, x, y):
        return _logistic(m, x)


@unary(f="x·σ(x)", df="σ(x) + y·(1 − σ(x))", category="activation")
class silu:
    """Sigmoid linear unit (swish): the input gated by its own sigmoid."""

    def f(m, x):
        return x * _logistic(m, x)

    def df(m, x, y):
        s = _logistic(m, x)
        return s + y * (1.0 - s)


# --------------------------------------------------- softmax family (not elementwise)


@tensor_op(f="yᵢ = e^(xᵢ − max x) / Σⱼ e^(xⱼ − max x)", grads=("∂x = y ⊙ (g − Σ g⊙y)",),
           category="activation", params={"axis": -1}, scalar=True)
class softmax:
    """Softmax along ``axis``: non-negative outputs summing to 1.

    The Jacobian is diag(y) − y yᵀ, so the backward is y ⊙ (g − ⟨g, y⟩).
    (On Values, ``Value.softmax([...])`` builds the same from exp, + and /.)
    """

    def forward(x, axis):
        if x.size == 0:  # nothing to normalise: an empty result of the same shape
            return x.copy(), axis
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True), axis

    def backward(node, g):
        y = node.data
        return (y * (g - (g * y).sum(axis=node.ctx, keepdims=True)),)

    def backward_graph(node, g):  # the output node y is reused, as in the backward
        return (node * (g - (g * node).sum(axis=node.ctx, keepdims=True)),)


@tensor_op(f="yᵢ = xᵢ − max x − ln Σⱼ e^(xⱼ − max x)", grads=("∂x = g − softmax(x) · Σ g",),
           category="activation", params={"axis": -1}, scalar=True)
class log_softmax:
    """Log of the softmax along ``axis``, computed without overflow for any logits.

    The Jacobian is I − 1 softmax(x)ᵀ, so the backward is g − eʸ · Σ g.
    """

    def forward(x, axis):
        if x.size == 0:  # nothing to normalise: an empty result of the same shape
            return x.copy(), axis
        shifted = x - x.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True)), axis

    def backward(node, g):
        return (g - np.exp(node.data) * g.sum(axis=node.ctx, keepdims=True),)

    def backward_graph(node, g):
        return (g - node.exp() * g.sum(axis=node.ctx, keepdims=True),)
