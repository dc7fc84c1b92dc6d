"""Arithmetic, elementwise math, reductions, shape ops and matmul: each defined once.

Read an entry top to bottom: the decorator states ``f`` and its local gradient(s) in math,
``f`` computes the forward and ``df`` (``da``/``db``) the local gradient, in terms of the
input(s) and/or the output ``y``.  ``m`` is the numeric backend (math for Value, numpy for
Tensor), see :mod:`tinygrad_edu.numerics`.

Non-elementwise tensor ops give a ``backward(node, g)`` instead: the upstream gradient
``g`` (shaped like the output) times the Jacobian, returned per input.  It reads the
inputs in ``node.parents`` and what ``forward`` saved in ``node.ctx``.
"""

from __future__ import annotations

import math

import numpy as np

from .autograd import unbroadcast
from .higher_order import sum_to
from .registry import binary, tensor_op, unary

# ============================================================ arithmetic (both engines)


@binary(f="a + b", da="1", db="1", symbol="+")
class add:
    """Addition: the upstream gradient flows to both inputs unchanged."""

    def f(m, a, b):
        return a + b

    da = 1
    db = 1


@binary(f="a − b", da="1", db="−1", symbol="−")
class sub:
    """Subtraction."""

    def f(m, a, b):
        return a - b

    da = 1

    def db(m, a, b, y):
        return -1.0


@binary(f="a · b", da="b", db="a", symbol="×")
class mul:
    """Multiplication: each input's local gradient is the other input."""

    def f(m, a, b):
        return a * b

    def da(m, a, b, y):
        return b

    def db(m, a, b, y):
        return a


@binary(f="a / b", da="1 / b", db="−a / b² = −y / b", symbol="÷")
class div:
    """Division."""

    def f(m, a, b):
        return a / b

    def da(m, a, b, y):
        return 1.0 / b

    def db(m, a, b, y):
        return -y / b


@binary(f="a ** b", da="b · a^(b−1)", db="ln(a) · y   (a > 0; 0 at a = 0)", symbol="**",
        name="pow", domain=(0.5, 2.5))
class _pow:
    """Power with a differentiable exponent: needs a > 0 (ln a appears in df/db)."""

    def f(m, a, b):
        if not _all_nonnegative(a):
            raise ValueError(
                "pow: the base must be >= 0 when the exponent is a graph node "
                f"(df/db = ln(a)·a^b needs a > 0); got base {_show(a)}"
            )
        return m.pow(a, b)

    def da(m, a, b, y):
        return b * m.pow(a, m.where(b == 0, 1.0, b - 1))  # b = 0: 0 (a⁰ is constant)

    def db(m, a, b, y):
        return m.log(m.where(a > 0, a, 1.0)) * y  # at a = 0: y = 0, so 0


@unary(f="x ** p", df="p · x^(p−1)", category="arithmetic",
       name="pow_const", symbol="**p", params={"p": 2.0}, domain=(0.5, 3.0))
class _pow_const:
    """Power with a constant exponent p (x ** 2, x ** 0.5, x ** -1...).  For p = 0 the
    local gradient is 0 everywhere, x = 0 included."""

    def f(m, x, p):
        return m.pow(x, p)

    def df(m, x, y, p):
        return p * m.pow(x, p - 1 if p != 0 else 1.0)  # p = 0: 0, never 0 · 0⁻¹


@unary(f="−x", df="−1", category="arithmetic", symbol="neg")
class neg:
    """Negation."""

    def f(m, x):
        return -x

    def df(m, x, y):
        return -1.0


# ============================================================ elementwise math


@unary(f="eˣ", df="eˣ = y", domain=(-3.0, 3.0))
class exp:
    """Exponential; its derivative is itself, so the backward reuses the output."""

    def f(m, x):
        return m.exp(x)

    def df(m, x, y):
        return y


@unary(f="ln x", df="1 / x", domain=(0.1, 5.0))
class log:
    """Natural logarithm (x > 0)."""

    def f(m, x):
        return m.log(x)

    def df(m, x, y):
        return 1.0 / x


@unary(f="√x", df="1 / (2√x) = 1 / (2y)", domain=(0.1, 5.0))
class sqrt:
    """Square root (x >= 0; the derivative is infinite at 0)."""

    def f(m, x):
        return m.sqrt(x)

    def df(m, x, y):
        return 0.5 / y


@unary(f="|x|", df="sign(x)   (0 at x = 0)", name="abs", kinks=(0.0,))
class _abs:
    """Absolute value."""

    def f(m, x):
        return m.abs(x)

    def df(m, x, y):
        return m.sign(x)


@unary(f="erf x = (2/√π) ∫₀ˣ e^(−t²) dt", df="(2/√π) · e^(−x²)", domain=(-3.0, 3.0))
class erf:
    """The error function (GELU's Gaussian CDF is ½(1 + erf(x/√2))): an op so that the
    local gradients written with ``m.erf`` can be differentiated again."""

    def f(m, x):
        return m.erf(x)

    def df(m, x, y):
        return _TWO_OVER_SQRT_PI * m.exp(-(x * x))


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


@unary(f="min(max(x, lo), hi)", df="1 if lo < x < hi else 0", params={"lo": -1.0, "hi": 1.0},
       kinks=(-1.0, 1.0), scalar=False)
class clip:
    """Clamp into [lo, hi]; no gradient flows where the value was clamped."""

    def f(m, x, lo, hi):
        return m.minimum(m.maximum(x, lo), hi)

    def df(m, x, y, lo, hi):
        return m.indicator((x > lo) & (x < hi), x)


# ============================================================ reductions (tensor engine)


def _expand(g: np.ndarray, shape: tuple, axis, keepdims: bool) -> np.ndarray:
    """Reshape a reduced gradient so it broadcasts against the input's ``shape``."""
    if axis is None or keepdims:
        return g if keepdims else g.reshape((1,) * len(shape))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return np.expand_dims(g, tuple(a % len(shape) for a in axes))


def _reduced_size(shape: tuple, axis) -> int:
    if axis is None:
        return int(np.prod(shape, dtype=np.int64))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def _check_nonempty(name: str, x: np.ndarray, axis) -> None:
    """A mean or max over zero elements has no value: say so by name (numpy would give NaN
    with a warning, or "zero-size array to reduction operation")."""
    if x.size:
        return  # a non-empty input has something on every axis
    try:
        n = _reduced_size(x.shape, axis)
    except IndexError:
        return  # an axis out of range: numpy's own error names it
    if n == 0:
        raise ValueError(f"{name}: cannot reduce over zero elements (input shape {x.shape}, "
                         f"axis {axis})")


def _expand_node(g, shape: tuple, axis, keepdims: bool):
    """Graph version of :func:`_expand` followed by broadcasting to ``shape``."""
    if not keepdims:
        axes = range(len(shape)) if axis is None else \
            [a % len(shape) for a in ((axis,) if isinstance(axis, int) else axis)]
        kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
        g = reshape(g, shape=kept)
    return broadcast_to(g, shape=shape)


@tensor_op(f="Σ x over axis", grads=("∂x = g broadcast back over the summed axes",),
           category="reduce", params={"axis": None, "keepdims": False}, symbol="Σ", name="sum")
class _sum:
    """Sum over ``axis`` (all axes by default): every input element gets the upstream."""

    def forward(x, axis, keepdims):
        return x.sum(axis=axis, keepdims=keepdims), (axis, keepdims)

    def backward(node, g):
        (x,) = node.parents
        axis, keepdims = node.ctx
        shape = x.data.shape
        return (np.broadcast_to(_expand(g, shape, axis, keepdims), shape).copy(),)

    def backward_graph(node, g):
        axis, keepdims = node.ctx
        return (_expand_node(g, node.parents[0].data.shape, axis, keepdims),)


@tensor_op(f="(1/n) Σ x over axis", grads=("∂x = g / n broadcast back",), category="reduce",
           params={"axis": None, "keepdims": False}, symbol="mean")
class mean:
    """Mean over ``axis`` (all axes by default)."""

    def forward(x, axis, keepdims):
        _check_nonempty("mean", x, axis)
        return x.mean(axis=axis, keepdims=keepdims), (axis, keepdims)

    def backward(node, g):
        (x,) = node.parents
        axis, keepdims = node.ctx
        shape = x.data.shape
        g = _expand(g, shape, axis, keepdims) / _reduced_size(shape, axis)
        return (np.broadcast_to(g, shape).astype(x.data.dtype),)

    def backward_graph(node, g):
        axis, keepdims = node.ctx
        shape = node.parents[0].data.shape
        return (_expand_node(g, shape, axis, keepdims) / float(_reduced_size(shape, axis)),)


@tensor_op(f="max x over axis", grads=("∂x = g at the maximum (split evenly between ties)",),
           category="reduce", params={"axis": None, "keepdims": False}, symbol="max", name="max")
class _max:
    """Maximum over ``axis``; the gradient goes to the arg-max (ties share it equally)."""

    def forward(x, axis, keepdims):
        _check_nonempty("max", x, axis)
        return x.max(axis=axis, keepdims=keepdims), (axis, keepdims)

    def backward(node, g):
        axis, keepdims = node.ctx
        shape = node.parents[0].data.shape
        return (_max_mask(node) * _expand(g, shape, axis, keepdims),)

    def backward_graph(node, g):  # the mask is a constant: max is piecewise linear
        axis, keepdims = node.ctx
        return (_expand_node(g, node.parents[0].data.shape, axis, keepdims) * _max_mask(node),)


def _max_mask(node) -> np.ndarray:
    """1/k at the k tied maxima of each reduced slice, 0 elsewhere."""
    (x,) = node.parents
    axis, keepdims = node.ctx
    y = _expand(node.data, x.data.shape, axis, keepdims)
    mask = (x.data == y).astype(x.data.dtype)
    mask /= mask.sum(axis=axis, keepdims=True)
    return mask


# ============================================================ shape ops (tensor engine)


@tensor_op(f="x viewed with a new shape", grads=("∂x = g reshaped back",), category="shape",
           params={"shape": ()}, symbol="reshape")
class reshape:
    """Same elements, new shape (one dimension may be -1)."""

    def forward(x, shape):
        try:
            return x.reshape(shape), None
        except ValueError:
            raise ValueError(f"reshape: cannot reshape shape {x.shape} into {shape}") from None

    def backward(node, g):
        return (g.reshape(node.parents[0].data.shape),)

    def backward_graph(node, g):
        return (reshape(g, shape=node.parents[0].data.shape),)


@tensor_op(f="x with axes permuted", grads=("∂x = g permuted back (inverse permutation)",),
           category="shape", params={"axes": None}, symbol="transpose")
class transpose:
    """Permute the axes (reverse them by default, as ``.T``)."""

    def forward(x, axes):
        if axes is not None and sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of shape {x.shape}")
        return x.transpose(axes), axes

    def backward(node, g):
        axes = node.ctx
        return (g.transpose(None if axes is None else np.argsort(axes)),)

    def backward_graph(node, g):
        axes = node.ctx
        return (transpose(g, axes=None if axes is None else tuple(np.argsort(axes))),)


def _is_advanced(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, np.ndarray)) for p in parts)


@tensor_op(f="x[index]", grads=("∂x = zeros with g added at the indexed places",),
           category="shape", params={"index": None}, symbol="[ ]")
class getitem:
    """Indexing and slicing; repeated integer-array indices accumulate their gradients."""

    def forward(x, index):
        try:
            return x[index], index
        except IndexError as exc:
            raise IndexError(f"getitem: index {index!r} into shape {x.shape}: {exc}") from None

    def backward(node, g):
        x = node.parents[0].data
        index = node.ctx
        out = np.zeros_like(x)
        if _is_advanced(index):
            np.add.at(out, index, g)
        else:
            out[index] = g
        return (out,)

    def backward_graph(node, g):
        return (index_add(g, index=node.ctx, shape=node.parents[0].data.shape),)


# The adjoints the graph backwards need: not registry entries (register=False), each the
# other's backward, so gradients of gradients go on to any order.
@tensor_op(f="zeros(shape) with x added at [index]", grads=("∂x = G[index]",), category="shape",
           params={"index": None, "shape": ()}, symbol="index_add", register=False)
class index_add:
    """The adjoint of ``getitem``: scatter x into zeros of ``shape`` (repeats accumulate)."""

    def forward(x, index, shape):
        out = np.zeros(shape, dtype=x.dtype)
        if _is_advanced(index):
            np.add.at(out, index, x)
        else:
            out[index] = x
        return out, index

    def backward(node, g):
        return (np.array(g[node.ctx]),)

    def backward_graph(node, g):
        return (getitem(g, index=node.ctx),)


@tensor_op(f="x broadcast to shape", grads=("∂x = G summed over the broadcast axes",),
           category="shape", params={"shape": ()}, symbol="broadcast", register=False)
class broadcast_to:
    """numpy broadcasting as an op (a copy): its adjoint sums back."""

    def forward(x, shape):
        return np.broadcast_to(x, shape).copy(), None

    def backward(node, g):
        return (unbroadcast(g, node.parents[0].data.shape),)

    def backward_graph(node, g):
        return (sum_to(g, node.parents[0].data.shape),)


# ============================================================ matmul


def _swap(a: np.ndarray) -> np.ndarray:
    return a.swapaxes(-1, -2)


@tensor_op(f="A @ B", grads=("∂A = G @ Bᵀ", "∂B = Aᵀ @ G"), category="arithmetic", symbol="@")
class matmul:
    """Matrix product (1-D, 2-D and batched, numpy semantics)."""

    def forward(a, b):
        if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned")
        try:
            return a @ b, None
        except ValueError:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned") from None

    def backward(node, g):
        pa, pb = node.parents
        a, b = pa.data, pb.data
        if a.ndim == 2 and b.ndim == 2:  # the common case, no reshaping needed
            return (
                g @ b.T if pa.requires_grad else None,
                a.T @ g if pb.requires_grad else None,
            )
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if b.ndim == 1:
            g = g[..., None]
        if a.ndim == 1:
            g = np.expand_dims(g, -2)
        ga = unbroadcast(g @ _swap(b2), a2.shape).reshape(a.shape) if pa.requires_grad else None
        gb = unbroadcast(_swap(a2) @ g, b2.shape).reshape(b.shape) if pb.requires_grad else None
        return ga, gb

    def backward_graph(node, g):
        """The same products in graph ops (1-D inputs as matrices, batch axes summed)."""
        pa, pb = node.parents
        a1, b1 = pa.data.ndim == 1, pb.data.ndim == 1
        a2 = reshape(pa, shape=(1,) + pa.data.shape) if a1 else pa
        b2 = reshape(pb, shape=pb.data.shape + (1,)) if b1 else pb
        gshape = g.data.shape + ((1,) if b1 else ())
        if a1:
            gshape = gshape[:-1] + (1,) + gshape[-1:]
        g2 = reshape(g, shape=gshape)
        ga = gb = None
        if pa.requires_grad:
            ga = reshape(sum_to(matmul(g2, _swap_node(b2)), a2.data.shape), shape=pa.data.shape)
        if pb.requires_grad:
            gb = reshape(sum_to(matmul(_swap_node(a2), g2), b2.data.shape), shape=pb.data.shape)
        return ga, gb


def _swap_node(a):
    axes = list(range(a.data.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(a, axes=tuple(axes))


def _all_nonnegative(a) -> bool:
    if a.__class__ is float:
        return a >= 0
    return bool(np.all(np.asarray(a) >= 0))


def _show(a) -> str:
    arr = np.asarray(a)
    return repr(float(arr)) if arr.ndim == 0 else f"array with min {arr.min()!r}"
