"""The backward pass as a graph: ``grad``, ``backward(create_graph=True)`` and higher derivatives.

Every local gradient of the registry is written once against a numeric backend ``m``
(:mod:`tinygrad_edu.numerics`): ``tanh``'s is ``df(m, x, y) = 1 − y·y``.  Evaluated with
:data:`GRAPH` -- a third backend whose functions *build graph nodes* through the registry
(``GRAPH.exp(x)`` is the op ``exp`` applied to the node ``x``) -- on the nodes ``x`` and
``y`` instead of their numbers, the same formula records ``1 − y·y`` as three new nodes.
The backward pass then is itself a graph, made of the same registry ops, and can be
differentiated again, to any order, with nothing written twice.  The tensor ops (matmul,
reductions, conv2d...) give their backward in graph ops in ``backward_graph(node, g)``.

>>> from tinygrad_edu import Value, grad
>>> x = Value(0.5)
>>> y = x.tanh()
>>> (dy,) = grad(y, x, create_graph=True)     # 1 − tanh²(x), a node with a graph
>>> (d2y,) = grad(dy, x)                       # −2 tanh(x) (1 − tanh²(x))
>>> round(d2y.data, 6)
-0.726862

Conventions.  A comparison has no gradient (``x > 0`` compares the data), so at a kink the
derivative is the one ``df`` states (ReLU: 0 at x = 0) and every piece's own second
derivative is used on each side (ReLU'' = 0 everywhere: the Dirac delta at 0 is not
represented).  ``m.where(c, a, b)`` becomes ``a·[c] + b·(1 − [c])`` on nodes.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .autograd import GradMode, Node, enable_grad
from .numerics import ARRAY, SCALAR
from .registry import ENGINE_FOR, ONE, REGISTRY, Op

__all__ = ["GRAPH", "GraphMath", "derivative", "grad"]


# ============================================================ the third backend: nodes
def _is_node(x: Any) -> bool:
    return isinstance(x, Node)


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Node) else x


def _numeric(x: Any) -> Any:
    """The numeric backend of plain data: numpy for arrays, math for numbers."""
    return ARRAY if isinstance(x, np.ndarray) else SCALAR


def _apply(name: str, x: Any) -> Any:
    """The registry op ``name`` on a node, or the plain function on plain data."""
    return REGISTRY[name](x) if _is_node(x) else getattr(_numeric(x), name)(x)


class GraphMath:
    """The backend ``m`` on graph nodes: the vocabulary of :mod:`tinygrad_edu.numerics`,
    each function building registry-op nodes (plain numbers pass through as numbers).

    Comparisons (``x > 0``) and ``sign`` are constants (no gradient); ``where`` and
    ``maximum``/``minimum`` select with a constant 0/1 mask, so the gradient flows into the
    branch that was taken."""

    pi = math.pi

    @staticmethod
    def exp(x: Any) -> Any:
        return _apply("exp", x)

    @staticmethod
    def log(x: Any) -> Any:
        return _apply("log", x)

    @staticmethod
    def sqrt(x: Any) -> Any:
        return _apply("sqrt", x)

    @staticmethod
    def tanh(x: Any) -> Any:
        return _apply("tanh", x)

    @staticmethod
    def erf(x: Any) -> Any:
        return _apply("erf", x)

    @staticmethod
    def abs(x: Any) -> Any:
        return _apply("abs", x)

    @staticmethod
    def expm1(x: Any) -> Any:
        """eˣ − 1 (on nodes as exp(x) − 1: exact in value where it matters for gradients)."""
        return GraphMath.exp(x) - 1.0 if _is_node(x) else _numeric(x).expm1(x)

    @staticmethod
    def log1p(x: Any) -> Any:
        return GraphMath.log(x + 1.0) if _is_node(x) else _numeric(x).log1p(x)

    @staticmethod
    def pow(x: Any, p: Any) -> Any:
        """x ** p: the op ``pow`` for a node exponent, ``pow_const`` for a number."""
        if _is_node(p):
            return REGISTRY["pow"](x, p)
        if _is_node(x):
            return REGISTRY["pow_const"](x, p=float(p))
        return _numeric(x).pow(x, p)

    @staticmethod
    def where(cond: Any, a: Any, b: Any) -> Any:
        """``a`` where ``cond``, else ``b``: ``a·[cond] + b·(1 − [cond])`` on nodes."""
        like = a if _is_node(a) else b if _is_node(b) else None
        if like is None:
            return _numeric(cond).where(cond, a, b)
        if not isinstance(cond, np.ndarray):
            return a if cond else b
        mask = cond.astype(like.data.dtype)
        return a * mask + b * (1.0 - mask)

    @staticmethod
    def indicator(cond: Any, like: Any) -> Any:
        if isinstance(cond, np.ndarray):
            return cond.astype(_data(like).dtype)
        return 1.0 if cond else 0.0

    @staticmethod
    def maximum(a: Any, b: Any) -> Any:
        return GraphMath.where(_data(a) >= _data(b), a, b)

    @staticmethod
    def minimum(a: Any, b: Any) -> Any:
        return GraphMath.where(_data(a) <= _data(b), a, b)

    @staticmethod
    def sign(x: Any) -> Any:
        d = _data(x)
        return _numeric(d).sign(d)


#: The backend that builds nodes (see :class:`GraphMath`).
GRAPH: Any = GraphMath


# ============================================================ one op's backward, as a graph
def sum_to(g: Node, shape: tuple) -> Node:
    """Graph version of :func:`~tinygrad_edu.autograd.unbroadcast`: ``g`` summed over the
    axes broadcasting added or stretched, back to ``shape`` (ops ``sum`` and ``reshape``)."""
    if g.data.shape == shape:
        return g
    lead = g.data.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.data.shape[lead + i] != 1
    )
    summed = REGISTRY["sum"](g, axis=axes) if axes else g
    return REGISTRY["reshape"](summed, shape=shape)


def backward_graph(op: Op, node: Node, g: Node) -> tuple:
    """``op``'s backward at ``node`` with the upstream node ``g``, built of graph nodes.

    Unary and binary entries evaluate their ``df`` (``da``, ``db``) with :data:`GRAPH` on
    the nodes; a tensor op runs its ``backward_graph``."""
    kind = op.kind
    if kind == "unary":
        (x,) = node._parents
        if not x.requires_grad:
            return (None,)
        df = op.df
        return (g if df is ONE else g * df(GRAPH, x, node, **node._ctx),)
    if kind == "binary":
        a, b = node._parents
        out = []
        for parent, d in ((a, op.da), (b, op.db)):
            if not parent.requires_grad:
                out.append(None)
                continue
            gp = g if d is ONE else g * d(GRAPH, a, b, node)
            out.append(sum_to(gp, parent.data.shape) if node._BROADCASTS else gp)
        return tuple(out)
    fn = getattr(op, "backward_graph", None)
    if fn is None:
        raise NotImplementedError(
            f"create_graph: the op {op.name!r} has no backward_graph, so its gradient "
            "cannot be recorded as a graph (differentiated again)"
        )
    grads = tuple(fn(node, g))
    return grads + (None,) * (len(node._parents) - len(grads))


# ============================================================ the pass
def _order(outputs: Sequence[Node]) -> list[Node]:
    """One topological order of everything the outputs depend on (each output's order,
    concatenated without repeats, is one: a node's parents always come before it)."""
    seen: set[Node] = set()
    order: list[Node] = []
    for out in outputs:
        for n in out.topological_order():
            if n not in seen:
                seen.add(n)
                order.append(n)
    return order


def run_graph(outputs: Sequence[Node], seeds: Sequence[Any], create_graph: bool
              ) -> tuple[list[Node], dict[Node, Any]]:
    """The chain rule from ``outputs`` (with gradients ``seeds``) back to the leaves,
    kept in a dict (no ``.grad`` is touched).  ``create_graph``: the gradients are nodes
    built by :func:`backward_graph`; else numbers/arrays from each op's ``backward``."""
    order = _order(outputs)
    grads: dict[Node, Any] = {}
    for out, seed in zip(outputs, seeds):
        grads[out] = seed if out not in grads else grads[out] + seed
    for node in reversed(order):
        op = node._op
        g = grads.get(node)
        if op is None or g is None:
            continue
        parts = backward_graph(op, node, g) if create_graph else op.backward(node, g)
        for parent, gp in zip(node._parents, parts):
            if gp is not None:
                prev = grads.get(parent)
                grads[parent] = gp if prev is None else prev + gp
    return order, grads


def _as_tuple(x: Any, what: str) -> tuple:
    items = (x,) if isinstance(x, Node) else tuple(x)
    for i, item in enumerate(items):
        if not isinstance(item, Node):
            raise TypeError(f"grad: {what} {i} is a {type(item).__name__}, not a Value or Tensor")
    if not items:
        raise ValueError(f"grad: no {what}s given")
    return items


def _describe(x: Node, i: int, what: str) -> str:
    label = f" {x.label!r}" if x.label else ""
    shape = f" of shape {x.data.shape}" if isinstance(x.data, np.ndarray) else ""
    return f"{what} {i}{label} ({type(x).__name__}{shape})"


def _seed(out: Node, given: Any, i: int, as_node: bool) -> Any:
    """The gradient the pass starts from at output ``out``: 1 for a scalar, else given."""
    tensor_like = isinstance(out.data, np.ndarray)
    if given is None:
        if tensor_like and out.data.size != 1:
            raise RuntimeError(
                f"grad: {_describe(out, i, 'output')} is not a scalar; pass grad_outputs "
                "(a gradient of that shape for each output)")
        data = np.ones_like(out.data) if tensor_like else 1.0
    elif isinstance(given, Node):
        if tensor_like and given.data.shape != out.data.shape:
            raise ValueError(f"grad: grad_outputs {i} has shape {given.data.shape}, "
                             f"{_describe(out, i, 'output')}")
        return given if as_node else given.data
    else:
        data = np.asarray(given, dtype=out.data.dtype) if tensor_like else float(given)
        if tensor_like and data.shape != out.data.shape:
            raise ValueError(f"grad: grad_outputs {i} has shape {data.shape}, "
                             f"{_describe(out, i, 'output')}")
    if not as_node:
        return data
    seed = out._coerce(data, out)
    seed.label = "seed"  # where the recorded backward pass starts (drawn as such)
    return seed


def grad(outputs: Node | Sequence[Node], inputs: Node | Sequence[Node],
         grad_outputs: Any = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple:
    """The gradients of ``outputs`` with respect to ``inputs``, as PyTorch's
    ``torch.autograd.grad``: a tuple with one node per input, of the inputs' engine.

    ∂/∂inputs of Σₖ ⟨grad_outputsₖ, outputsₖ⟩ (``grad_outputs`` defaults to 1 for scalar
    outputs; a non-scalar output needs one).  No ``.grad`` is read or changed.

    * ``create_graph=False``: the results are new leaves (no history), computed by the
      ordinary backward of each op.
    * ``create_graph=True``: the backward pass is recorded as a graph (see the module
      docstring), so each result can be differentiated again (Hessian-vector products,
      Newton steps, gradient penalties).
    * ``allow_unused``: an input the outputs do not depend on gets None instead of an error.
    """
    outputs = _as_tuple(outputs, "output")
    inputs = _as_tuple(inputs, "input")
    if create_graph and not GradMode.enabled:
        raise RuntimeError("grad: create_graph=True under no_grad() cannot record the backward "
                           "graph; call it inside `with enable_grad():`")
    for i, x in enumerate(inputs):
        if not getattr(x, "requires_grad", True):
            raise RuntimeError(f"grad: {_describe(x, i, 'input')} does not require grad "
                               "(create it with requires_grad=True)")
    input_set = set(inputs)
    for i, out in enumerate(outputs):
        if out._op is None and out not in input_set or not getattr(out, "requires_grad", True):
            raise RuntimeError(
                f"grad: {_describe(out, i, 'output')} has no graph to differentiate: it was "
                "computed under no_grad(), from inputs that do not require grad, or it is a "
                "gradient computed without create_graph=True (pass create_graph=True to the "
                "grad call that made it)")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, (Node, np.ndarray, numbers.Real)):
        grad_outputs = [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    seeds = [_seed(o, g, i, create_graph) for i, (o, g) in enumerate(zip(outputs, grad_outputs))]
    _, grads = run_graph(outputs, seeds, create_graph)
    unused = [i for i, x in enumerate(inputs) if x not in grads]
    if unused and not allow_unused:
        names = ", ".join(_describe(inputs[i], i, "input") for i in unused)
        raise RuntimeError(f"grad: the outputs do not depend on {names}; pass "
                           "allow_unused=True to get None for it")
    results = []
    for x in inputs:
        g = grads.get(x)
        if g is not None and not create_graph:
            data = np.asarray(g, dtype=x.data.dtype) if isinstance(x.data, np.ndarray) else g
            g = x._coerce(data, x)
        results.append(g)
    return tuple(results)


def derivative(fn: str | Op | Any, x: Any, order: int = 1, **params: Any) -> np.ndarray:
    """The ``order``-th derivative of an elementwise function at the points ``x``, computed
    by the engine (``grad`` with ``create_graph=True``, ``order`` times), in float64.

    ``fn`` is a registry entry or its name (``"tanh"``, ``"gelu"`` with
    ``approximate="tanh"``...) or any elementwise function of a Tensor.  ``order=0`` gives
    the function itself.  Where a derivative is a constant (ReLU's is 0/1), the higher
    ones are 0.

    >>> derivative("tanh", [0.0, 1.0], order=3).round(6).tolist()   # tanh‴ = (6t² − 2)(1 − t²)
    [-2.0, 0.621627]
    """
    if order < 0 or int(order) != order:
        raise ValueError(f"derivative: order must be a whole number >= 0, got {order!r}")
    op = REGISTRY.get(fn, None) if isinstance(fn, str) else fn
    if op is None:
        raise KeyError(f"derivative: no op named {fn!r}; known: {sorted(REGISTRY)}")
    if isinstance(op, Op) and op.kind != "unary":
        raise ValueError(f"derivative: {op.name} is not elementwise (a unary entry)")
    tensor = ENGINE_FOR["array"]
    xs = tensor(np.asarray(x, dtype=np.float64), dtype=np.float64, requires_grad=True)
    with enable_grad():
        y = op(xs, **params) if params else op(xs)
        if y.data.shape != xs.data.shape:
            raise ValueError(f"derivative: {fn!r} is not elementwise (shape {xs.data.shape} "
                             f"became {y.data.shape})")
        for k in range(int(order)):
            if not y.requires_grad:  # a constant: every further derivative is 0
                return np.zeros_like(xs.data)
            (y,) = grad(y, xs, grad_outputs=np.ones_like(xs.data), create_graph=k < order - 1)
        return np.array(y.data)


def _backward_create_graph(node: Node, gradient: Any) -> None:
    """``node.backward(gradient, create_graph=True)``: every ``.grad`` becomes a node."""
    if not GradMode.enabled:
        raise RuntimeError("backward(create_graph=True) under no_grad() cannot record the "
                           "backward graph; call it inside `with enable_grad():`")
    node._seed_gradient(gradient.data if isinstance(gradient, Node) else gradient)  # its checks
    seed = _seed(node, gradient, 0, as_node=True)
    order, grads = run_graph([node], [seed], True)
    for n in order:
        g = grads.get(n)
        if n._op is not None:
            n.grad = g if g is not None else n._GRAD_INIT
        elif g is not None:
            prev = n.grad
            n.grad = g if prev is None or (prev.__class__ is float and prev == 0.0) else prev + g


Node.create_graph_hook = _backward_create_graph
