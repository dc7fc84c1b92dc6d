"""Big array work split over the machine's cores: :func:`parallel_parts`.

numpy runs an elementwise pass or a strided copy on one core; only its matrix products
(BLAS) use several.  Half of a CNN training step is such one-core work (the convolutions'
patch copies, pooling, padding), so the speed sections of ``nn/conv.py`` and
``nn/pooling.py`` cut the batch into one part per thread and run the parts at the same
time: numpy releases Python's GIL inside its copies, ufuncs and matrix products.  Each part
is a plain numpy computation on its own images, written into its own slice of the result
or returning partial sums.  The callers cut their work into units whose bounds depend on
the shapes only (chunks of images, blocks of rows), give each part whole units, and add
the units' sums in unit order: the bits are the same for any number of parts.

**The BLAS at one thread meanwhile.**  numpy's OpenBLAS has threads of its own, and two
thread pools slow each other down: after each multi-threaded product OpenBLAS's workers spin
for about 0.1 s waiting for the next (measured: 10-11 ticks of CPU time in a 0.2-1 s sleep
after a product), so our parts would share the cores with spinning threads (MNIST CNN, 2
cores, batch 128: 52 ms a step so, 30-34 ms with the BLAS at one thread).  So while parts
run -- and when the work is one part, so that the bits never depend on the split -- the
BLAS is held at one thread (:class:`one_blas_thread`: two C calls, ~2 µs), and, while this
process is splitting work into parts (a split in the last :data:`RECENT_SPLIT` seconds),
:func:`matmul` -- the products of ``linear`` and the column sums -- keeps *small* products on
one thread too: a second thread saves them a few µs, but wakes OpenBLAS's workers to spin
beside the next op's parts (the MNIST CNN's step: 53 against 33 ms).  Work that does not
split (an MLP: no convolution, no pooling) has no parts to disturb, and there the holds only
cost (the README's MLP loop: 2-4% a step), also in a notebook that trained a CNN before.
Big products (an MLP's 784×256 layer) keep the BLAS's threads.  Nothing is left changed:
each call restores the BLAS's own count.

**How many parts.**  ``TINYGRAD_EDU_THREADS`` when set, or :func:`set_threads`; else the
cores this process may run on.  Work too small to pay for a thread hand-off (~70 µs on a
2-core VM: a sleeping thread's wake-up) is not split, and a part never splits again.  The
worker threads start on the first split, not on import.  The parts take whole units of
fixed bounds and run their products on one BLAS thread, so the ops give the same bits for
any number of parts and any BLAS setting.

A plain numpy helper at the bottom of the import order: it knows nothing of nodes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from itertools import pairwise
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

__all__ = [
    "MIN_PART_BYTES", "RECENT_SPLIT", "SMALL_PRODUCT", "THREADS_ENV_VAR", "blas_count", "matmul",
    "one_blas_thread", "parallel_parts", "parts", "set_blas_count", "set_threads", "threads",
]

#: Set to the number of threads the array ops may split their work over (``1``: never).
THREADS_ENV_VAR = "TINYGRAD_EDU_THREADS"


def _env_threads() -> int | None:
    """``TINYGRAD_EDU_THREADS`` as an int >= 1, or None when unset."""
    value = os.environ.get(THREADS_ENV_VAR, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_ENV_VAR} must be a whole number >= 1, got {value!r}")
    return int(value)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_chosen: list[int | None] = [_env_threads()]  # set_threads / the environment; None: the BLAS's
_pool: list[Any] = [None, 0, 0]  # [the worker threads, how many, the process that started them]
_last_split = [-float("inf")]  # time.monotonic() of the last run in several parts
_lock = threading.Lock()
_inside = threading.local()  # .active: this thread is running a part
_blas: list[Any] = []  # [threadpoolctl's BLAS controllers], found on first use


def threads() -> int:
    """How many parts the array ops split big work into now (see the module docstring)."""
    return _cores() if _chosen[0] is None else _chosen[0]


def set_threads(n: int | None) -> None:
    """Split the array ops' work into ``n`` parts from now on (``1``: never split; None: the
    default, see the module docstring)."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"set_threads: n must be an int >= 1 or None, got {n!r}")
    _chosen[0] = n


#: The least work worth a thread of its own: a part of at least this many bytes (a hand-off
#: costs tens of µs; copying 1 MB about 100).
MIN_PART_BYTES = 1 << 20


def parts(n: int, bytes_per_row: int) -> list[tuple[int, int]]:
    """``range(n)`` cut into at most :func:`threads` consecutive ``(start, stop)`` parts of
    nearly equal size, each of at least ``MIN_PART_BYTES`` (rows of ``bytes_per_row``): one
    part when the work is small, or when called from inside a part."""
    if getattr(_inside, "active", False):
        count = 1
    else:
        count = max(1, min(threads(), n, n * bytes_per_row // MIN_PART_BYTES))
    bounds = [n * i // count for i in range(count + 1)]
    return list(pairwise(bounds))


def parallel_parts(work: Callable[[int, int, int], Any],
                   ranges: list[tuple[int, int]]) -> list[Any]:
    """``[work(i, start, stop) for i, (start, stop) in enumerate(ranges)]``, the parts run
    at the same time: part 0 in the calling thread, the others in worker threads.  ``i`` is
    the part's number (for per-part buffers).  The BLAS is held at one thread throughout,
    one part or several (:class:`one_blas_thread`).  An exception in any part is raised
    here, after every part has finished."""
    with one_blas_thread():  # the cores are the parts' (see the module docstring)
        if len(ranges) == 1:
            return [work(0, *ranges[0])]
        pool = _worker_pool(len(ranges) - 1)
        _last_split[0] = time.monotonic()
        futures = [pool.submit(_as_part, work, i, a, b)
                   for i, (a, b) in enumerate(ranges[1:], 1)]
        try:
            first = _as_part(work, 0, *ranges[0])
        finally:
            wait(futures)  # every part has finished, even when one failed
    return [first, *(f.result() for f in futures)]  # a worker's error is raised here


def _as_part(work: Callable[[int, int, int], Any], i: int, a: int, b: int) -> Any:
    """``work(i, a, b)`` with this thread marked as running a part (no nested splitting)."""
    outer = getattr(_inside, "active", False)
    _inside.active = True
    try:
        return work(i, a, b)
    finally:
        _inside.active = outer


def _worker_pool(workers: int) -> ThreadPoolExecutor:
    """The worker threads (at least ``workers``), started on first use.  A forked child
    process has none of its parent's threads, so it starts its own."""
    with _lock:
        if _pool[2] != os.getpid():
            _pool[:] = [None, 0, os.getpid()]  # the parent's pool: never shut down from here
        if _pool[1] < workers:
            old = _pool[0]
            _pool[:2] = [ThreadPoolExecutor(workers, thread_name_prefix="tinygrad_edu"), workers]
            if old is not None:
                old.shutdown(wait=False)  # its threads end once their queue is empty
        return _pool[0]


def _blas_libraries() -> list[Any]:
    """threadpoolctl's controllers of the BLAS libraries loaded now (found once)."""
    if not _blas:
        _blas.append(ThreadpoolController().select(user_api="blas").lib_controllers)
    return _blas[0]


class one_blas_thread:  # lower case: used like a function, ``with one_blas_thread():``
    """Hold the loaded BLAS libraries at one thread inside the ``with`` block, then give
    each back the count it had.  Holds may nest and overlap across threads: the first one
    in sets one thread, the last one out gives the counts back (a BLAS already at one is
    left alone).  A child process forked while holds are open keeps only its own thread's
    (see :func:`_after_fork_in_child`)."""

    __slots__ = ()

    def __enter__(self) -> None:
        with _hold_lock:
            if _hold[0] == 0:
                _hold[1] = [(i, set_count, n)
                            for i, (get_count, set_count) in enumerate(_thread_counters())
                            if (n := get_count()) > 1]
                for _, set_count, _ in _hold[1]:
                    set_count(1)
            _hold[0] += 1
            _mine.holds = getattr(_mine, "holds", 0) + 1

    def __exit__(self, *exc: object) -> None:
        with _hold_lock:
            _hold[0] -= 1
            _mine.holds -= 1
            if _hold[0] == 0:
                _give_back()


def _give_back() -> None:
    """Give each held BLAS library back its own count (under the hold lock)."""
    for _, set_count, n in _hold[1]:
        set_count(n)
    _hold[1] = []


_hold: list[Any] = [0, []]  # [holds open now, [(library number, its set-count, own count)]]
_mine = threading.local()  # .holds: how many of the holds open now this thread opened
_hold_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child has only the thread that forked: the holds other threads had open
    will never close there, and the lock may have been taken by one of them.  So the child
    gets a new lock and keeps the forking thread's holds only; when it has none, the BLAS
    gets its own counts back at once (else the child would run at one thread for good)."""
    global _hold_lock
    _hold_lock = threading.Lock()
    _hold[0] = getattr(_mine, "holds", 0)  # the forking thread's own, still in its locals
    if _hold[0] == 0:
        _give_back()


if hasattr(os, "register_at_fork"):  # not on Windows (no fork there)
    os.register_at_fork(after_in_child=_after_fork_in_child)

_counters: list[Any] = [None, []]  # [the controllers list, [(get count, set count)] of each]


def _thread_counters() -> list[tuple[Callable[[], int], Callable[[int], Any]]]:
    """``(get_count, set_count)`` of each BLAS library, made once per controllers list.

    Speed: a hold runs beside every small product (three a step of the README's MLP), and
    inside a training step Python runs with cold caches, so threadpoolctl's own methods
    (each a few Python calls deep: it finds the symbol by name and checks which thread may
    set the count) cost there ~7 µs a hold more than the C calls alone (the MLP's held
    products in a training loop: 55 against 48 µs).  So for an OpenBLAS with its own
    threads (not OpenMP's, whose counts are per thread) the hold calls OpenBLAS's two C
    functions directly, as threadpoolctl itself finally does; any other library goes
    through threadpoolctl.
    """
    libraries = _blas_libraries()
    if _counters[0] is not libraries:
        counters = []
        for lib in libraries:
            symbol = getattr(lib, "_get_symbol", None)
            raw = (getattr(lib, "internal_api", None) == "openblas" and symbol is not None
                   and getattr(lib, "threading_layer", None) != "openmp")
            get_count = symbol("openblas_get_num_threads") if raw else None
            set_count = symbol("openblas_set_num_threads") if raw else None
            if get_count is None or set_count is None:
                get_count, set_count = lib.get_num_threads, lib.set_num_threads
            counters.append((get_count, set_count))
        _counters[:] = [libraries, counters]
    return _counters[1]


def set_blas_count(n: int) -> bool:
    """Give every loaded BLAS library ``n`` threads (False when none is loaded).  While a
    hold is open (another thread's ops running their parts), the libraries stay at one
    thread and get ``n`` when the hold ends, instead of the count they had before it."""
    counters = _thread_counters()
    with _hold_lock:
        if _hold[0]:
            _hold[1] = [(i, c[1], n) for i, c in enumerate(counters)] if n > 1 else []
        else:
            for _, set_count in counters:
                set_count(n)
    return bool(counters)


def blas_count() -> int | None:
    """The first BLAS library's own thread count (None if none is loaded): during a hold,
    the count it gets back when the hold ends, not the one it holds."""
    counters = _thread_counters()
    if not counters:
        return None
    with _hold_lock:
        if _hold[0]:
            return next((n for i, _, n in _hold[1] if i == 0), 1)
        return int(counters[0][0]())


#: Products of fewer multiply-adds than this run on one BLAS thread (:func:`matmul`, while
#: work is being split): about 25 µs of one core, where a second thread saves under 10 µs
#: (1M: 27 against 20 µs).
SMALL_PRODUCT = 1 << 21
#: Seconds after a split during which :func:`matmul` still holds small products.  In a
#: training step that splits (a CNN's), every small product comes milliseconds after a
#: convolution or a pooling split, while an MLP trained later in the same notebook gets the
#: BLAS's threads back after this long.
RECENT_SPLIT = 1.0
#: Below these OpenBLAS itself uses one thread (its interface/gemm.c and gemv.c thresholds:
#: 65,536 · 4 multiply-adds for a matrix product, 2,304 · 4 for matrix × vector), so no
#: hold is needed: a tiny network's products skip its ~3 µs.
_ALONE_GEMM, _ALONE_GEMV = 1 << 18, 9216


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D (or one 1-D) arrays; while this process is splitting work into parts
    (the last split less than :data:`RECENT_SPLIT` seconds ago), a product smaller than
    :data:`SMALL_PRODUCT` multiply-adds runs on one BLAS thread, so that it does not set
    OpenBLAS's workers spinning beside the parts of the ops around it (see the module
    docstring)."""
    macs = a.size * (b.shape[1] if b.ndim == 2 else 1)  # m·k·n
    alone = _ALONE_GEMM if a.ndim == b.ndim == 2 else _ALONE_GEMV
    if macs >= SMALL_PRODUCT or macs < alone or time.monotonic() - _last_split[0] > RECENT_SPLIT:
        return a @ b
    with one_blas_thread():
        return a @ b
