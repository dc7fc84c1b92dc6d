"""Hypothesis strategies for gradient property tests, the ones our own test-suite uses.

Import them in your tests (hypothesis comes with ``pip install 'tinygrad_edu[testing]'``)::

    from hypothesis import given
    from tinygrad_edu.testing import gradcheck
    from tinygrad_edu.testing.strategies import op_inputs, tensors
    from tinygrad_edu.registry import get

    @given(tensors(shape=(2, 3)))
    def test_tanh_gradient(x):
        assert gradcheck(lambda t: t.tanh(), [x])

    relu = get("relu")

    @given(op_inputs(relu, shape=(4,)))
    def test_relu_gradient(inputs):
        (x,) = inputs   # an array drawn from relu's domain, at least 1e-3 away from 0
        ...

How kinks are handled
---------------------
A finite-difference check is meaningless at a point where the derivative jumps (``relu``
at 0, ``clip`` at ``lo`` and ``hi``): the central difference straddles the kink and
averages the two one-sided slopes.  The registry records these points (``op.kinks``) and
a range where the function is well conditioned (``op.domain``); the strategies here draw
inputs *from the domain* and *at least* ``margin`` *away from every kink* (``margin`` is far
larger than gradcheck's ``eps = 1e-6``).  Tolerances are never loosened to hide a kink.

Everything is float64 by default: gradient checks need it (see
:func:`tinygrad_edu.testing.gradcheck`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as exc:  # a plain install has no hypothesis
    raise ImportError(
        "tinygrad_edu.testing.strategies needs hypothesis, which a plain install does not "
        "include: pip install 'tinygrad_edu[testing]' (pytest and hypothesis)"
    ) from exc

from ..registry import Op
from ..tensor import Tensor
from ..value import Value

__all__ = [
    "arrays",
    "broadcastable_pairs",
    "distinct_arrays",
    "floats",
    "kinks_of",
    "op_inputs",
    "safe_floats",
    "shapes",
    "tensors",
    "values",
]

Shape = tuple[int, ...]

#: Points where an input of a core op makes the function blow up (a pole, not a kink):
#: ``{op name: {input index: points}}``.  They are avoided with :data:`POLE_MARGIN`.
POLES: dict[str, dict[int, tuple[float, ...]]] = {"div": {1: (0.0,)}}
#: Distance kept from a pole (a quotient a / b with |b| >= 0.25 stays well conditioned).
POLE_MARGIN = 0.25


# ------------------------------------------------------------------ shapes
def shapes(min_dims: int = 0, max_dims: int = 3, max_side: int = 4, min_side: int = 1
           ) -> st.SearchStrategy[Shape]:
    """Array shapes with ``min_dims..max_dims`` axes of length ``min_side..max_side``.

    ``()`` (a 0-d array, i.e. a scalar tensor) is included when ``min_dims == 0``.
    """
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable_pairs(min_dims: int = 0, max_dims: int = 3, max_side: int = 4,
                        min_side: int = 1) -> st.SearchStrategy[tuple[Shape, Shape]]:
    """Pairs of shapes ``(shape_a, shape_b)`` that numpy can broadcast together.

    Drawn with :func:`hypothesis.extra.numpy.mutually_broadcastable_shapes`, so the pairs
    include different ranks (``(3, 1, 4)`` with ``(2, 4)``), stretched size-1 axes and 0-d
    shapes: exactly the cases where a gradient must be summed back to its input's shape.
    """
    return hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    ).map(lambda bs: (tuple(bs.input_shapes[0]), tuple(bs.input_shapes[1])))


# ------------------------------------------------------------------ numbers
def _far_from(points: Sequence[float], margin: float):
    def ok(v: float) -> bool:
        return all(abs(v - p) >= margin for p in points)

    return ok


def _check_range(min_value: float, max_value: float, avoid: Sequence[float], margin: float
                 ) -> None:
    if not min_value < max_value:
        raise ValueError(f"need min_value < max_value, got {min_value} and {max_value}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    # The drawn numbers must have somewhere to go: reject a range swallowed by the kinks.
    free = (max_value - min_value) - sum(2 * margin for p in avoid
                                         if min_value - margin < p < max_value + margin)
    if free <= 0:
        raise ValueError(
            f"the range [{min_value}, {max_value}] has no room left once the points {avoid} "
            f"are avoided by {margin}"
        )


def floats(min_value: float = -3.0, max_value: float = 3.0, avoid: Iterable[float] = (),
           margin: float = 1e-3, width: int = 64) -> st.SearchStrategy[float]:
    """Finite floats in ``[min_value, max_value]`` at least ``margin`` away from ``avoid``."""
    avoid = tuple(float(p) for p in avoid)
    _check_range(min_value, max_value, avoid, margin)
    base = st.floats(min_value=min_value, max_value=max_value, allow_nan=False,
                     allow_infinity=False, allow_subnormal=False, width=width)
    return base.filter(_far_from(avoid, margin)) if avoid else base


def kinks_of(op: Op, params: dict[str, Any] | None = None) -> tuple[float, ...]:
    """The points where ``op``'s derivative jumps, for the given parameter values.

    Kinks that coincide with a numeric parameter's default (``clip``'s ``lo = -1`` and
    ``hi = 1``) move with that parameter: ``kinks_of(clip, {"lo": 0.5})`` is ``(0.5, 1.0)``.
    """
    kinks = list(op.kinks)
    for name, default in op.params.items():
        if params and name in params and isinstance(default, (int, float)):
            kinks = [float(params[name]) if k == default else k for k in kinks]
    return tuple(kinks)


def safe_floats(op: Op, params: dict[str, Any] | None = None, margin: float = 1e-3,
                input_index: int = 0, width: int = 64) -> st.SearchStrategy[float]:
    """Floats from ``op.domain`` where ``op`` (with ``params``) is smooth and finite.

    Draws keep ``margin`` away from the op's kinks (:func:`kinks_of`) and
    :data:`POLE_MARGIN` away from a pole of input ``input_index`` (the divisor of ``div``).
    """
    lo, hi = op.domain
    poles = POLES.get(op.name, {}).get(input_index, ())
    kinks = kinks_of(op, params)
    strategy = floats(lo, hi, avoid=kinks, margin=margin, width=width)
    if poles:
        strategy = strategy.filter(_far_from(poles, POLE_MARGIN))
    return strategy


# ------------------------------------------------------------------ arrays
def _element_strategy(dtype: Any, min_value: float, max_value: float, avoid: Sequence[float],
                      margin: float) -> st.SearchStrategy[float]:
    width = 32 if np.dtype(dtype) == np.float32 else 64
    if width == 32:  # keep the bounds representable in float32
        min_value = float(np.float32(min_value))
        max_value = float(np.float32(max_value))
    return floats(min_value, max_value, avoid=avoid, margin=margin, width=width)


def arrays(shape: Shape | st.SearchStrategy[Shape], dtype: Any = np.float64,
           elements: st.SearchStrategy[float] | None = None, min_value: float = -3.0,
           max_value: float = 3.0, avoid: Iterable[float] = (), margin: float = 1e-3,
           unique: bool = False) -> st.SearchStrategy[np.ndarray]:
    """numpy arrays of ``shape`` (a tuple or a strategy of tuples) and ``dtype``.

    Elements are finite floats in ``[min_value, max_value]``, ``margin`` away from each
    point of ``avoid``, unless an ``elements`` strategy is given.
    """
    if elements is None:
        elements = _element_strategy(dtype, min_value, max_value, tuple(avoid), margin)
    return hnp.arrays(dtype=dtype, shape=shape, elements=elements, unique=unique)


@st.composite
def distinct_arrays(draw: st.DrawFn, shape: Shape | st.SearchStrategy[Shape],
                    min_value: float = -3.0, max_value: float = 3.0, min_gap: float = 1e-2,
                    dtype: Any = np.float64) -> np.ndarray:
    """Arrays whose elements all differ pairwise by at least ``min_gap``: no ties.

    For ops such as ``max`` whose derivative jumps where two elements are equal: a gap
    much larger than gradcheck's ``eps`` means no finite difference can swap the winner.
    """
    if not isinstance(shape, tuple):
        shape = draw(shape)
    n = math.prod(shape)
    span = max_value - min_value
    if n > 1 and span / (n - 1) < min_gap:
        raise ValueError(f"{n} elements {min_gap} apart do not fit in [{min_value}, {max_value}]")
    order = np.array(draw(st.permutations(range(n))), dtype=np.float64)
    step = draw(st.floats(min_gap, span / max(n - 1, 1), allow_nan=False)) if n > 1 else 0.0
    room = span - step * (n - 1)
    start = min_value + draw(st.floats(0.0, max(room, 0.0), allow_nan=False))
    data = start + order * step
    return np.clip(data, min_value, max_value).reshape(shape).astype(dtype)


def tensors(shape: Shape | st.SearchStrategy[Shape] | None = None, dtype: Any = np.float64,
            min_value: float = -3.0, max_value: float = 3.0, avoid: Iterable[float] = (),
            margin: float = 1e-3, requires_grad: bool = True) -> st.SearchStrategy[Tensor]:
    """Leaf :class:`~tinygrad_edu.Tensor` s of ``shape`` (any :func:`shapes` when None).

    float64 and ``requires_grad=True`` by default, ready for ``gradcheck``.
    """
    if shape is None:
        shape = shapes()
    return arrays(shape, dtype=dtype, min_value=min_value, max_value=max_value,
                  avoid=avoid, margin=margin).map(
        lambda a: Tensor(a, dtype=dtype, requires_grad=requires_grad))


def values(min_value: float = -3.0, max_value: float = 3.0, avoid: Iterable[float] = (),
           margin: float = 1e-3) -> st.SearchStrategy[Value]:
    """Leaf :class:`~tinygrad_edu.Value` s holding floats in the range, away from ``avoid``."""
    return floats(min_value, max_value, avoid=avoid, margin=margin).map(Value)


def op_inputs(op: Op, shape: Shape | Sequence[Shape] | None = None,
              params: dict[str, Any] | None = None, margin: float = 1e-3,
              dtype: Any = np.float64) -> st.SearchStrategy[tuple[Any, ...]]:
    """Raw inputs for an elementwise registry op: a tuple with one entry per op input.

    ``shape=None`` gives Python floats (for the Value engine); a shape gives arrays of that
    shape for every input; for a binary op, a pair of shapes (e.g. drawn from
    :func:`broadcastable_pairs`) gives one array per shape.  Every number comes from
    ``op.domain``, at least ``margin`` from the kinks (for these ``params``) and away from
    the poles (:data:`POLES`).  Wrap them yourself: ``Value(x)`` or
    ``Tensor(a, requires_grad=True)``.
    """
    if op.kind == "unary":
        n_inputs = 1
    elif op.kind == "binary":
        n_inputs = 2
    else:
        raise TypeError(
            f"op_inputs: {op.name} is a {op.kind} op; only elementwise (unary, binary) ops "
            "have a domain per element: draw its inputs with arrays() / tensors()"
        )
    if shape is None:
        per_input: list[Shape | None] = [None] * n_inputs
    elif len(shape) > 0 and all(isinstance(s, tuple) for s in shape):
        per_input = [tuple(s) for s in shape]  # type: ignore[arg-type]
        if len(per_input) != n_inputs:
            raise ValueError(f"op_inputs: {op.name} takes {n_inputs} input(s), "
                             f"got {len(per_input)} shapes")
    else:
        per_input = [tuple(shape)] * n_inputs  # type: ignore[arg-type]
    width = 32 if np.dtype(dtype) == np.float32 else 64
    parts = []
    for i, s in enumerate(per_input):
        elements = safe_floats(op, params, margin=margin, input_index=i, width=width)
        parts.append(elements if s is None else hnp.arrays(dtype, s, elements=elements))
    return st.tuples(*parts)
