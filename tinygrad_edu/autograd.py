"""The graph core shared by both engines: nodes, topological order, and the backward pass.

Every result of an operation is a :class:`Node` that remembers

* ``parents`` -- the nodes it was computed from,
* ``op``      -- the registry entry that computed it (``None`` for a leaf), and
* ``ctx``     -- what that op saved for its backward (its parameters, or arrays).

``backward()`` walks the graph from the output towards the leaves in reverse topological
order.  At each node it asks the node's op for the gradient of every parent
(``upstream gradient x local gradient``, the chain rule) and *adds* it to the parent's
``.grad``: a node used twice (``a + a``, ``x * x``) receives both contributions.

What calling ``backward()`` twice does
--------------------------------------
Gradients of **leaves** accumulate, as in PyTorch: a second call adds the same gradient
again, so ``x.grad`` doubles.  Call ``zero_grad()`` on your leaves (or ``Module.zero_grad()``)
before each new backward pass.  Gradients of **intermediate** nodes are reset at the start
of every pass, so they always hold this pass's value and never leak into the next one
(the silent double-counting bug of naive engines).  The graph is kept after backward, so
calling it again is allowed.

Policies both engines follow
----------------------------
* **Gradient arrays**: every leaf owns its ``.grad`` (``a.grad *= 5`` never changes
  ``b.grad`` after ``(a + b).sum().backward()``, nor the caller's ``gradient`` argument,
  which must hold real numbers).
* **Poles** (``x / 0``, ``ln 0``'s slope, ``√x``'s slope at 0): IEEE 754 results, ±inf or
  nan, with numpy's RuntimeWarning, in both engines (a Value never raises
  ZeroDivisionError).  **Outside the real domain** (``√−1``, ``ln −1``): a Value raises
  ValueError naming the op, a Tensor gives nan with numpy's warning (no check per element
  on the array hot path).
* **Comparisons** (``== != < <= > >=``) compare data elementwise and are not ops: no
  gradient; a Tensor gives a numpy boolean array (a mask: ``x[x > 0]``), a Value a bool.
  Nodes stay hashable by identity.
* **Empty inputs**: ``sum`` of nothing is 0; softmax and log-softmax of an empty array are
  empty; ``mean``, ``max`` and the losses over zero elements raise ValueError.
* **Changing .data** after building a graph is not tracked (as PyTorch's ``.data``): the
  forward values stay, and a backward that reads an input uses what it holds when backward
  runs (``y = x * x; x.data[0] = 5`` gives ``x.grad[0] = 10``).  Rebuild the graph instead.
* ``backward()`` from a result computed under :class:`no_grad` raises RuntimeError.
* **Constants** (a number written into an expression, ``x * 2``) need no gradient: pictures
  draw them without one, and the Value engine's fast backward sends them none (the leaf
  ``parents`` makes of such a number shows ``grad`` 0.0; see value.py's "Fast paths").

The bottom layer
----------------
This module imports nothing else of the package but :mod:`tinygrad_edu.hooks` (below it:
what the backward loop does beyond the chain rule).  The two engines (``Value``, ``Tensor``)
are subclasses of :class:`Node` that fill in the hooks of the *engine protocol*, written
down once, at the top of :class:`Node`; the registry drives every op through them.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar

import numpy as np

from . import hooks as _hooks
from .hooks import AnomalyMode, HookError, RemovableHandle, retain_intermediate_grads

__all__ = [
    "CONSTANT",
    "AnomalyMode",
    "ConstantLabel",
    "GradMode",
    "HookError",
    "Node",
    "RemovableHandle",
    "enable_grad",
    "fast_backward",
    "is_grad_enabled",
    "no_grad",
    "results_first",
    "retain_intermediate_grads",
    "unbroadcast",
]


class ConstantLabel(str):
    """The label of a number written into an expression (the ``2`` of ``2 * x``), made into
    a leaf by an engine: pictures and traces draw such a leaf as a constant, without a
    gradient.  Compares equal to its text (``CONSTANT`` is the empty one)."""

    __slots__ = ()


#: The label an engine gives a number it turns into a leaf (``x * 2``, ``x + 1``).
CONSTANT = ConstantLabel("")


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` over the axes that broadcasting added or stretched, back to ``shape``.

    When ``a`` of shape (3,) is added to ``b`` of shape (4, 3), ``a`` was used four times,
    so its gradient is the sum of the four rows of the upstream gradient (the chain rule's
    "branches sum").
    """
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    return g.sum(axis=axes).reshape(shape)


class GradMode:
    """Global switch: when ``enabled`` is False, ops record no graph (see :class:`no_grad`)."""

    enabled: bool = True


def is_grad_enabled() -> bool:
    """True when operations currently record the graph for backward."""
    return GradMode.enabled


class no_grad:
    """Context manager (and decorator) that disables graph recording.

    Inside ``with no_grad():`` every op returns a plain leaf with no parents: nothing is
    remembered for backward, which saves memory in evaluation loops and optimizer steps.
    """

    def __enter__(self) -> None:
        self._prev = GradMode.enabled
        GradMode.enabled = False

    def __exit__(self, *exc: object) -> None:
        GradMode.enabled = self._prev

    def __call__(self, fn):  # used as a decorator
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


class enable_grad(no_grad):
    """Context manager that re-enables graph recording inside a ``no_grad`` block."""

    def __enter__(self) -> None:
        self._prev = GradMode.enabled
        GradMode.enabled = True


class Node:
    """A node of the computation graph (base of :class:`Value` and :class:`Tensor`).

    Every node has ``data`` (its number or array), ``grad`` (d output / d node, filled by
    :meth:`backward`) and ``label``; a node made by an op also knows its :attr:`op`,
    :attr:`parents` and :attr:`ctx`.  A leaf has none of them.
    """

    __slots__ = ("__weakref__", "_ctx", "_op", "_parents", "data", "grad", "label")

    # ============================================================ the engine protocol
    # An engine is a Node subclass (Value, Tensor) that fills in the eight hooks below,
    # each said in one line.  The registry drives every op through them and knows the
    # engines only as the classes that called ``registry.register_engine``.
    _engine: ClassVar[type]  # the class an op's result is made of (Tensor, for nn.Parameter)
    _math: ClassVar[Any]  # the numeric backend ``m`` the formulas run on (numerics.py)
    _BROADCASTS: ClassVar[bool]  # whether inputs broadcast, so gradients need _reduce_to
    _GRAD_INIT: ClassVar[Any]  # what ``.grad`` holds before any gradient arrived (0.0, None)
    requires_grad: bool  # whether backward sends this node a gradient (a Value: always)

    @staticmethod
    def _make(data: Any, parents: tuple, op: Any, ctx: Any) -> Node:
        """An op's result holding ``data``; records parents, op, ctx unless under no_grad()."""
        raise NotImplementedError

    @staticmethod
    def _coerce(x: Any, like: Any = None) -> Node:
        """An operand as a node: nodes pass, numbers become constants (like ``like``)."""
        raise NotImplementedError

    @staticmethod
    def _reduce_to(g: Any, parent: Node) -> Any:
        """``g`` summed back over the broadcast axes, to the parent's shape and dtype."""
        raise NotImplementedError

    def _seed_gradient(self, gradient: Any) -> Any:
        """The gradient backward starts from: 1 for a scalar, else ``gradient`` checked."""
        raise NotImplementedError

    # ============================================================ graph access
    @property
    def op(self) -> Any:
        """The registry entry that produced this node, or None for a leaf."""
        return self._op

    @property
    def parents(self) -> tuple:
        """The nodes this one was computed from, in the op's argument order (empty for a
        leaf).  A :class:`~tinygrad_edu.registry.TensorOp`'s ``backward(node, g)`` reads
        its inputs here: ``x, w = node.parents``."""
        return self._parents

    @property
    def ctx(self) -> Any:
        """What this node's op saved in its forward for its backward (None for a leaf).

        For a :class:`~tinygrad_edu.registry.TensorOp` it is the second value its
        ``forward`` returned; for :class:`~tinygrad_edu.registry.Unary` ops the call's
        parameters (``{"alpha": 0.2}``).  A Value computed under :class:`no_grad` is a leaf
        whose ctx is a marker, so that ``backward()`` from it can say why it cannot run."""
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        return self._op is None

    def topological_order(self) -> list[Node]:
        """All nodes this one depends on, each after all of its parents (self last).

        Iterative depth-first search with an explicit stack: linear in the graph size and
        safe for graphs of any depth (no ``RecursionError`` on a chain of a million ops).
        The stack is two parallel lists: the nodes being visited and, for each, an iterator
        over the parents it has not looked at yet.
        """
        order: list[Node] = []
        visited = {self}
        stack = [self]
        unvisited = [iter(self._parents)]
        while stack:
            for parent in unvisited[-1]:
                if parent not in visited:  # go deeper: the parent must come first
                    visited.add(parent)
                    stack.append(parent)
                    unvisited.append(iter(parent._parents))
                    break
            else:  # every parent is placed, so this node can be
                unvisited.pop()
                order.append(stack.pop())
        return order

    # ============================================================ backward
    def backward(self, gradient: Any = None, create_graph: bool = False) -> None:
        """Backpropagate from this node: fill ``.grad`` of every node it depends on.

        ``gradient`` is d(something)/d(self); it defaults to 1 for a scalar.  Leaves'
        gradients accumulate across calls (see the module docstring); intermediates'
        are recomputed each call.  To see the pass step by step, run it through
        :func:`tinygrad_edu.viz.explain_backward` instead.

        ``create_graph=True`` records the backward pass itself as a graph: every ``.grad``
        then holds a *node* (a Value or Tensor with its own history, d self / d node as a
        function of the inputs) instead of a number or array, so it can be differentiated
        again (see :func:`tinygrad_edu.grad`).  A leaf's node gradient is added to what its
        ``.grad`` held before (a number or array becomes a constant of the sum).  The
        optimizers read arrays: take their step after a plain ``backward()`` (a gradient
        penalty is built with :func:`tinygrad_edu.grad` and backpropagated normally).
        """
        if create_graph:
            if Node.create_graph_hook is None:
                raise RuntimeError("backward(create_graph=True): import tinygrad_edu first")
            Node.create_graph_hook(self, gradient)
            return
        self.run_backward(gradient)

    def run_backward(self, gradient: Any = None, on_edge: Callable | None = None) -> None:
        """The backward pass itself.  ``on_edge(node, i, upstream, grad)`` is called after
        the gradient ``grad`` of ``node``'s i-th parent was added to that parent's ``.grad``
        (used by the explainer; None in normal use).

        The cyclic garbage collector is paused during the pass and restored after it: the
        pass creates no reference cycles, but on a graph of a million nodes the collections
        triggered by its short-lived tuples would cost as much as the pass itself."""
        seed = self._seed_gradient(gradient)
        collecting = gc.isenabled()
        gc.disable()
        try:
            order = self.topological_order()
            nothing = self._GRAD_INIT
            for node in order:  # intermediates start from nothing; leaves accumulate
                if node._op is not None:
                    node.grad = nothing
            self.grad = seed if self.grad is None else self.grad + seed  # seed: a fresh copy
            _propagate(order, on_edge)
        finally:
            if collecting:
                gc.enable()

    def zero_grad(self) -> None:
        """Forget this node's gradient (0.0 for a Value, None for a Tensor)."""
        self.grad = self._GRAD_INIT

    def register_hook(self, hook: Callable[[Any], Any]) -> RemovableHandle:
        """Call ``hook(grad)`` in every backward pass with the gradient flowing into this
        node (see :mod:`tinygrad_edu.hooks`); a non-None return replaces it."""
        return _hooks.register_hook(self, hook)

    def retain_grad(self) -> None:
        """Keep this intermediate node's ``.grad`` even inside
        ``retain_intermediate_grads(False)`` (see :mod:`tinygrad_edu.hooks`)."""
        _hooks.retain_grad(self)

    #: The backward pass recorded as a graph (``backward(create_graph=True)``):
    #: ``create_graph_hook(node, gradient)``.  It builds nodes through the registry, which
    #: this module never imports, so :mod:`tinygrad_edu.higher_order` puts it here.
    create_graph_hook: ClassVar[Callable[[Node, Any], None] | None] = None

    # ============================================================ notebooks
    #: How a notebook shows a node: ``display_hook(node, mime_type) -> content or None``.
    #: The core draws nothing itself (it never imports the viz layer); the package
    #: (``tinygrad_edu/__init__.py``) puts the viz layer's graph picture here.
    display_hook: ClassVar[Callable[[Node, str], str | None] | None] = None

    # One ``_repr_<type>_`` per format, not one ``_repr_mimebundle_``: IPython asks only for
    # the formats its front end shows, so a terminal (text only) never runs ``dot``, while a
    # notebook gets the graph.
    def _repr_svg_(self) -> str | None:
        """The graph as SVG, for front ends that show SVG (Jupyter)."""
        hook = Node.display_hook
        return None if hook is None else hook(self, "image/svg+xml")

    def _repr_markdown_(self) -> str | None:
        """Where no picture can be made (no Graphviz): the text and how to get pictures."""
        hook = Node.display_hook
        return None if hook is None else hook(self, "text/markdown")


def _may_be_shared(grad: Any, upstream: Any, grads: tuple, i: int) -> bool:
    """Whether the array ``grad`` arriving at a leaf may also be held elsewhere: it is (a
    view of) the upstream gradient -- ``a + b`` hands both inputs the upstream itself, a
    reshape a view of it -- or the op handed the same array to an earlier input.  The leaf
    then gets a copy, so that ``a.grad *= 5`` never changes ``b.grad``, another node's
    gradient or the caller's ``gradient`` argument.  Every other array an op returns is
    its own fresh result (the contract of ``TensorOp.backward``), kept without a copy."""
    if grad.__class__ is not np.ndarray:  # a number, or a graph node (create_graph)
        return False
    if grad is upstream:
        return True
    for k in range(i):
        if grads[k] is grad:
            return True
    return grad.base is not None and np.may_share_memory(grad, upstream)  # a view of it?


def _propagate(order: list[Node], on_edge: Callable | None) -> None:
    """The chain rule, from the output back to the leaves: each node's op turns the node's
    gradient (the upstream) into one gradient per parent, and each is added to that
    parent's ``.grad`` (a parent reached by several paths sums them)."""
    watch = _hooks.BackwardWatch.for_pass(order)  # None unless hooks, anomaly mode or freeing
    for node in reversed(order):
        if watch is not None:  # the one extra test per node (see hooks.py)
            upstream, grads = watch.step(node)
            if grads is None:
                continue
        else:
            op, upstream = node._op, node.grad
            if op is None or upstream is None:  # a leaf, or a node no gradient reached
                continue
            grads = op.backward(node, upstream)  # upstream × local, one per parent
        for i, parent in enumerate(node._parents):
            grad = grads[i]
            if grad is None:  # this parent needs no gradient (a constant)
                continue
            if parent.grad is None:
                if parent._op is None and _may_be_shared(grad, upstream, grads, i):
                    grad = grad.copy()  # a leaf owns its .grad: see _may_be_shared
                parent.grad = grad
            else:
                parent.grad = parent.grad + grad
            if on_edge is not None:
                on_edge(node, i, upstream, grad)


# ============================================================================ Fast paths
# The shared core's speed tricks, for the engines' fast backward passes (their chain rules
# are at the ends of tensor.py and value.py): a backward that falls back to the plain one
# whenever the pass needs more than the chain rule, and an order without the leaves.
def fast_backward(chain_rule: Callable[[list], None],
                  order_of: Callable[[Node], list] | None = None,
                  parents: Callable[[Node], Any] = attrgetter("_parents")) -> Callable:
    """A ``run_backward`` for an engine, running ``chain_rule(order)`` on ``order_of``'s
    order (default :func:`results_first`: the op results, each before its parents, their
    ``.grad`` reset); ``parents(node)`` lists a node's inputs for the hook test.  Plain
    version: :meth:`Node.run_backward`, which it falls back to for ``on_edge`` (the
    explainer), anomaly mode, freeing intermediates' gradients and a hook on this graph (a
    hook elsewhere keeps the fast pass).  With tensor.py's chain rule, a training step of
    the README loop on a 16-16-16-16-10 MLP (numpy nearly free) runs 930k → 903k CPU
    instructions (valgrind)."""
    order_of = order_of or results_first

    def run_backward(self: Node, gradient: Any = None, on_edge: Callable | None = None) -> None:
        watch = _hooks.BackwardWatch.for_pass([])  # None: no hook, no anomaly mode, no freeing
        if on_edge is not None or watch is not None and (watch.check or watch.free):
            return Node.run_backward(self, gradient, on_edge)
        seed = self._seed_gradient(gradient)
        collecting = gc.isenabled()
        gc.disable()  # as the plain pass does, and restored
        try:
            order = order_of(self)
            if watch is not None and _hooks.on_graph(self, order, parents):  # hook here
                return Node.run_backward(self, gradient)
            self.grad = seed if self.grad is None else self.grad + seed
            chain_rule(order)
        finally:
            if collecting:
                gc.enable()

    run_backward.__doc__ = Node.run_backward.__doc__
    return run_backward


_SEEN: Any = object()  # the mark of results_first


def results_first(root: Node) -> list[Node]:
    """The op results ``root`` depends on, each before its parents (``root`` first), their
    ``.grad`` reset to nothing.  Plain version: ``reversed(root.topological_order())``
    without the leaves, which then get the intermediates' reset of ``run_backward``.

    Fast: the stack holds the nodes and, beside them, how many of each one's parents were
    looked at (no iterator object per node), a leaf is never pushed, and ``.grad`` marks the
    nodes seen (cheaper than a set): the order of the README's MLP (8 results, 9 leaves)
    takes 3.6 instead of 5.2 µs (``topological_order``)."""
    if root._op is None:
        return []
    seen = root.grad = _SEEN
    stack, looked, order = [root], [0], []
    while stack:
        parents = stack[-1]._parents
        i, n = looked[-1], len(parents)
        while i < n:
            parent = parents[i]
            i += 1
            if parent._op is not None and parent.grad is not seen:
                parent.grad = seen
                looked[-1] = i
                stack.append(parent)
                looked.append(0)
                break
        else:  # every parent is placed, so this node can be
            order.append(stack.pop())
            looked.pop()
    order.reverse()
    nothing = root._GRAD_INIT
    for node in order:
        node.grad = nothing
    return order
