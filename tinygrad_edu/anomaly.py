"""Anomaly mode: stop at the first operation that makes a NaN or an infinity, and say where.

>>> import numpy as np
>>> from tinygrad_edu import Tensor, detect_anomaly
>>> x = Tensor(np.array([1.0, -1.0]), requires_grad=True)
>>> with detect_anomaly():                                   # doctest: +SKIP
...     y = x.log()
AnomalyError: forward of op 'log' produced nan (1 of 2 values)
  input 0: shape (2,), float64, range [-1, 1]
  created at <stdin>:2: y = x.log()

Inside ``with detect_anomaly():`` (or after ``set_detect_anomaly(True)``)

* every **forward** result is checked as it is made: the first op whose result holds a NaN
  or an infinity raises :class:`AnomalyError`;
* every **backward** contribution (the gradient an op sends to each of its inputs,
  upstream × local) is checked as it is computed: the first non-finite one raises.

The error names the op, forward or backward, its inputs' shapes and value ranges, and the
file:line of *your* code that created the node (the first frame outside the package; with
the layer that called the op, when that is a package module such as ``nn/linear.py``).

What it costs
-------------
When the mode is off nothing of it runs: no check, no stack inspection.  Turning it on
replaces each engine's ``_make`` (the function every op calls to build its result) by a
checking version and installs the backward check in the loop's slot
(:class:`tinygrad_edu.hooks.AnomalyMode`); turning it off puts the plain ones back.  Only
then is the caller's frame looked up, once per op: ``benchmarks/diagnostics.py`` prints
what that costs (measured: 1.5× the time of an MLP training step on arrays, 5× for a graph
of Values, where the ops themselves are cheap: use the mode to find a bug, not to train).
"""

from __future__ import annotations

import linecache
import math
import os
import sys
from typing import Any

import numpy as np

from .hooks import AnomalyMode, WeakIdKeyDict, describe
from .registry import ENGINES

__all__ = [
    "AnomalyError",
    "creation_site",
    "detect_anomaly",
    "is_anomaly_enabled",
    "set_detect_anomaly",
]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
#: Package modules that only carry an op to its result: never "the place" of a node.
_MACHINERY = {_PACKAGE + name for name in (
    "anomaly.py", "autograd.py", "hooks.py", "registry.py", "tensor.py", "value.py", "ops.py",
    "activations.py", "numerics.py", "losses.py")}

#: numpy's own frames (``np.errstate`` used as a decorator) are passed through, not places.
_NUMPY = os.path.dirname(os.path.abspath(np.__file__)) + os.sep
_COMMAND = (_PACKAGE + "cli" + os.sep, _PACKAGE + "__main__.py")
#: Where each node was created, for nodes made while the mode was on (held weakly).
_SITES: WeakIdKeyDict = WeakIdKeyDict()  # by identity: a Tensor's == is elementwise
#: Each engine's plain ``_make`` while the mode is on (empty when it is off).
_PLAIN: dict[type, Any] = {}


class AnomalyError(FloatingPointError):
    """An op produced NaN or inf.  ``phase`` is "forward" or "backward", ``op`` the op's
    name, ``site`` where the node was created (or None)."""

    def __init__(self, message: str, phase: str, op: str, site: str | None) -> None:
        super().__init__(message)
        self.phase, self.op, self.site = phase, op, site


def is_anomaly_enabled() -> bool:
    """True inside ``detect_anomaly()`` / after ``set_detect_anomaly(True)``."""
    return bool(_PLAIN)


def _set(mode: bool) -> None:
    if mode and not _PLAIN:
        for cls in ENGINES:
            plain = cls._make
            _PLAIN[cls] = cls.__dict__["_make"]
            cls._make = staticmethod(_checking(plain))  # type: ignore[method-assign]
        AnomalyMode.check = _check_backward
    elif not mode and _PLAIN:
        for cls, plain in _PLAIN.items():
            cls._make = plain  # type: ignore[method-assign]
        _PLAIN.clear()
        AnomalyMode.check = None


class set_detect_anomaly:
    """Turn anomaly mode on or off for the process; in a ``with`` block, restored at its
    end (as ``torch.autograd.set_detect_anomaly``)."""

    def __init__(self, mode: bool) -> None:
        self._prev = is_anomaly_enabled()
        _set(bool(mode))

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        _set(self._prev)


class detect_anomaly:
    """Context manager (and decorator): anomaly mode on inside it (see the module doc)."""

    def __enter__(self) -> None:
        self._prev = is_anomaly_enabled()
        _set(True)

    def __exit__(self, *exc: object) -> None:
        _set(self._prev)

    def __call__(self, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with detect_anomaly():
                return fn(*args, **kwargs)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


def creation_site(node: Any) -> str | None:
    """Where user code created ``node`` ("file.py:12 in f: source"), if anomaly mode was on."""
    try:
        return _SITES.get(node)
    except TypeError:  # not weak-referenceable: not a node
        return None


AnomalyMode.site = staticmethod(creation_site)


# ------------------------------------------------------------------ recording and checking
def _short(path: str) -> str:
    """A file for the message: ``tinygrad_edu/...`` in the package, else relative to the
    working directory when below it, else the full path."""
    if path.startswith(_PACKAGE):
        return os.path.basename(_PACKAGE[:-1]) + "/" + path[len(_PACKAGE):].replace(os.sep, "/")
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if rel.startswith("..") else rel


def _capture() -> str:
    """The first frame outside the package (the user's line), and the innermost package
    frame outside the op machinery if there is one (the layer: ``nn/linear.py:85``).
    Under the ``tinygrad-edu`` command the package is the user: the layer is the place,
    with the library function that called it."""
    frame = sys._getframe(2)
    layer = caller = None
    command = False
    while frame is not None and frame.f_code.co_filename.startswith((_PACKAGE, _NUMPY)):
        name = frame.f_code.co_filename
        if name.startswith(_NUMPY):
            frame = frame.f_back
            continue
        if name not in _MACHINERY:
            where = f"{_short(name)}:{frame.f_lineno} in {frame.f_code.co_name}"
            if layer is None:
                layer = where
            elif caller is None and not name.startswith(_PACKAGE + "nn" + os.sep):
                caller = where
        command = command or name.startswith(_COMMAND)
        frame = frame.f_back
    if frame is None or command:
        return (layer or "an unknown place") + (f"\n  called from {caller}" if caller else "")
    code = frame.f_code
    text = linecache.getline(code.co_filename, frame.f_lineno).strip()
    site = f"{_short(code.co_filename)}:{frame.f_lineno} in {code.co_name}"
    if text:
        site += f": {text}"
    return site + (f"\n  via {layer}" if layer else "")


def _bad(x: Any) -> str | None:
    """None when every value of ``x`` is finite; else "nan (2 of 6 values)" or similar."""
    if isinstance(x, float):
        return None if math.isfinite(x) else f"{x}"
    arr = np.asarray(x)
    if arr.dtype.kind not in "fc":
        return None
    finite = np.isfinite(arr)
    if finite.all():
        return None
    kinds = [name for name, hit in (("nan", np.isnan(arr).any()), ("inf", np.isinf(arr).any()))
             if hit]
    return f"{'/'.join(kinds)} ({arr.size - int(finite.sum())} of {arr.size} values)"


def _facts(x: Any) -> str:
    """Shape, dtype and range of a number or array, for the message."""
    if isinstance(x, float):
        return f"value {x:.6g}"
    arr = np.asarray(x)
    finite = arr[np.isfinite(arr)] if arr.dtype.kind in "fc" else arr
    span = f"range [{finite.min():.6g}, {finite.max():.6g}]" if finite.size else "no finite value"
    bad = _bad(arr)
    return f"shape {arr.shape}, {arr.dtype}, {span}" + (f", {bad} not finite" if bad else "")


def _inputs(parents: tuple) -> list[str]:
    return [f"  input {i}: {_facts(p.data)}" for i, p in enumerate(parents)]


def _checking(make: Any) -> Any:
    """``make`` (an engine's ``_make``) that records the caller and checks the result."""

    def make_checked(data: Any, parents: tuple, op: Any, ctx: Any) -> Any:
        node = make(data, parents, op, ctx)
        site = _SITES[node] = _capture()
        bad = _bad(data)
        if bad is not None:
            name = getattr(op, "name", "?")
            lines = [f"forward of op {name!r} produced {bad}", *_inputs(parents),
                     f"  created at {site}"]
            if any(_bad(p.data) for p in parents):
                lines.insert(1, "  (an input was already not finite: it is a leaf or was "
                                "made before anomaly mode was on)")
            raise AnomalyError("\n".join(lines), "forward", name, site)
        return node

    return make_checked


def _check_backward(node: Any, upstream: Any, grads: tuple) -> None:
    """The backward check (``AnomalyMode.check``): the upstream and every contribution."""
    name = node._op.name
    site = creation_site(node)
    where = [f"  created at {site}"] if site else [f"  at {describe(node)}"]
    bad = _bad(upstream)
    if bad is not None:
        head = (f"backward: the gradient arriving at op {name!r} holds {bad} (the seed "
                "gradient, a hook, or a sum of finite contributions that overflowed)")
        raise AnomalyError("\n".join([head, *where]), "backward", name, site)
    for i, grad in enumerate(grads):
        if grad is None:
            continue
        bad = _bad(grad)
        if bad is not None:
            lines = [f"backward of op {name!r} produced {bad} in the gradient for input {i}",
                     *_inputs(node._parents), f"  upstream gradient: {_facts(upstream)}",
                     f"  result: {_facts(node.data)}", *where]
            raise AnomalyError("\n".join(lines), "backward", name, site)
