"""The registry: every operation and activation, defined once, used by everything.

An op states its forward formula and its local gradient side by side.  Three kinds:

* :class:`Unary`  -- elementwise ``y = f(x)`` with local gradient ``f'(x)`` (written in
  terms of ``x`` and/or ``y``).  Works in both engines.
* :class:`Binary` -- elementwise ``y = f(a, b)`` with local gradients ``df/da`` and
  ``df/db``.  Works in both engines; the tensor engine also sums gradients back over the
  axes that broadcasting stretched.
* :class:`TensorOp` -- anything that is not elementwise (matmul, sum, softmax, conv...):
  a ``forward`` on numpy arrays and a ``backward`` giving each input's gradient (the
  vector-Jacobian product).  Tensor engine only.

The engines, the tests (``tests/test_registry_gradients.py`` walks :data:`REGISTRY`), the
graph renderer and the backward explainer all read the same entries, so adding one entry
adds an op that is differentiated, tested, drawn and explained.

Defining your own op
--------------------
>>> from tinygrad_edu.registry import unary
>>> @unary(f="x³", df="3x²", domain=(-3.0, 3.0))
... class cube:
...     '''The cube function.'''
...     def f(m, x):
...         return x * x * x
...     def df(m, x, y):
...         return 3 * x * x
>>> from tinygrad_edu import Value
>>> cube(Value(2.0)).data
8.0

``m`` is the numeric backend (:mod:`tinygrad_edu.numerics`): write ``m.exp``, ``m.where``...
instead of ``math.exp`` or ``np.exp`` and the same definition serves both engines.

How an op reaches the engines
-----------------------------
This module depends on the graph core (:mod:`tinygrad_edu.autograd`) only.  The engines
register themselves (:func:`register_engine`), and an op builds its result, converts
plain numbers and sums gradients back through the hooks of the engine protocol, written
down once on :class:`~tinygrad_edu.autograd.Node`.  Backward asks each op for its
parents' gradients: ``Unary``/``Binary`` compute upstream × :meth:`~Unary.local`; a
``TensorOp``'s own ``backward`` reads ``node.parents`` and ``node.ctx``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from .autograd import Node
from .numerics import broadcastable, checked_param, ieee

__all__ = [
    "ONE",
    "REGISTRY",
    "Binary",
    "Op",
    "TensorOp",
    "Unary",
    "activation_ops",
    "binary",
    "entries",
    "get",
    "register_engine",
    "tensor_op",
    "unary",
]

REGISTRY: dict[str, Op] = {}


class _One(float):
    """The number 1.0, marked: an entry's local gradient that is the constant one.

    Backward passes the upstream through unchanged where the local gradient is ``ONE``
    (``g × 1 = g``: no multiplication, and for tensors no copy)."""

    __slots__ = ()


#: The local gradient "1" of an entry (``df = 1``, ``da = 1``): see :class:`_One`.
ONE: Any = _One(1.0)


class Op:
    """Base of every registry entry.

    Attributes: ``name``; ``kind`` ("unary", "binary", "tensor"); ``category`` ("activation",
    "arithmetic", "math", "reduce", "shape", "loss", "nn"); ``symbol`` shown in graphs;
    ``f_text`` and ``grad_texts`` (one per input) are the formulas shown in docs, graphs and
    explanations; ``params`` the keyword parameters and their defaults; ``domain`` an input
    range where finite differences are well conditioned and ``kinks`` the points where the
    derivative jumps (tests keep away from them); ``scalar`` whether the Value engine has it.
    """

    kind = "op"

    def __init__(
        self,
        name: str,
        *,
        category: str,
        f_text: str,
        grad_texts: tuple[str, ...],
        doc: str = "",
        symbol: str | None = None,
        params: dict[str, Any] | None = None,
        domain: tuple[float, float] = (-3.0, 3.0),
        kinks: tuple[float, ...] = (),
        scalar: bool = True,
        register: bool = True,
    ) -> None:
        self.name = name
        self.category = category
        self.f_text = f_text
        self.grad_texts = grad_texts
        self.symbol = symbol or name
        self.params: dict[str, Any] = dict(params or {})
        self.domain = domain
        self.kinks = kinks
        self.scalar = scalar
        self.__doc__ = self._compose_doc(doc)
        if register:  # a second definition of a name replaces the first (see _replace)
            old = REGISTRY.get(name)
            REGISTRY[name] = self
            if old is not None:
                _replace(old, self)

    def _compose_doc(self, doc: str) -> str:
        lines = [inspect.cleandoc(doc) if doc else self.name, "", f"    f = {self.f_text}"]
        lines += [f"    {t}" for t in self.grad_texts]
        if self.params:
            lines += ["", "Parameters: " + ", ".join(f"{k}={v!r}" for k, v in self.params.items())]
        return "\n".join(lines)

    def _bind(self, args: tuple, kwargs: dict) -> dict[str, Any]:
        """Parameters of one call, defaults filled in; unknown names are a TypeError."""
        if not args and not kwargs:
            return self.params
        names = list(self.params)
        if len(args) > len(names):
            raise TypeError(f"{self.name}: takes {len(names)} parameter(s) {names}, got {args}")
        bound = dict(self.params)
        bound.update(zip(names, args))
        for key, value in kwargs.items():
            if key not in bound:
                raise TypeError(f"{self.name}: unknown parameter {key!r} (has {names})")
            bound[key] = value
        for key, default in self.params.items():
            if bound[key] is not default:
                bound[key] = checked_param(self.name, key, bound[key], default)
        return bound

    def local(self, node) -> tuple | None:
        """The local gradients d node / d parent, one per parent, where elementwise."""
        return None

    def __repr__(self) -> str:
        return f"<{self.kind} op {self.name!r}: f = {self.f_text}>"


class Unary(Op):
    """Elementwise ``y = f(x)``; backward multiplies the upstream by ``f'(x)``."""

    kind = "unary"

    def __init__(self, name: str, f: Callable, df: Callable | Any, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.f = f
        self.df = df

    def __call__(self, x: Any, *args: Any, **kwargs: Any):
        params = self._bind(args, kwargs)
        cls = x.__class__
        if cls not in ENGINES:  # a number, or a subclass such as nn.Parameter
            cls = _engine_of((x,))
            x = cls._coerce(x, None)
        try:
            y = self.f(cls._math, x.data, **params)
        except ZeroDivisionError:  # a pole on Python floats: IEEE result, as numpy
            y = ieee(self.f, x.data, **params)
        return cls._make(y, (x,), self, params)

    def local(self, node) -> tuple:
        """``(f'(x),)``: the local gradient at this node."""
        (x,) = node._parents
        df = self.df
        try:
            return (df if df is ONE else df(node._math, x.data, node.data, **node._ctx),)
        except ZeroDivisionError:  # f' has a pole here (√x at 0): IEEE result, as numpy
            return (ieee(df, x.data, node.data, **node._ctx),)

    def backward(self, node, g) -> tuple:
        """The chain rule: the input's gradient is upstream × local."""
        (x,) = node._parents
        if not x.requires_grad:
            return (None,)
        (local,) = self.local(node)
        g = g if local is ONE else g * local
        if node._BROADCASTS:  # sum back over the axes broadcasting stretched
            g = node._reduce_to(g, x)
        return (g,)


class Binary(Op):
    """Elementwise ``y = f(a, b)`` with broadcasting; backward uses ``df/da`` and ``df/db``."""

    kind = "binary"

    def __init__(self, name: str, f: Callable, da: Callable | Any, db: Callable | Any, **kw):
        super().__init__(name, **kw)
        self.f = f
        self.da = da
        self.db = db

    def __call__(self, a: Any, b: Any):
        cls = a.__class__
        if cls is not b.__class__ or cls not in ENGINES:
            cls = _engine_of((a, b))
            a = cls._coerce(a, b)
            b = cls._coerce(b, a)
        try:
            y = self.f(cls._math, a.data, b.data)
        except ValueError as exc:
            if cls._BROADCASTS and not broadcastable(a.data.shape, b.data.shape):
                raise ValueError(  # numpy's broadcasting failed: name the op and both shapes
                    f"{self.name}: shapes {a.data.shape} and {b.data.shape} cannot be broadcast"
                ) from exc
            raise
        except ZeroDivisionError:  # a pole on Python floats: IEEE result, as numpy
            y = ieee(self.f, a.data, b.data)
        return cls._make(y, (a, b), self, None)

    def local(self, node) -> tuple:
        """``(∂f/∂a, ∂f/∂b)``: the local gradients at this node."""
        a, b = node._parents
        m, y, da, db = node._math, node.data, self.da, self.db
        try:
            return (da if da is ONE else da(m, a.data, b.data, y),
                    db if db is ONE else db(m, a.data, b.data, y))
        except ZeroDivisionError:  # a pole of a local gradient: IEEE result, as numpy
            return (da if da is ONE else ieee(da, a.data, b.data, y),
                    db if db is ONE else ieee(db, a.data, b.data, y))

    def backward(self, node, g) -> tuple:
        """The chain rule: each input's gradient is upstream × local, summed back over the
        axes broadcasting stretched (``a`` of shape (3,) added to (4, 3) was used 4 times)."""
        a, b = node._parents
        da, db = self.local(node)
        ga = gb = None
        if a.requires_grad:
            ga = g if da is ONE else g * da
            if node._BROADCASTS:
                ga = node._reduce_to(ga, a)
        if b.requires_grad:
            gb = g if db is ONE else g * db
            if node._BROADCASTS:
                gb = node._reduce_to(gb, b)
        return ga, gb


class TensorOp(Op):
    """A non-elementwise tensor op: ``forward(*arrays, **params) -> (y, ctx)`` and
    ``backward(node, g) -> gradients``, one per input (None where not needed).

    ``forward`` gets the inputs' numpy arrays and the call's parameters; what it returns
    as ``ctx`` is kept for the backward.  ``backward`` gets the result node and the
    upstream gradient ``g`` (shaped like the result); it reads the inputs in
    :attr:`node.parents <tinygrad_edu.autograd.Node.parents>` (a parent's array is
    ``.data``; one whose ``.requires_grad`` is False needs no gradient) and the saved values
    in :attr:`node.ctx <tinygrad_edu.autograd.Node.ctx>`.  Each gradient it returns must
    have its input's shape, and be a new array or a view of ``g`` (never an array kept in
    ``ctx``): a leaf keeps it as its ``.grad`` (copied only when it may be shared with ``g``
    or another input).

    ``backward_graph(node, g)`` (optional) is the same backward written in graph ops on
    Tensors (``g`` and the parents are nodes): it is what ``create_graph=True`` runs, so
    the gradient can be differentiated again (see :mod:`tinygrad_edu.higher_order`).
    """

    kind = "tensor"

    def __init__(self, name: str, forward: Callable, backward: Callable,
                 backward_graph: Callable | None = None, **kw: Any) -> None:
        kw.setdefault("scalar", False)
        super().__init__(name, **kw)
        self.forward = forward
        self._backward = backward
        self.backward_graph = backward_graph

    def __call__(self, *inputs: Any, **kwargs: Any):
        Tensor = _engine_for("array")
        params = self._bind((), kwargs)
        tensors = tuple(x if isinstance(x, Tensor) else Tensor._coerce(x, None) for x in inputs)
        y, ctx = self.forward(*[t.data for t in tensors], **params)
        return Tensor._make(y, tensors, self, ctx)

    def backward(self, node, g) -> tuple:
        """The op's own backward, checked: one gradient (or None) per input, each of its
        input's shape (a wrong shape would otherwise surface far away, in a sum), and cast
        to its input's dtype (as the elementwise ops' are)."""
        grads = tuple(self._backward(node, g))
        parents = node._parents
        for i, (parent, grad) in enumerate(zip(parents, grads)):
            if isinstance(grad, np.ndarray):
                data = parent.data
                if grad.shape != data.shape:
                    raise ValueError(f"{self.name}: backward returned a gradient of shape "
                                     f"{grad.shape} for input {i} of shape {data.shape}")
                if grad.dtype != data.dtype:
                    grads = grads[:i] + (grad.astype(data.dtype),) + grads[i + 1:]
        if len(grads) < len(parents):  # the inputs it left out get no gradient
            grads += (None,) * (len(parents) - len(grads))
        return grads


# ------------------------------------------------------------------ decorators
def _constant_or(fn: Any) -> Any:
    return ONE if fn == 1 else fn


def _entry(kind: type, parts: tuple[str, ...], name: str | None, **kw: Any) -> Callable:
    """The class decorator that makes a registered ``kind`` entry out of the class's
    ``parts`` (its functions, or the constant 1), named after the class by default.
    A tensor op's optional ``backward_graph`` is passed on when the class has one."""

    def build(cls: type) -> Op:
        ns = vars(cls)
        extra = {"backward_graph": ns["backward_graph"]} if "backward_graph" in ns else {}
        return kind(
            name or cls.__name__,
            *(_constant_or(ns[part]) for part in parts),
            doc=cls.__doc__ or "",
            **extra,
            **kw,
        )

    return build


def unary(
    *,
    f: str,
    df: str,
    category: str = "math",
    name: str | None = None,
    **kw: Any,
) -> Callable[[type], Unary]:
    """Class decorator: a class with ``f(m, x, **params)`` and ``df(m, x, y, **params)``
    becomes a registered :class:`Unary` op (named after the class).  ``df = 1`` means the
    local gradient is the constant one."""
    return _entry(Unary, ("f", "df"), name, category=category, f_text=f,
                  grad_texts=(f"f'(x) = {df}",), **kw)


def binary(
    *,
    f: str,
    da: str,
    db: str,
    category: str = "arithmetic",
    name: str | None = None,
    **kw: Any,
) -> Callable[[type], Binary]:
    """Class decorator: a class with ``f(m, a, b)``, ``da(m, a, b, y)`` and ``db(m, a, b, y)``
    becomes a registered :class:`Binary` op.  ``da = 1`` means the constant one."""
    return _entry(Binary, ("f", "da", "db"), name, category=category, f_text=f,
                  grad_texts=(f"∂f/∂a = {da}", f"∂f/∂b = {db}"), **kw)


def tensor_op(
    *,
    f: str,
    grads: tuple[str, ...],
    category: str,
    name: str | None = None,
    **kw: Any,
) -> Callable[[type], TensorOp]:
    """Class decorator: a class with ``forward(*arrays, **params) -> (y, ctx)`` and
    ``backward(node, g) -> tuple`` (and optionally ``backward_graph(node, g)``, the same in
    graph ops, for higher-order gradients) becomes a registered :class:`TensorOp`."""
    return _entry(TensorOp, ("forward", "backward"), name, category=category, f_text=f,
                  grad_texts=grads, **kw)


# ------------------------------------------------------------------ queries
def get(name: str) -> Op:
    """The registry entry called ``name`` (KeyError listing the known names otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no op named {name!r}; known: {sorted(REGISTRY)}") from None


def entries(category: str | None = None, kind: str | None = None) -> list[Op]:
    """Registry entries, optionally filtered by category and kind, in definition order."""
    return [
        op
        for op in REGISTRY.values()
        if (category is None or op.category == category) and (kind is None or op.kind == kind)
    ]


def activation_ops() -> list[Op]:
    """Every activation function in the registry."""
    return entries("activation")


# ------------------------------------------------------------------ engines
# The ops reach Value and Tensor only through the engine protocol (documented on
# autograd.Node) and this registration: this module never imports an engine.

#: Every engine class (Value, Tensor): added by :func:`register_engine`.
ENGINES: set[type] = set()
#: The engine that takes each kind of plain data: "scalar" (numbers), "array" (ndarrays).
ENGINE_FOR: dict[str, type] = {}


def register_engine(cls: type, kind: str) -> type:
    """Make ``cls`` (a :class:`~tinygrad_edu.autograd.Node` subclass that implements the
    engine protocol) an engine the ops can build: ``kind`` says which plain data it takes
    over ("scalar": Python numbers; "array": numpy arrays).  The class gets a method for
    every math and activation op registered so far (``v.tanh()``, ``t.relu()``).

    Each engine module calls this once, after defining its class."""
    if kind not in ("scalar", "array"):
        raise ValueError(f"register_engine: kind must be 'scalar' or 'array', got {kind!r}")
    cls._engine = cls
    ENGINES.add(cls)
    ENGINE_FOR[kind] = cls
    attach_methods(cls, ("math", "activation"), scalar_only=kind == "scalar")
    return cls


def _engine_of(inputs: tuple) -> type:
    """The engine class (Value or Tensor) the inputs belong to; numbers adapt to it.

    Subclasses (such as ``nn.Parameter``) belong to their base engine via ``_engine``.
    Without any node among the inputs, an ndarray makes it the array engine, else the
    scalar engine."""
    cls = None
    for x in inputs:
        if isinstance(x, Node):
            engine = x._engine
            if cls is None:
                cls = engine
            elif engine is not cls:
                raise TypeError(f"cannot combine {cls.__name__} and {engine.__name__}")
    if cls is not None:
        return cls
    return _engine_for("array" if any(isinstance(x, np.ndarray) for x in inputs) else "scalar")


def _engine_for(kind: str) -> type:
    if kind not in ENGINE_FOR:
        raise RuntimeError(f"no {kind} engine is registered yet (import tinygrad_edu first)")
    return ENGINE_FOR[kind]


# ------------------------------------------------------------------ engine methods
def method_for(op: Op) -> Callable:
    """A method ``node.<op.name>(*params)`` for an engine class, documented by the op."""

    def method(self, *args: Any, **kwargs: Any):
        if args or kwargs:
            return op(self, **op._bind(args, kwargs))
        return op(self)

    method.__name__ = method.__qualname__ = op.name
    method.__doc__ = op.__doc__
    method._registry_op = op  # type: ignore[attr-defined]  # which entry it calls
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [inspect.Parameter(k, self_param.kind, default=v) for k, v in op.params.items()]
    method.__signature__ = inspect.Signature([self_param, *params])  # type: ignore[attr-defined]
    return method


def _replace(old: Op, new: Op) -> None:
    """A name defined again (a re-run notebook cell, a second test file): the newest entry
    is the one the engines' methods (and the generated ``nn`` modules, made on next use)
    call.  Code that holds the old op object keeps using it."""
    for cls in ENGINES:
        if getattr(cls.__dict__.get(old.name), "_registry_op", None) is old:
            setattr(cls, old.name, method_for(new))


def attach_methods(cls: type, categories: tuple[str, ...], scalar_only: bool) -> None:
    """Give ``cls`` a method for every registered op of the given categories."""
    for op in REGISTRY.values():
        wanted = op.category in categories and (op.scalar or not scalar_only)
        if wanted and not hasattr(cls, op.name) and not (scalar_only and op.kind == "tensor"):
            setattr(cls, op.name, method_for(op))
