"""Reused big arrays for the array ops: :func:`workspace`.

A training step allocates the same large temporaries every time
(patch matrices, activations, their gradients: ~120 MB per step for the MNIST CNN).
glibc's malloc serves each with fresh mmap'd pages and unmaps them on free, so every step
pays a page fault and the kernel's zeroing for every page it touches again -- about a
quarter of a CNN step.  :func:`workspace` hands out an array kept from an earlier call with
the same (tag, shape, dtype) once nothing else refers to it: the reference count is the
proof that no graph node, view or user still holds it, so an array saved for a backward
is never reused before the graph that saved it is gone (a second forward before the
first backward simply gets another array).  Process-wide settings stay untouched.

Used by the speed sections of ``nn/conv.py`` and ``nn/pooling.py``; it knows nothing of
nodes (a plain numpy helper at the bottom of the import order).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np

__all__ = ["workspace"]

_WORKSPACE_MIN_BYTES = 1 << 18  # smaller arrays come from malloc's free lists anyway
_WORKSPACE_PER_KEY = 3  # arrays kept per (tag, shape, dtype): two live graphs + one
_WORKSPACE_KEYS = 32  # keys kept, least recently used dropped first
_WORKSPACE_MAX_BYTES = 1 << 28  # at most 256 MB kept (an evaluation on one huge batch is not)
_workspace: dict[tuple, list[np.ndarray]] = {}
_workspace_bytes = [0]  # the bytes kept now
_workspace_lock = threading.Lock()
_refcount = getattr(sys, "getrefcount", None)  # CPython; elsewhere nothing is reused


def _idle_count() -> int:
    """What ``_refcount`` reports, inside the loop of :func:`workspace`, for an array held by
    nothing but its list (measured, not assumed: it differs between Python versions)."""
    kept = [np.empty(1)]
    for a in kept:
        return _refcount(a) if _refcount is not None else -1
    return -1


_IDLE = _idle_count()


def workspace(tag: str, shape: tuple, dtype: Any) -> np.ndarray:
    """An uninitialised array of ``shape`` and ``dtype`` for an op's result or temporary:
    one handed out before under the same ``tag`` when no one refers to it any more (its
    contents are then stale), else a new one.  Same contract as ``np.empty``."""
    dtype = np.dtype(dtype)
    size = dtype.itemsize
    for n in shape:
        size *= n
    if size < _WORKSPACE_MIN_BYTES or _IDLE < 0:
        return np.empty(shape, dtype)
    key = (tag, shape, dtype)
    with _workspace_lock:
        kept = _workspace.pop(key, None)
        if kept is None:
            kept = []
            if len(_workspace) >= _WORKSPACE_KEYS:  # forget the least recently used key
                _forget(next(iter(_workspace)))
        _workspace[key] = kept  # (re)inserted last: most recently used
        for a in kept:
            if _refcount(a) == _IDLE:
                return a
        a = np.empty(shape, dtype)
        if len(kept) >= _WORKSPACE_PER_KEY or size > _WORKSPACE_MAX_BYTES:
            return a  # not kept: enough of this key, or larger than all the workspace
        while _workspace_bytes[0] + size > _WORKSPACE_MAX_BYTES:
            _forget(next(iter(_workspace)))  # least recently used first (this key is last)
            if key not in _workspace:  # this key's own arrays were all there was
                _workspace[key] = kept = []
        kept.append(a)
        _workspace_bytes[0] += size
        return a


def _forget(key: tuple) -> None:
    """Drop a key's arrays from the workspace (arrays still in use live on with their users)."""
    for a in _workspace.pop(key):
        _workspace_bytes[0] -= a.nbytes
