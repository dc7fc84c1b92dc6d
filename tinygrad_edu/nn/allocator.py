"""Keep freed memory in the process instead of returning it to the operating system.

A training step allocates and frees the same large temporaries every time (patch
matrices, activations, gradients: over 100 MB per step for the MNIST CNN).  glibc's
``malloc`` serves big requests with fresh ``mmap`` pages and hands them back on ``free``,
so every step pays a page fault for every 4 KiB it touches again -- on a small VM that
costs more than the arithmetic.  :func:`keep_freed_memory` asks glibc (``mallopt``) to
serve them from the heap and not to trim it, so later steps reuse warm pages; the
process's memory then stays at its peak instead of breathing in and out (it stays flat
across epochs either way).

This is a process-wide setting, so a library must not make it behind its users' backs:
importing :mod:`tinygrad_edu` never calls it.  Programs that own their process call it --
the ``tinygrad-edu train`` command and the benchmark scripts (which apply it to the numpy
reference they compare against as well); ``TINYGRAD_EDU_KEEP_MEMORY=0`` opts them out.
Elsewhere than Linux/glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["apply_default", "keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks for reuse (no mmap for large blocks, no heap
    trimming).  Returns True if the settings were applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = mallopt(_M_MMAP_MAX, 0) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1 and ok
    return ok


def apply_default() -> bool:
    """Call :func:`keep_freed_memory` unless ``TINYGRAD_EDU_KEEP_MEMORY=0``."""
    if os.environ.get("TINYGRAD_EDU_KEEP_MEMORY", "1") == "0":
        return False
    return keep_freed_memory()
