"""Process-level tuning: how many threads the BLAS uses, and whether freed memory is kept.

Both settings belong to the whole process, so a library must not make them behind its
users' backs: importing :mod:`tinygrad_edu` never calls anything here.  Programs that own
their process do -- the ``tinygrad-edu train`` command (``--threads``, and the allocator
setting); the benchmark scripts only with ``TINYGRAD_EDU_KEEP_MEMORY=1`` (they measure the
library as a notebook runs it).

**BLAS threads.**  numpy's matrix products run in its BLAS (OpenBLAS in the numpy wheels).
On a machine whose cores are shared, multi-threaded OpenBLAS spins while it waits and
becomes several times *slower* (measured: 7x for the CNN with 2 threads on 2 busy cores).
The convolution and pooling ops split their batch over the cores themselves, whatever this
setting, holding the BLAS at one thread while they run (:mod:`tinygrad_edu.parallel`;
threads that wait without spinning), so the setting matters for the other products: the
linear layers' big ones.  The ops' bits do not depend on it, nor on the core count: the
parts take whole units of fixed bounds, run their products on one BLAS thread, and their
sums are added in a fixed order.
:func:`set_blas_threads` and :func:`blas_threads` go through :mod:`tinygrad_edu.parallel`,
whose BLAS libraries ``threadpoolctl`` finds (OpenBLAS, MKL, BLIS, FlexiBLAS) on Linux, macOS
and Windows.

**Freed memory.**  A training step allocates and frees the same large temporaries every
time (patch matrices, activations, gradients: over 100 MB per step for the MNIST CNN).
glibc's ``malloc`` serves big requests with fresh ``mmap`` pages and hands them back on
``free``, so every step pays a page fault for every 4 KiB it touches again -- on a small VM
that costs more than the arithmetic.  The library itself avoids most of it without any
setting: its convolution and pooling ops take their big arrays from ``tinygrad_edu.workspace``,
which reuses an array once nothing refers to it any more.  :func:`keep_freed_memory` asks
glibc (``mallopt``) to serve them from the heap and not to trim it, so later steps reuse
warm pages; the process's
memory then stays at its peak instead of breathing in and out (it stays flat across epochs
either way).  ``TINYGRAD_EDU_KEEP_MEMORY=0`` opts :func:`apply_memory_default` out.
Elsewhere than Linux/glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

from .parallel import blas_count, set_blas_count

__all__ = [
    "KEEP_MEMORY_ENV_VAR",
    "apply_memory_default",
    "blas_threads",
    "keep_freed_memory",
    "set_blas_threads",
]

#: Set to ``0`` to keep glibc's default allocator behaviour in the train command and the
#: benchmarks.
KEEP_MEMORY_ENV_VAR = "TINYGRAD_EDU_KEEP_MEMORY"

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


# --------------------------------------------------------------------------- BLAS threads


def set_blas_threads(threads: int) -> bool:
    """Limit the threads of the loaded BLAS (numpy's OpenBLAS) to ``threads``.

    Returns False, changing nothing, when no BLAS library ``threadpoolctl`` knows is loaded.
    (The libraries are the ones :mod:`tinygrad_edu.parallel` found, once, on first use; a
    call made while another thread's ops hold the BLAS at one thread takes effect when
    they finish: :func:`tinygrad_edu.parallel.set_blas_count`.)
    """
    return set_blas_count(threads)


def blas_threads() -> int | None:
    """How many threads the loaded BLAS uses (the first library's own count, not the one
    held while the array ops split; None if none is loaded)."""
    return blas_count()


# --------------------------------------------------------------------------- allocator


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


def apply_memory_default() -> bool:
    """Call :func:`keep_freed_memory` unless ``TINYGRAD_EDU_KEEP_MEMORY=0``."""
    if os.environ.get(KEEP_MEMORY_ENV_VAR, "1") == "0":
        return False
    return keep_freed_memory()
