"""Per-op Python overhead of the Tensor engine on tiny tensors, forward and backward.

On 8×8 float32 arrays the numpy call itself costs about a microsecond, so what is left is
the engine's own work per op: building the node (forward) and, in backward, the topological
order, the op's backward formula and the gradient accumulation.  Each row compares with the
raw numpy computation of the same thing on the same arrays.  Times are CPU time of this
(single-threaded) process, which a busy machine disturbs least.

    python benchmarks/overhead.py            # 2,000 calls per timing, 7 interleaved rounds
    python benchmarks/overhead.py --quick    # 200 calls, 1 round
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from _common import Summary, interleave, parse_args, print_header, print_table

from tinygrad_edu import Tensor

SHAPE = (8, 8)


def _arrays() -> tuple[Tensor, Tensor, np.ndarray]:
    rng = np.random.default_rng(0)
    a = Tensor(rng.standard_normal(SHAPE, dtype=np.float32), requires_grad=True)
    b = Tensor(rng.standard_normal(SHAPE, dtype=np.float32), requires_grad=True)
    return a, b, np.ones(SHAPE, np.float32)


def cases() -> dict[str, tuple[Callable, Callable, Callable]]:
    """op name → (ours forward, numpy forward, numpy backward), all on the same arrays."""
    a, b, _ = _arrays()
    x, y = a.data, b.data
    return {
        "add": (lambda: a + b, lambda: x + y, lambda g: (g, g)),
        "mul": (lambda: a * b, lambda: x * y, lambda g: (g * y, g * x)),
        "matmul": (lambda: a @ b, lambda: x @ y, lambda g: (g @ y.T, x.T @ g)),
        "relu": (lambda: a.relu(), lambda: np.maximum(x, 0), lambda g: g * (x > 0)),
        "sum": (lambda: a.sum(), lambda: x.sum(), lambda g: np.broadcast_to(g, SHAPE).copy()),
    }


def loop(fn: Callable[[], object], calls: int) -> Callable[[], None]:
    """``fn`` called ``calls`` times (the unit that gets timed)."""

    def run() -> None:
        for _ in range(calls):
            fn()

    return run


def backward_of(forward: Callable[[], Tensor]) -> Callable[[], None]:
    """One backward pass through the node ``forward()`` makes (leaf grads reset first)."""
    out = forward()
    leaves = out.parents
    seed = None if out.data.size == 1 else np.ones(out.shape, np.float32)

    def run() -> None:
        for leaf in leaves:
            leaf.grad = None
        out.backward(seed)

    return run


def measure(name: str, case: tuple[Callable, Callable, Callable], calls: int,
            repeats: int) -> list[object]:
    """One table row: µs per call of each of the four timings, medians of interleaved rounds."""
    ours_fwd, np_fwd, np_bwd = case
    g = np.ones(np.shape(np_fwd()), np.float32)
    runs = {
        "np fwd": loop(np_fwd, calls),
        "ours fwd": loop(ours_fwd, calls),
        "np bwd": loop(lambda: np_bwd(g), calls),
        "ours bwd": loop(backward_of(ours_fwd), calls),
    }
    times = interleave(runs, repeats, time.process_time)
    best = {k: Summary.of(v).low / calls * 1e6 for k, v in times.items()}
    med = {k: Summary.of(v).median / calls * 1e6 for k, v in times.items()}
    return [name, _pair(best, med, "np fwd"), _pair(best, med, "ours fwd"),
            best["ours fwd"] - best["np fwd"], _pair(best, med, "np bwd"),
            _pair(best, med, "ours bwd"), best["ours bwd"] - best["np bwd"]]


def _pair(best: dict[str, float], med: dict[str, float], key: str) -> str:
    """``best / median`` µs of one timing."""
    return f"{best[key]:.2f} / {med[key]:.2f}"


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeats=7)
    print_header(f"Tensor engine per-op overhead on {SHAPE[0]}x{SHAPE[1]} float32", args.quick)
    calls = 200 if args.quick else 2000
    rows = [measure(name, case, calls, args.repeats) for name, case in cases().items()]
    print("µs per call, best / median of the rounds (noise only ever adds time, so the best "
          "is the engine's cost); overheads from the best")
    print_table(["op", "numpy fwd", "ours fwd", "fwd overhead", "numpy bwd", "ours bwd",
                 "bwd overhead"], rows)
    fwd = [r[3] for r in rows]
    bwd = [r[6] for r in rows]
    print(f"OVERHEAD forward: {min(fwd):.2f}–{max(fwd):.2f} µs/op over numpy; backward "
          f"(whole pass through one op, incl. seed and topological order): "
          f"{min(bwd):.2f}–{max(bwd):.2f} µs/op over numpy")


if __name__ == "__main__":
    main()
