"""Everything the backward loop does beyond the chain rule, in one place, off by default.

* **Tensor hooks**: ``node.register_hook(fn)``: ``fn(grad)`` is called with the gradient
  flowing into the node, once its total for this pass is known (every node that uses it has
  sent its contribution: reverse topological order guarantees it) and before it is passed on
  to the node's parents; a non-None return replaces it (and is what ``.grad`` shows).  On a
  leaf the hook sees this pass's gradient, before it is added to ``.grad``.  A hook that
  raises, or returns something of another type, shape or dtype, is a :class:`HookError`
  naming the node.  Hooks are held weakly: they go with their node.
* **Freeing intermediates' gradients**: by default every node keeps its ``.grad`` after
  backward (the explainer and the graph pictures show them).  That costs one array the size
  of each intermediate result, held until the graph is dropped: as much memory again as the
  forward's activations.  Inside ``retain_intermediate_grads(False)`` an intermediate's
  ``.grad`` is dropped as soon as it has been passed on, except on nodes marked with
  ``retain_grad()`` (PyTorch's default); leaves always keep theirs.
  ``benchmarks/diagnostics.py`` measures the saving.
* **Anomaly mode**: a check of every backward contribution (:class:`AnomalyMode`, filled in
  by :mod:`tinygrad_edu.anomaly`).

The backward loop (:func:`tinygrad_edu.autograd._propagate`) asks
:meth:`BackwardWatch.for_pass` once per pass; with none of the above on it gets None and pays
one ``is not None`` test per node.  Otherwise ``watch.step(node)`` does for that node what
the plain loop does, plus the hooks, the check and the freeing: there is one loop.

This module sits under :mod:`tinygrad_edu.autograd` and imports nothing of the package.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "AnomalyMode",
    "BackwardWatch",
    "HookError",
    "RemovableHandle",
    "describe",
    "hooked_nodes",
    "on_graph",
    "register_hook",
    "retain_grad",
    "retain_intermediate_grads",
]

class HookError(RuntimeError):
    """A backward hook raised, or returned a gradient of the wrong type, shape or dtype.
    The message names the node the hook was registered on."""


class RemovableHandle:
    """What every ``register_*hook`` returns: ``handle.remove()`` unregisters the hook
    (removing twice is harmless); also a context manager that removes it on exit."""

    __slots__ = ("_cleanup", "_hooks", "_key")
    _count = 0

    def __init__(self, hooks: dict, hook: Callable, cleanup: Callable | None = None) -> None:
        RemovableHandle._count += 1
        self._hooks, self._key, self._cleanup = hooks, RemovableHandle._count, cleanup
        hooks[self._key] = hook

    def remove(self) -> None:
        self._hooks.pop(self._key, None)
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> RemovableHandle:  # noqa: PYI034 (no typing_extensions)
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class _NodeHooks:
    """The hooks of one node and whether it keeps its ``.grad`` (``retain_grad``)."""

    __slots__ = ("fns", "retain")

    def __init__(self) -> None:
        self.fns: dict[int, Callable] = {}
        self.retain = False


class WeakIdKeyDict:
    """A weak-keyed dict that compares keys by identity (PyTorch's WeakIdKeyDictionary).

    ``weakref.WeakKeyDictionary`` compares keys with ``==``, which on Tensors is elementwise
    (an array, not a bool), so node-keyed tables use this: an entry goes when its node does."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref, Any]] = {}

    def __setitem__(self, key: Any, value: Any) -> None:
        entries, k = self._entries, id(key)

        def gone(ref: weakref.ref) -> None:
            if entries.get(k, (None,))[0] is ref:
                del entries[k]

        entries[k] = (weakref.ref(key, gone), value)

    def get(self, key: Any, default: Any = None) -> Any:
        entry = self._entries.get(id(key))
        return entry[1] if entry is not None and entry[0]() is key else default

    def __getitem__(self, key: Any) -> Any:
        entry = self._entries.get(id(key))
        if entry is None or entry[0]() is not key:
            raise KeyError(key)
        return entry[1]

    def pop(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            return default
        return self._entries.pop(id(key))[1]

    def items(self) -> list[tuple[Any, Any]]:
        return [(k, v) for k, v in ((r(), v) for r, v in self._entries.values()) if k is not None]

    def __contains__(self, key: Any) -> bool:
        return self.get(key, self) is not self

    def __len__(self) -> int:
        return len(self._entries)


#: Hooks per node, held weakly: a node's hooks go when the node does.
_HOOKS: WeakIdKeyDict = WeakIdKeyDict()


def retain_grad(node: Any) -> None:
    """``node.retain_grad()``: keep its ``.grad`` inside ``retain_intermediate_grads(False)``."""
    _hooks_of(node).retain = True


def _hooks_of(node: Any) -> _NodeHooks:
    record = _HOOKS.get(node)
    if record is None:
        record = _HOOKS[node] = _NodeHooks()
    return record


def register_hook(node: Any, hook: Callable) -> RemovableHandle:
    """``node.register_hook(hook)`` (see the module docstring)."""
    if not callable(hook):
        raise TypeError(f"register_hook: expected a function of the gradient, got {hook!r}")
    if not node.requires_grad:
        raise RuntimeError("register_hook: this tensor does not require grad, so no gradient "
                           "will ever flow into it")
    record, ref = _hooks_of(node), weakref.ref(node)

    def cleanup() -> None:  # the last hook gone: backward no longer needs to look
        alive = ref()
        if alive is not None and not record.fns and not record.retain:
            _HOOKS.pop(alive, None)

    return RemovableHandle(record.fns, hook, cleanup)


def hooked_nodes() -> list:
    """The live nodes that have a hook or ``retain_grad()`` (usually none)."""
    return [node for node, _ in _HOOKS.items()]


def on_graph(root: Any, order: list, parents: Callable[[Any], Any]) -> bool:
    """Whether a node with a hook (or ``retain_grad()``) is ``root``, one of the nodes of
    ``order`` or one of their parents (``parents(node)``: the engine's own way to list a
    node's inputs)."""
    hooked = {id(node) for node in hooked_nodes()}
    return id(root) in hooked or any(
        id(n) in hooked or any(id(p) in hooked for p in parents(n)) for n in order)


class retain_intermediate_grads:
    """Whether intermediate nodes keep their ``.grad`` after backward (default True).

    ``retain_intermediate_grads(False)`` sets it (for the whole process); used in a
    ``with`` block it is restored at the end::

        with retain_intermediate_grads(False):   # training: keep only the leaves' grads
            loss.backward()

    Leaves (parameters) always keep their gradient; mark an intermediate you want to read
    with ``node.retain_grad()``."""

    enabled: ClassVar[bool] = True

    def __init__(self, mode: bool = True) -> None:
        self._prev = retain_intermediate_grads.enabled
        retain_intermediate_grads.enabled = bool(mode)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        retain_intermediate_grads.enabled = self._prev


class AnomalyMode:
    """Where anomaly mode (:mod:`tinygrad_edu.anomaly`) plugs into the backward loop.

    ``check(node, upstream, grads)`` runs after each op's backward when anomaly mode is on
    (None otherwise) and raises at the first NaN/inf; ``site(node)`` is where user code
    created ``node`` ("file.py:12"), when anomaly mode recorded it, for error messages."""

    check: ClassVar[Callable[[Any, Any, tuple], None] | None] = None
    site: ClassVar[Callable[[Any], str | None]] = staticmethod(lambda node: None)


def describe(node: Any) -> str:
    """A node in words, for error messages: its engine, op or leaf, shape and label."""
    kind = type(node).__name__
    what = f"the {kind} made by op {node._op.name!r}" if node._op is not None else \
        f"the leaf {kind}"
    shape = getattr(node.data, "shape", None)
    facts = [f"shape {shape}" if shape is not None else f"data {node.data!r}"]
    if node.label:
        facts.append(f"label {node.label!r}")
    site = AnomalyMode.site(node)
    if site:
        facts.append(f"created at {site}")
    return f"{what} ({', '.join(facts)})"


def _checked(node: Any, hook: Callable, grad: Any, new: Any) -> Any:
    """A hook's replacement gradient, if it has the type, shape and dtype of ``grad``."""
    if hasattr(new, "_op") and hasattr(new, "data"):  # a Tensor or Value: its data
        new = new.data
    where = f"the backward hook {getattr(hook, '__name__', repr(hook))} on {describe(node)}"
    if isinstance(grad, np.ndarray):
        if not isinstance(new, (np.ndarray, np.generic, int, float)):
            raise HookError(f"{where} returned a {type(new).__name__}, not an array")
        new = np.asarray(new)
        if new.shape != grad.shape:
            raise HookError(f"{where} returned a gradient of shape {new.shape}; "
                            f"the gradient has shape {grad.shape}")
        if new.dtype != grad.dtype:
            raise HookError(f"{where} returned a gradient of dtype {new.dtype}; "
                            f"the gradient has dtype {grad.dtype}")
        return new
    if isinstance(new, bool) or not isinstance(new, (int, float, np.integer, np.floating)):
        raise HookError(f"{where} returned a {type(new).__name__}, not a number")
    return float(new)


def _run_hooks(node: Any, record: _NodeHooks, grad: Any) -> Any:
    """Each of ``node``'s hooks in registration order, each seeing the previous one's result."""
    for hook in list(record.fns.values()):
        try:
            new = hook(grad)
        except HookError:  # already names its hook (a module's backward hook)
            raise
        except Exception as exc:
            name = getattr(hook, "__name__", repr(hook))
            raise HookError(f"the backward hook {name} on {describe(node)} raised "
                            f"{type(exc).__name__}: {exc}") from exc
        if new is not None:
            grad = _checked(node, hook, grad, new)
    return grad


class BackwardWatch:
    """One backward pass's hooks, anomaly check and freeing: ``step(node)`` does for one
    node what the plain loop does (returns ``(upstream, grads)``, grads None to skip)."""

    __slots__ = ("check", "free", "hooked", "priors")

    @staticmethod
    def for_pass(order: list) -> BackwardWatch | None:
        check, free = AnomalyMode.check, not retain_intermediate_grads.enabled
        if check is None and not free and not _HOOKS:
            return None
        watch = BackwardWatch()
        watch.check, watch.free = check, free
        watch.hooked, watch.priors = {}, {}
        if _HOOKS:
            members = set(order)
            watch.hooked = {n: r for n, r in list(_HOOKS.items()) if n in members}
        for node, record in watch.hooked.items():  # a leaf's hooks see this pass's gradient
            if node._op is None and record.fns and node is not order[-1]:
                watch.priors[node] = node.grad
                node.grad = node._GRAD_INIT
        return watch

    def step(self, node: Any) -> tuple[Any, tuple | None]:
        upstream, op = node.grad, node._op
        record = self.hooked.get(node)
        if record is not None:
            if record.fns and upstream is not None:
                upstream = node.grad = _run_hooks(node, record, upstream)
            if node in self.priors:  # a leaf: add this pass's gradient to the earlier ones
                prior = self.priors[node]
                node.grad = prior if upstream is None else \
                    upstream if prior is None else prior + upstream
        if op is None or upstream is None:
            return upstream, None
        grads = op.backward(node, upstream)
        if self.check is not None:
            self.check(node, upstream, grads)
        if self.free and (record is None or not record.retain):
            node.grad = node._GRAD_INIT
        return upstream, grads
