"""Shared helpers of the benchmark scripts: timing, interleaving, tables and machine facts.

Every benchmark measures its contenders *in the same run*, interleaved (A, B, C, A, B, C...)
and repeated, and reports the median with the spread (min and max), plus ratios against a
reference measured alongside.  On a shared, noisy machine only such ratios mean something.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from tinygrad_edu import runtime  # (after the sys.path line above)

# The library as a notebook user runs it: no process-wide setting.  The `train` command's
# malloc setting (tinygrad_edu.runtime) only with TINYGRAD_EDU_KEEP_MEMORY=1, and then for
# every contender alike, the numpy floor and PyTorch included.
KEEP_FREED_MEMORY = (os.environ.get(runtime.KEEP_MEMORY_ENV_VAR) == "1"
                     and runtime.keep_freed_memory())

NO_OPTIONAL_VAR = "TINYGRAD_EDU_BENCH_NO_OPTIONAL"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# ------------------------------------------------------------------ command line
def parse_args(description: str, repeats: int,
               extra: Callable[[argparse.ArgumentParser], Any] | None = None
               ) -> argparse.Namespace:
    """The options every benchmark takes: ``--quick`` (tiny sizes) and ``--repeats``, plus
    those ``extra(parser)`` adds."""
    parser = argparse.ArgumentParser(description=description)
    if extra is not None:
        extra(parser)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, a few seconds (used by the smoke tests)")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"timed repetitions of each contender (default {repeats}, "
                             "1 with --quick)")
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 1 if args.quick else repeats
    return args


# ------------------------------------------------------------------ machine facts
def _cpuinfo(field: str) -> str | None:
    """The value of the first ``field`` line of /proc/cpuinfo (None without one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def _blas() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        name = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older numpy: facts are best effort
        name = "unknown"
    return name + _blas_kernel()


#: OpenBLAS kernels (its core names, lower case) that use AVX-512.
AVX512_KERNELS = ("skylakex", "cooperlake", "sapphirerapids")


def cpu_has_avx512() -> bool | None:
    """Whether the CPU (and the OS) offers the AVX-512 subsets of a Skylake-X (F, CD, BW,
    DQ, VL), from /proc/cpuinfo's flags; None where there is no /proc/cpuinfo."""
    flags = _cpuinfo("flags")
    if flags is None:
        return None
    return {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= set(flags.split())


def kernel_note(kernel: str | None, avx512: bool | None) -> str:
    """``, kernel Haswell`` and, when the CPU has AVX-512 but OpenBLAS did not pick one of
    its AVX-512 kernels (OpenBLAS 0.3.31 runs its Haswell kernel on AMD's family 26, Zen 5), a
    warning: PyTorch's oneDNN does use AVX-512 there, so the two sides of a ratio then run
    different instruction sets (docs/performance.md, "Issue 14, seventh session")."""
    if not kernel:
        return ""
    note = f", kernel {kernel}"
    if avx512 and kernel.lower() not in AVX512_KERNELS:
        note += (" on a CPU with AVX-512: numpy's products run AVX2 code "
                 "(OPENBLAS_CORETYPE=SkylakeX would select OpenBLAS's AVX-512 kernels)")
    return note


def _blas_kernel() -> str:
    """The BLAS kernel threadpoolctl reports (OpenBLAS's core name), with :func:`kernel_note`."""
    try:
        from threadpoolctl import threadpool_info

        libs = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    except Exception:  # noqa: BLE001 - facts are best effort
        return ""
    return kernel_note(libs[0].get("architecture") if libs else None, cpu_has_avx512())


def _threads() -> str:
    pinned = [f"{v}={os.environ[v]}" for v in THREAD_VARS if v in os.environ]
    return ", ".join(pinned) if pinned else "library defaults (no *_NUM_THREADS set)"


def machine_facts() -> dict[str, str]:
    """CPU, cores, Python, numpy, BLAS and thread settings of this run."""
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _blas(),
        "threads": _threads(),
        "malloc": "keeps freed memory (mallopt, TINYGRAD_EDU_KEEP_MEMORY=1)" if KEEP_FREED_MEMORY
        else "glibc defaults (library defaults, as in a notebook)",
    }


def print_header(title: str, quick: bool) -> None:
    """The benchmark's title and the machine facts, one per line."""
    print(f"# {title}" + ("  [--quick: tiny sizes, numbers are not meaningful]" if quick else ""))
    for key, value in machine_facts().items():
        print(f"{key:>8}: {value}")


# ------------------------------------------------------------------ optional contenders
def optional_import(name: str, why: str) -> Any:
    """Import module ``name`` (e.g. ``"micrograd.engine"``) or print a skip message and
    return None.  ``TINYGRAD_EDU_BENCH_NO_OPTIONAL=1`` skips every optional contender (the
    smoke tests use it to check the path a machine without them takes)."""
    package = name.split(".")[0]
    if os.environ.get(NO_OPTIONAL_VAR):
        print(f"{package} skipped ({NO_OPTIONAL_VAR} is set): {why} skipped")
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        print(f"{package} is not installed: {why} skipped (pip install {package})")
        return None


def torch_facts(torch: Any) -> str:
    """PyTorch's version, threads and the instruction set its CPU kernels use (``AVX512``,
    ``AVX2``...; ``ATEN_CPU_CAPABILITY=avx2`` and ``ONEDNN_MAX_CPU_ISA=AVX2`` lower it)."""
    try:
        isa = f", CPU capability {torch.backends.cpu.get_cpu_capability()}"
    except Exception:  # noqa: BLE001 - older PyTorch: facts are best effort
        isa = ""
    return f"{torch.__version__}, {torch.get_num_threads()} threads{isa}"


# ------------------------------------------------------------------ data
def mnist_or_synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` training images (float32, (n, 28, 28), in [0, 1]) and int64 labels.

    Real MNIST when the loader finds it locally (``TINYGRAD_EDU_DATA`` or the cache; never
    downloads), else synthetic data of the same shape: timing does not need real digits.
    """
    try:
        from tinygrad_edu.datasets import load_mnist

        x, y, _, _ = load_mnist(download=False)
        return x[:n], y[:n], f"MNIST ({min(n, len(x))} training images)"
    except Exception as exc:  # noqa: BLE001 - any failure means: use synthetic data
        rng = np.random.default_rng(seed)
        x = rng.random((n, 28, 28), dtype=np.float32)
        y = rng.integers(0, 10, n).astype(np.int64)
        return x, y, f"synthetic ({n} random 28x28 images; MNIST not found: {exc!s:.60})"


# ------------------------------------------------------------------ timing
Clock = Callable[[], float]


#: Seconds each run of ``cnn.py`` waits before it starts (``interleave(settle=...)``), so that
#: it starts on quiet cores: after a multi-threaded product OpenBLAS's workers spin for about
#: 0.1 s (tinygrad_edu/parallel.py), and a contender whose ops split over the cores would
#: otherwise share them with the spinning threads of the contender before it.  Measured
#: (cnn.py, 2 cores): the library's first three steps after the numpy floor's round took
#: 39.5, 38.9 and 36.1 ms against 26 ms.  Not for short runs: after a pause the cores start
#: slower, and the scalar benchmark's 35 ms runs lost a quarter of their ratio (9.77 → 7.45).
SETTLE_SECONDS = 0.2


def timed(fn: Callable[[], Any], clock: Clock = time.perf_counter, settle: float = 0.0) -> float:
    """Seconds one call of ``fn`` takes, after a garbage collection (and a pause of
    ``settle`` seconds), so that runs start alike.

    ``clock`` is wall time by default; single-threaded benchmarks pass
    ``time.process_time`` (this process's CPU time), which other programs running on a
    busy machine barely disturb."""
    gc.collect()
    if settle:
        time.sleep(settle)
    start = clock()
    fn()
    return clock() - start


def interleave(contenders: dict[str, Callable[[], Any]], repeats: int,
               clock: Clock = time.perf_counter, settle: float = 0.0) -> dict[str, list[float]]:
    """Time each contender ``repeats`` times, rotating the order every round.

    Round r runs the contenders starting at index r, so none is always first.  (Each keeps
    its neighbours: the rotation of a cycle is the same cycle.  What one contender leaves
    running -- BLAS threads spinning -- is waited out with ``settle``: see
    :data:`SETTLE_SECONDS`.)  Returns the seconds of every run, per contender.
    """
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            times[name].append(timed(contenders[name], clock, settle))
    return times


@dataclass(frozen=True)
class Summary:
    """Median and spread of a list of measurements."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        return cls(statistics.median(values), min(values), max(values))


def paired_ratios(times: dict[str, list[float]], name: str, reference: str) -> Summary:
    """``name / reference`` for each round (measured back to back), summarised."""
    return Summary.of([a / b for a, b in zip(times[name], times[reference])])


# ------------------------------------------------------------------ printing
def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Markdown table with right-aligned columns (pastes straight into the docs)."""
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.rjust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    print("\n".join(lines))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def spread(summary: Summary, fmt: str = "{:.3f}") -> str:
    """``median [min – max]`` as text."""
    return f"{fmt.format(summary.median)} [{fmt.format(summary.low)} – {fmt.format(summary.high)}]"


def print_ratio(label: str, summary: Summary, target: str = "") -> None:
    """One ``RATIO`` line: the median of the paired ratios, its spread, and the target."""
    verdict = f"  (target {target})" if target else ""
    print(f"RATIO {label}: {spread(summary, '{:.2f}')}{verdict}")
