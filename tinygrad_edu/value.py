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

import functools
import numbers
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from . import activations as _activations  # noqa: F401  (registers the activations)
from .autograd import CONSTANT, GradMode, Node, fast_backward
from .numerics import SCALAR
from .ops import add, div, mul, neg, sub
from .registry import ONE, REGISTRY, register_engine

__all__ = ["Value"]


class Value(Node):
    """A scalar node: ``.data`` (float), ``.grad`` (float, 0.0 until backward), ``.label``.

    Supports ``+ - * / **`` (with numbers on either side), unary ``-``, ``exp``, ``log``,
    ``sqrt``, ``abs`` and every activation of the registry as a method
    (``v.tanh()``, ``v.leaky_relu(0.2)``, ``v.gelu(approximate="tanh")``...).
    """

    __slots__ = ("_a", "_b")  # the parents (``parents`` reads them): see "Fast paths"
    _math = SCALAR
    _GRAD_INIT = 0.0
    _BROADCASTS = False
    requires_grad = True  # every Value takes part in backward
    __array_ufunc__ = None  # numpy defers to our reflected operators

    def __init__(self, data: float, label: str = "") -> None:
        self.data = data if data.__class__ is float else _as_float(data)
        self.grad = 0.0
        self._a = self._b = None  # no parents (``parents`` reads these two slots)
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
# Building and backpropagating Values is dominated by Python's per-call and per-object
# costs, so what every op goes through is written for speed here, each doing what its plain
# version (named in its docstring) does.  What each buys was measured (CPU time, median of
# 5, GC at its defaults) on benchmarks/scalar.py's "tree" (200,000 ops), "chain" (2·10⁵
# steps of y·a + b) and "wide" (one MLP graph).

_new = object.__new__  # looked up once: ``object.__new__`` at each call costs 3% of a build


# ---------------------------------------------------------------- one object per op
def _get_parents(v: Value) -> tuple:
    a, b = v._a, v._b
    if a is None:
        return ()
    if a.__class__ is float:  # a number of the expression: its constant leaf, made now
        a = v._a = Value(a, CONSTANT)
    if b is None:
        return (a,)
    if b.__class__ is float:
        b = v._b = Value(b, CONSTANT)
    return (a, b)


def _set_parents(v: Value, parents: tuple) -> None:
    if len(parents) > 2:
        raise ValueError(f"a Value has at most two parents, got {len(parents)}")
    v._a = parents[0] if parents else None
    v._b = parents[1] if len(parents) == 2 else None


Value._parents = property(  # type: ignore[assignment]
    _get_parents, _set_parents,
    doc="""``parents``, kept in two slots.  Plain version: the tuple in the ``_parents``
    slot of :class:`~tinygrad_edu.autograd.Node`, a number operand (``y * 0.5``) made a
    constant leaf Value by the operator.

    Fast: the tuple and the constant leaf are two more objects per op for Python's cyclic
    garbage collector to track, and its collections are most of the time of building a
    graph; without them an op result is one tracked object.  A slot holds the number
    itself until ``parents`` is first read, which makes its constant leaf then (the same
    leaf at every later read); the fast backward sends such a number no gradient (a
    constant needs none), so a leaf made after it shows 0.  The collector's time while
    building: tree 0.43 → 0.27 s, a 10⁶-op chain 1.22 → 0.66 s.""")


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
        _set_parents(v, parents)
        v._op = op
        v._ctx = ctx
    else:
        v._a = v._b = None
        v._op = None
        v._ctx = _NO_GRAPH
    return v


def _operand(x: Any) -> Value | None:
    """An operator's other operand as a Value, or None when it is not a number (Python then
    raises TypeError).  Plain version: ``Value._coerce(x)``, None on its TypeError.

    Fast: Value, ``float`` and ``int`` are recognised by their class before the
    ``numbers.Real`` check (an ABC lookup).  Used by the operators of the class above,
    which :func:`_fast_binary` calls for what it does not handle itself."""
    cls = x.__class__
    if cls is Value:
        return x
    if cls is float or cls is int or isinstance(x, numbers.Real):
        return Value(float(x), CONSTANT)  # marked: drawn as a constant
    return None


# ---------------------------------------------------------------- forward: one call per op
def _fast_binary(op: Any, plain: Any, reflected: bool) -> Any:
    """The operator ``a <op> b`` (``b <op> a`` when ``reflected``) for Values and numbers.
    Plain version: the ``__add__``/``__radd__``... of the Value class above, which go
    through ``_operand``, ``Binary.__call__`` and ``_make``.

    Fast: the registry entry's ``f`` is called directly and the result built in place:
    one Python call per op besides ``f`` instead of four.  Anything unusual (another
    operand type, a pole, ``no_grad()``, anomaly mode) takes the plain way.  With
    :func:`_fast_unary`, building takes: tree 0.54 → 0.44 s, chain 1.06 → 0.38 s (with
    the numbers kept as numbers), wide 0.044 → 0.025 s."""
    f, m = op.f, SCALAR

    def operator_(self: Value, other: Any) -> Any:
        cls = other.__class__
        if cls is Value:
            x = other.data
        elif cls is float or cls is int:
            other = x = float(other)  # kept as a number: see ``Value._parents``
        else:
            return plain(self, other)
        if not GradMode.enabled or Value._make is not _make:
            return plain(self, other)
        try:
            y = f(m, x, self.data) if reflected else f(m, self.data, x)
        except ZeroDivisionError:
            return plain(self, other)  # a pole: the plain way gives numpy's IEEE result
        v = _new(Value)
        v.data, v.grad, v.label = y, 0.0, ""
        if reflected:
            v._a, v._b = other, self
        else:
            v._a, v._b = self, other
        v._op, v._ctx = op, None
        return v

    return functools.update_wrapper(operator_, plain)  # its ``__wrapped__``: the plain one


def _fast_unary(op: Any, plain: Any) -> Any:
    """The method ``v.<op>()`` of a unary entry (``v.relu()``, ``v.tanh()``, ``-v``).
    Plain version: the registry's ``method_for(op)`` (``plain``), through ``Unary.__call__``
    and ``_make``.

    Fast: without parameters in the call, the entry's ``f`` runs with its default
    parameters and the result is built in place (as in :func:`_fast_binary`)."""
    f, m, params = op.f, SCALAR, op.params

    def method(self: Value, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs or not GradMode.enabled or Value._make is not _make:
            return plain(self, *args, **kwargs)
        try:
            y = f(m, self.data, **params)
        except ZeroDivisionError:
            return plain(self)
        v = _new(Value)
        v.data, v.grad, v.label = y, 0.0, ""
        v._a, v._b = self, None
        v._op, v._ctx = op, params
        return v

    return functools.update_wrapper(method, plain)  # name, doc, _registry_op, signature


# ---------------------------------------------------------------- backward
# ``Value.run_backward`` is ``autograd.fast_backward`` (the fallbacks to the plain pass,
# shared with the array engine) with this engine's order and chain rule.  Fast, twice: the
# order comes from a search without an iterator object per node (:func:`_outputs_first`),
# and each local gradient of the registry's unary and binary entries is evaluated and
# added in the loop, on the floats, instead of through ``op.backward`` and a tuple per node.
# Backward takes: tree 0.46 → 0.12 s, chain 0.77 → 0.14 s, wide 0.073 → 0.028 s.
def _outputs_first(root: Value) -> list[Value]:
    """The op results ``root`` depends on, each before its parents (``root`` first), their
    ``.grad`` reset to 0.0: a depth-first search whose stack holds only nodes.  A node on
    top pushes its first parent not yet seen, else it is done (its parents all are);
    ``.grad`` holds ``seen`` meanwhile (cheaper than a set).  A leaf's None ``.grad``
    becomes 0.0.  Plain version: ``reversed(root.topological_order())`` without the
    leaves, as ``autograd.results_first``, which reads ``_parents`` (a tuple per node)."""
    if root._op is None:
        return []
    seen = root.grad = object()
    stack, order = [root], []
    while stack:
        node = stack[-1]
        a = node._a
        if a.__class__ is not float:  # a number of the expression (see _parents): no grad
            if a._op is None:
                if a.grad is None:
                    a.grad = 0.0
            elif a.grad is not seen:
                a.grad = seen
                stack.append(a)
                continue
        b = node._b
        if b is not None and b.__class__ is not float:
            if b._op is None:
                if b.grad is None:
                    b.grad = 0.0
            elif b.grad is not seen:
                b.grad = seen
                stack.append(b)
                continue
        order.append(stack.pop())
    order.reverse()
    for node in order:  # intermediates start from nothing; leaves accumulate
        node.grad = 0.0
    return order


_KINDS: dict[Any, tuple] = {}  # op -> (kind, df or da, db), read from the entry once


def _kind(op: Any) -> tuple:
    """2: binary; 0, 1: unary without, with parameters; 3: another kind (op.backward)."""
    kind = (2, op.da, op.db) if op.kind == "binary" else (
        (1 if op.params else 0, op.df, None) if op.kind == "unary" else (3, None, None))
    _KINDS[op] = kind
    return kind


def _chain_rule(order: list[Value]) -> None:
    """``_propagate`` for Values: each node's gradient times the local gradient (the
    entry's ``df``, ``da``, ``db`` on the floats; ``ONE`` passes it through) is added to
    its parents' ``.grad``.  A pole (ZeroDivisionError) goes through ``op.backward``."""
    m, kinds = SCALAR, _KINDS
    for node in order:
        g, op, a = node.grad, node._op, node._a
        kind, da, db = kinds.get(op) or _kind(op)
        try:
            if kind == 2:  # binary
                b, y = node._b, node.data
                if a.__class__ is float:  # a number of the expression needs no gradient
                    b.grad += g if db is ONE else g * db(m, a, b.data, y)
                elif b.__class__ is float:
                    a.grad += g if da is ONE else g * da(m, a.data, b, y)
                else:
                    ga = g if da is ONE else g * da(m, a.data, b.data, y)
                    gb = g if db is ONE else g * db(m, a.data, b.data, y)
                    a.grad += ga
                    b.grad += gb
            elif kind == 0:  # unary without parameters
                a.grad += g if da is ONE else g * da(m, a.data, node.data)
            elif kind == 1:  # unary with parameters (in ctx)
                a.grad += g if da is ONE else g * da(m, a.data, node.data, **node._ctx)
            else:  # not elementwise: the op's own backward
                _through_op(node, op, g)
        except ZeroDivisionError:  # a pole: op.backward gives numpy's IEEE result
            _through_op(node, op, g)


def _through_op(node: Value, op: Any, g: float) -> None:
    for parent, grad in zip(node._parents, op.backward(node, g)):
        if grad is not None:
            parent.grad += grad


# ---------------------------------------------------------------- install
Value._make = staticmethod(_make)  # type: ignore[method-assign]
Value.run_backward = fast_backward(  # type: ignore[method-assign]
    _chain_rule, _outputs_first, attrgetter("_a", "_b"))
for _name, _op in (("add", add), ("sub", sub), ("mul", mul), ("truediv", div)):
    for _reflected in (False, True):
        _dunder = f"__{'r' if _reflected else ''}{_name}__"
        setattr(Value, _dunder, _fast_binary(_op, getattr(Value, _dunder), _reflected))
register_engine(Value, "scalar")
for _name, _method in list(vars(Value).items()):
    _op = getattr(_method, "_registry_op", None)
    if _op is not None and _op.kind == "unary":
        setattr(Value, _name, _fast_unary(_op, _method))
Value.__neg__ = _fast_unary(neg, Value.__neg__)  # type: ignore[method-assign]
