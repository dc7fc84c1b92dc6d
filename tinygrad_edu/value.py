"""`Value`: the scalar engine, one Python float per graph node.

>>> x, w, b = Value(2.0, label="x"), Value(-3.0, label="w"), Value(6.88, label="b")
>>> y = (x * w + b).tanh()
>>> y.backward()
>>> round(x.grad, 4), round(w.grad, 4)
(-1.5029, 1.0019)

Every operation comes from the registry (:mod:`tinygrad_edu.ops`,
:mod:`tinygrad_edu.activations`), evaluated on Python floats through ``math``.  The
engine protocol hooks (``_make``, ``_coerce``...) are described once, on
:class:`~tinygrad_edu.autograd.Node`; the few tricks that make this engine fast are
gathered at the end of this file, under "Fast paths".
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from . import activations as _activations  # noqa: F401  (registers the activations)
from .autograd import CONSTANT, GradMode, Node
from .numerics import SCALAR
from .ops import add, div, mul, neg, sub
from .registry import REGISTRY, register_engine

__all__ = ["Value"]


class Value(Node):
    """A scalar node: ``.data`` (float), ``.grad`` (float, 0.0 until backward), ``.label``.

    Supports ``+ - * / **`` (with numbers on either side), unary ``-``, ``exp``, ``log``,
    ``sqrt``, ``abs`` and every activation of the registry as a method
    (``v.tanh()``, ``v.leaky_relu(0.2)``, ``v.gelu(approximate="tanh")``...).
    """

    __slots__ = ()
    _math = SCALAR
    _GRAD_INIT = 0.0
    _BROADCASTS = False
    requires_grad = True  # every Value takes part in backward
    __array_ufunc__ = None  # numpy defers to our reflected operators

    def __init__(self, data: float, label: str = "") -> None:
        self.data = data if data.__class__ is float else _as_float(data)
        self.grad = 0.0
        self._parents = ()
        self._op = None
        self._ctx = None
        self.label = label

    # ------------------------------------------------------------ engine hooks
    # _make: see "Fast paths" at the end of this file.

    @staticmethod
    def _coerce(x: Any, like: Any = None) -> Value:
        if isinstance(x, Value):
            return x
        return Value(_as_float(x, "Value operand"), CONSTANT)

    @staticmethod
    def _reduce_to(g: float, parent: Value) -> float:
        return g  # numbers never broadcast: nothing to sum

    def _seed_gradient(self, gradient: Any) -> float:
        if self._ctx is _NO_GRAPH:
            raise RuntimeError(
                "backward: this Value was computed under no_grad(), so it has no graph to "
                "backpropagate through (compute it outside no_grad())"
            )
        return 1.0 if gradient is None else _as_float(gradient, "backward gradient")

    # ------------------------------------------------------------ arithmetic
    # Each operator is a registry op; a number on either side becomes a constant Value
    # (``_operand``), anything else makes Python try the other operand's method.
    def __add__(self, other: Any) -> Value:
        other = _operand(other)
        return NotImplemented if other is None else add(self, other)

    def __radd__(self, other: Any) -> Value:
        other = _operand(other)
        return NotImplemented if other is None else add(other, self)

    def __sub__(self, other: Any) -> Value:
        other = _operand(other)
        return NotImplemented if other is None else sub(self, other)

    def __rsub__(self, other: Any) -> Value:
        other = _operand(other)
        return NotImplemented if other is None else sub(other, self)

    def __mul__(self, other: Any) -> Value:
        other = _operand(other)
        return NotImplemented if other is None else mul(self, other)

    def __rmul__(self, other: Any) -> Value:
        other = _operand(other)
        return NotImplemented if other is None else mul(other, self)

    def __truediv__(self, other: Any) -> Value:
        other = _operand(other)
        return NotImplemented if other is None else div(self, other)

    def __rtruediv__(self, other: Any) -> Value:
        other = _operand(other)
        return NotImplemented if other is None else div(other, self)

    def __pow__(self, other: Any) -> Value:
        """``x ** y``: a number exponent is the op ``pow_const``; a Value one is ``pow``."""
        if isinstance(other, Value):
            return REGISTRY["pow"](self, other)
        if isinstance(other, numbers.Real):
            return REGISTRY["pow_const"](self, p=float(other))
        return NotImplemented

    def __rpow__(self, other: Any) -> Value:
        other = _operand(other)
        return NotImplemented if other is None else REGISTRY["pow"](other, self)

    def __neg__(self) -> Value:
        return neg(self)

    # ------------------------------------------------------------ comparisons
    # ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` compare the numbers (with a Value or a
    # number) and return a plain bool: not an op, no gradient, as in PyTorch.  Values stay
    # hashable by identity, so two equal Values are still two graph nodes.
    __hash__ = Node.__hash__

    def __eq__(self, other: object) -> bool:
        other = _compared(other)
        return NotImplemented if other is None else self.data == other

    def __ne__(self, other: object) -> bool:
        other = _compared(other)
        return NotImplemented if other is None else self.data != other

    def __lt__(self, other: Any) -> bool:
        other = _compared(other)
        return NotImplemented if other is None else self.data < other

    def __le__(self, other: Any) -> bool:
        other = _compared(other)
        return NotImplemented if other is None else self.data <= other

    def __gt__(self, other: Any) -> bool:
        other = _compared(other)
        return NotImplemented if other is None else self.data > other

    def __ge__(self, other: Any) -> bool:
        other = _compared(other)
        return NotImplemented if other is None else self.data >= other

    # ------------------------------------------------------------ the rest
    def detach(self) -> Value:
        """A new leaf with the same number and no history: gradients stop here."""
        return Value(self.data, label=self.label)

    @staticmethod
    def softmax(values: Sequence[Value | float]) -> list[Value]:
        """Softmax of a list of Values: ``e^(xᵢ − m) / Σⱼ e^(xⱼ − m)``, m = max (a constant)."""
        xs = [Value._coerce(v) for v in values]
        shift = max(v.data for v in xs)
        exps = [(v - shift).exp() for v in xs]
        total = _chain_sum(exps)
        return [e / total for e in exps]

    @staticmethod
    def log_softmax(values: Sequence[Value | float]) -> list[Value]:
        """Log-softmax of a list of Values: ``xᵢ − m − ln Σⱼ e^(xⱼ − m)``, stable for any size."""
        xs = [Value._coerce(v) for v in values]
        shift = max(v.data for v in xs)
        log_total = _chain_sum([(v - shift).exp() for v in xs]).log()
        return [v - shift - log_total for v in xs]

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        grad = self.grad.data if isinstance(self.grad, Value) else self.grad  # create_graph
        return f"Value(data={_num(self.data)}, grad={_num(grad)}{label})"


def _compared(x: Any) -> float | None:
    """The number a Value is compared with, or None (Python then tries the other side)."""
    if isinstance(x, Value):
        return x.data
    if isinstance(x, numbers.Real):
        return float(x)
    return None


#: The ``ctx`` of a Value made by an op under ``no_grad()``: a leaf that knows it has no
#: graph, so ``backward()`` on it raises instead of silently doing nothing.
_NO_GRAPH: Any = ("no graph: computed under no_grad()",)


def _as_float(x: Any, what: str = "Value") -> float:
    if isinstance(x, numbers.Real):
        return float(x)
    raise TypeError(f"{what}: expected a real number, got {type(x).__name__} {x!r}")


def _num(x: float) -> str:
    """A float for reading: 6 significant digits, always with a decimal point."""
    text = f"{x:.6g}"
    return text if any(c in text for c in ".enai") else text + ".0"


def _chain_sum(values: list[Value]) -> Value:
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


# ============================================================================ Fast paths
# Building a graph of Values is dominated by Python's per-call overhead, so the two
# functions every operation goes through are written for speed.  Each does exactly what
# its plain version (in its docstring) would.  What each buys was measured in CPU
# instructions on benchmarks/scalar.py's workloads, against its plain version.

_new = object.__new__  # looked up once: ``object.__new__`` at each call costs 3% of a build


def _make(data: float, parents: tuple, op: Any, ctx: Any) -> Value:
    """The ``_make`` hook (an op's result).  Plain version: ``v = Value(data)``, then
    record ``parents``, ``op`` and ``ctx`` unless ``no_grad()`` is on.

    Fast: ``object.__new__`` skips ``__init__`` and its float check (an op's result
    already is a float), and each attribute is set once: 10% of building a graph."""
    v = _new(Value)
    v.data = data
    v.grad = 0.0
    v.label = ""
    if GradMode.enabled:
        v._parents = parents
        v._op = op
        v._ctx = ctx
    else:
        v._parents = ()
        v._op = None
        v._ctx = _NO_GRAPH
    return v


def _operand(x: Any) -> Value | None:
    """An operator's other operand as a Value, or None when it is not a number (Python then
    raises TypeError).  Plain version: ``Value._coerce(x)``, None on its TypeError.

    Fast: a Value is recognised by its class and returned at once, and ``float`` and
    ``int`` are recognised before the ``numbers.Real`` check (an ABC lookup): 8% of
    building a graph of Values, 30% of a chain with number constants (``y * 0.5 + 1``)."""
    cls = x.__class__
    if cls is Value:
        return x
    if cls is float or cls is int or isinstance(x, numbers.Real):
        return Value(float(x), CONSTANT)  # marked: drawn as a constant
    return None


Value._make = staticmethod(_make)  # type: ignore[method-assign]
register_engine(Value, "scalar")
