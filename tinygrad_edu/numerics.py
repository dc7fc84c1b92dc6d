"""The two numeric backends that every registry formula is written against.

Each op in the registry writes its forward formula and its local gradient once, as a
function of a backend ``m`` and the numbers: ``f(m, x)`` and ``df(m, x, y)``.  The scalar
engine (:class:`~tinygrad_edu.Value`) passes :data:`SCALAR`, which works on Python floats
through the ``math`` module; the tensor engine (:class:`~tinygrad_edu.Tensor`) passes
:data:`ARRAY`, which is numpy.  Both expose the same small vocabulary, so a formula such as
``m.where(x > 0, x, alpha * x)`` means the same thing in both engines.

Rules the formulas follow so both backends stay exact and warning-free:

* ``m.where`` evaluates *both* branches, so each branch must be finite everywhere
  (e.g. ``exp(-|x|)``, never ``exp(-x)``).
* ``m.indicator(cond, like)`` turns a condition into 0/1 of ``like``'s dtype, so float32
  tensors stay float32 (a bare ``np.where(c, 1.0, 0.0)`` would be float64).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .parallel import matmul

__all__ = ["ARRAY", "SCALAR", "ArrayMath", "ScalarMath", "broadcastable", "column_sums", "ieee"]


def _scalar_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:  # numpy gives inf here; the engines must agree
        return math.inf


def _scalar_expm1(x: float) -> float:
    try:
        return math.expm1(x)
    except OverflowError:
        return math.inf


def _scalar_log(x: float) -> float:
    if x <= 0:
        raise ValueError(f"log: input must be > 0, got {x!r}")
    return math.log(x)


def _scalar_sqrt(x: float) -> float:
    if x < 0:
        raise ValueError(f"sqrt: input must be >= 0, got {x!r}")
    return math.sqrt(x)


def _scalar_pow(x: float, p: float) -> float:
    """``x ** p`` for real results only; ``0 ** negative`` is ``inf`` (as in numpy)."""
    if x == 0 and p < 0:
        return math.inf
    if x < 0 and not float(p).is_integer():
        raise ValueError(
            f"pow: negative base {x!r} with non-integer exponent {p!r} has no real value"
        )
    try:
        return float(x**p)
    except OverflowError:
        return math.inf


class ScalarMath:
    """Backend of the scalar engine: Python floats and the ``math`` module."""

    pi = math.pi
    exp = staticmethod(_scalar_exp)
    expm1 = staticmethod(_scalar_expm1)
    log = staticmethod(_scalar_log)
    log1p = staticmethod(math.log1p)
    sqrt = staticmethod(_scalar_sqrt)
    tanh = staticmethod(math.tanh)
    erf = staticmethod(math.erf)
    abs = staticmethod(abs)
    pow = staticmethod(_scalar_pow)

    @staticmethod
    def where(cond: bool, a: float, b: float) -> float:
        return a if cond else b

    @staticmethod
    def indicator(cond: bool, like: float) -> float:
        return 1.0 if cond else 0.0

    @staticmethod
    def maximum(a: float, b: float) -> float:
        return a if a >= b else float(b)

    @staticmethod
    def minimum(a: float, b: float) -> float:
        return a if a <= b else float(b)

    @staticmethod
    def sign(x: float) -> float:
        return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


_erf_object = np.frompyfunc(math.erf, 1, 1)


def _array_erf(x: np.ndarray) -> np.ndarray:
    """Elementwise erf, exact to float64 (numpy has none; this maps ``math.erf``)."""
    x = np.asarray(x)
    return np.asarray(_erf_object(x)).astype(x.dtype if x.dtype.kind == "f" else np.float64)


def _array_indicator(cond: np.ndarray, like: np.ndarray) -> np.ndarray:
    return cond.astype(like.dtype, copy=False)


class ArrayMath:
    """Backend of the tensor engine: numpy ufuncs on arrays (dtype preserved)."""

    pi = math.pi
    exp = staticmethod(np.exp)
    expm1 = staticmethod(np.expm1)
    log = staticmethod(np.log)
    log1p = staticmethod(np.log1p)
    sqrt = staticmethod(np.sqrt)
    tanh = staticmethod(np.tanh)
    erf = staticmethod(_array_erf)
    abs = staticmethod(np.abs)
    pow = staticmethod(np.power)
    where = staticmethod(np.where)
    indicator = staticmethod(_array_indicator)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    sign = staticmethod(np.sign)


SCALAR: Any = ScalarMath
ARRAY: Any = ArrayMath


def ieee(fn: Any, *args: Any, **params: Any) -> float:
    """``fn(m, *args)`` evaluated by :data:`ARRAY` on float64 numpy scalars, as a float:
    IEEE 754 results where Python's float arithmetic raises ZeroDivisionError (1/0 = inf,
    0/0 = nan, with numpy's RuntimeWarning).  The scalar engine falls back to it at a
    pole, so it meets ``x / 0`` exactly as the array engine does."""
    return float(fn(ARRAY, *(np.float64(a) for a in args), **params))


def broadcastable(a: tuple, b: tuple) -> bool:
    """Whether arrays of shapes ``a`` and ``b`` broadcast together (numpy's rules)."""
    try:
        return np.broadcast_shapes(a, b) is not None
    except ValueError:
        return False


def checked_param(op: str, key: str, value: Any, default: Any) -> Any:
    """A parameter checked against the kind of its default: a real number (not NaN, not
    complex) for a float, a string for a string; other kinds are the op's to check."""
    if default.__class__ is float:
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or math.isnan(value):
            raise TypeError(f"{op}: parameter {key} must be a real number, got "
                            f"{type(value).__name__} {value!r:.40}")
        return float(value)
    if isinstance(default, str) and not isinstance(value, str):
        raise TypeError(f"{op}: parameter {key} must be a string, got {type(value).__name__}")
    return value


def column_sums(rows: np.ndarray) -> np.ndarray:
    """Σ over the rows of a 2-D (rows, C) array, as ``ones · rows``: one BLAS product, faster
    than numpy's reductions for the tall, narrow matrices of the array ops (the bias gradient
    of a convolution, batch-norm statistics): 535 against 624 µs for einsum at 100,352 × 16
    float32, 232 against 324 µs at 25,088 × 64.  (On one BLAS thread when small: see
    :func:`tinygrad_edu.parallel.matmul`.)"""
    return matmul(np.ones(rows.shape[0], dtype=rows.dtype), rows)
