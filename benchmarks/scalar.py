"""Scalar engine throughput: `Value` graph build + backward, in ops/s, against micrograd.

Three workloads, each timed as build + backward:

* **wide**: a micrograd-style training loop: 4 steps of (forward of an MLP of 3 layers of 32
  ReLU neurons on 32 inputs over 8 samples, loss = Σ out²; backward; SGD update).  Each
  step's graph is dropped when the next is built, so freeing graphs is timed too (ours by
  reference counting; micrograd's, which are reference cycles, by the garbage collector).
  The same code runs on our ``Value`` and micrograd's ``Value``.  It is also timed as a
  single step (one graph), where micrograd's cyclic garbage is collected outside the timing.
* **tree**: ``relu(xᵢ·wᵢ + 0.1)`` for 50,000 pairs of leaves, summed pairwise (a balanced
  tree): 200,000 ops, every node alive until the end, so the cyclic garbage collector walks
  an ever larger heap while the graph is built.  The leaves are made inside the timing.
* **deep**: a chain ``y = y·a + b`` of 2,000,000 operations (one node after the other, with
  Python-number constants), then backward through all of it (target: at most 6 s).
  micrograd's recursive topological sort cannot do this: it is tried on a chain just past
  Python's recursion limit to show the ``RecursionError``.

An op is one node made by ``+``, ``*`` or ``relu`` (constants turned into leaves do not count).
The garbage collector stays on, as in user code.  Times are this process's CPU time
(``time.process_time``): both engines are single-threaded Python, and CPU time is what
other programs on a busy machine disturb least.

    python benchmarks/scalar.py            # 5 interleaved rounds, chain of 2·10⁶ (3 runs)
    python benchmarks/scalar.py --quick    # small sizes
"""

from __future__ import annotations

import gc
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import (
    Summary,
    interleave,
    optional_import,
    parse_args,
    print_header,
    print_ratio,
    print_table,
    spread,
    timed,
)

from tinygrad_edu import Value

STEPS = 4  # training steps per timed run of the wide workload
CPU = time.process_time  # single-threaded work: CPU time, robust on a busy machine


# ------------------------------------------------------------------ workloads
def wide_workload(value_cls: type, n_in: int, width: int, layers: int, samples: int,
                  steps: int) -> tuple[Callable[[], None], int]:
    """The wide workload for an engine (``steps`` training steps per call), and its number
    of ops per call."""
    rng = random.Random(0)
    weights = [[[value_cls(rng.uniform(-1, 1)) for _ in range(n_in if k == 0 else width)]
                for _ in range(width)] for k in range(layers)]
    biases = [[value_cls(0.0) for _ in range(width)] for _ in range(layers)]
    inputs = [[rng.uniform(-1, 1) for _ in range(n_in)] for _ in range(samples)]

    params = [p for layer in weights + biases for row in layer
              for p in (row if isinstance(row, list) else [row])]

    def loss_of_batch() -> Any:
        loss = value_cls(0.0)
        for x in inputs:
            h: list[Any] = [value_cls(v) for v in x]
            for layer_w, layer_b in zip(weights, biases):
                h = [_neuron(row, b, h) for row, b in zip(layer_w, layer_b)]
            for out in h:
                loss = loss + out * out
        return loss

    def run() -> None:
        for _ in range(steps):  # each step's graph is dropped when the next one is made
            loss = loss_of_batch()
            for p in params:
                p.grad = 0.0
            loss.backward()
            for p in params:
                p.data -= 1e-3 * p.grad

    fan_ins = [n_in] + [width] * (layers - 1)
    ops = samples * (sum(width * (2 * f + 1) for f in fan_ins) + 2 * width)
    return run, steps * ops


def _neuron(row: list[Any], bias: Any, inputs: list[Any]) -> Any:
    """relu(b + Σ wᵢ xᵢ), accumulated left to right as micrograd's Neuron does."""
    act = bias
    for w, x in zip(row, inputs):
        act = act + w * x
    return act.relu()


def tree_workload(value_cls: type, pairs: int) -> tuple[Callable[[], None], int]:
    """The tree workload for an engine (leaves, build, backward), and its number of ops."""
    rng = random.Random(0)
    xs = [rng.uniform(-1, 1) for _ in range(pairs)]
    ws = [rng.uniform(-1, 1) for _ in range(pairs)]

    def run() -> None:
        terms = [(value_cls(x) * value_cls(w) + 0.1).relu() for x, w in zip(xs, ws)]
        while len(terms) > 1:
            pairs_ = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
            terms = pairs_ + terms[len(terms) - len(terms) % 2:]
        terms[0].backward()

    return run, 3 * pairs + (pairs - 1)


def build_chain(value_cls: type, ops: int) -> tuple[Any, Any]:
    """``x`` and the end of a chain of ``ops`` operations ``y = y·a + b`` starting at x."""
    x = value_cls(0.5)
    y = x
    for _ in range(ops // 2):
        y = y * 0.9999999 + 1e-7
    return x, y


# ------------------------------------------------------------------ runs
def run_wide(micrograd: Any, repeats: int, quick: bool, steps: int) -> Summary | None:
    """Interleaved rounds of the wide workload; prints its table; returns ours/micrograd."""
    shape = (8, 8, 2, 2) if quick else (32, 32, 3, 8)
    engines = {"tinygrad_edu Value": Value}
    if micrograd is not None:
        engines["micrograd Value"] = micrograd.Value
    runs, ops = {}, 0
    for name, cls in engines.items():
        runs[name], ops = wide_workload(cls, *shape, steps)
    for run in runs.values():  # warm-up
        run()
    times = interleave(runs, repeats, CPU)
    rates = {name: Summary.of([ops / s for s in secs]) for name, secs in times.items()}
    print(f"\n## wide: MLP {shape[0]}→{shape[1]}×{shape[2]} layers on {shape[3]} samples, "
          f"{_steps_text(steps)}, {ops:,} ops per run")
    print_table(["engine", "ops/s: median [min – max]", "s per run (median)"],
                [[name, spread(rates[name], "{:,.0f}"), Summary.of(times[name]).median]
                 for name in times])
    if micrograd is None:
        return None
    return Summary.of([m / o for o, m in zip(times["tinygrad_edu Value"],
                                             times["micrograd Value"])])


def _steps_text(steps: int) -> str:
    if steps == 1:
        return "one graph (built, backpropagated, updated once)"
    return f"training loop of {steps} steps"


def run_tree(micrograd: Any, repeats: int, quick: bool) -> Summary | None:
    """Interleaved rounds of the tree workload; prints its table; returns ours/micrograd."""
    pairs = 2_000 if quick else 50_000
    engines = {"tinygrad_edu Value": Value}
    if micrograd is not None:
        engines["micrograd Value"] = micrograd.Value
    runs, ops = {}, 0
    for name, cls in engines.items():
        runs[name], ops = tree_workload(cls, pairs)
    times = interleave(runs, repeats, CPU)
    print(f"\n## tree: relu(x·w + 0.1) for {pairs:,} pairs, summed pairwise, "
          f"{ops:,} ops per run (leaves, build, backward)")
    print_table(["engine", "ops/s: median [min – max]", "s per run (median)"],
                [[name, spread(Summary.of([ops / t for t in secs]), "{:,.0f}"),
                  Summary.of(secs).median] for name, secs in times.items()])
    if micrograd is None:
        return None
    return Summary.of([m / o for o, m in zip(times["tinygrad_edu Value"],
                                             times["micrograd Value"])])


def run_deep(ops: int) -> tuple[float, float, float]:
    """Build and backpropagate our chain of ``ops`` ops: (build s, backward s, x.grad)."""
    gc.collect()
    start = CPU()
    x, y = build_chain(Value, ops)
    built = CPU()
    y.backward()
    done = CPU()
    return built - start, done - built, x.grad


def micrograd_deep(micrograd: Any, ops: int) -> str:
    """What micrograd does on a chain of ``ops`` operations."""
    try:
        x, y = build_chain(micrograd.Value, ops)
        seconds = timed(y.backward, CPU)
    except RecursionError:
        return f"RecursionError at a chain of {ops:,} ops"
    return f"backpropagated {ops:,} ops in {seconds:.3f} s (grad {x.grad:.6f})"


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeats=5)
    print_header("Scalar engine: Value build + backward throughput", args.quick)
    micrograd = optional_import("micrograd.engine", "the micrograd comparison is")
    one_graph = run_wide(micrograd, args.repeats, args.quick, steps=1)
    ratio = run_wide(micrograd, args.repeats, args.quick, steps=STEPS)

    tree = run_tree(micrograd, args.repeats, args.quick)

    ops = 20_000 if args.quick else 2_000_000
    runs = [run_deep(ops) for _ in range(1 if args.quick else min(args.repeats, 3))]
    totals = Summary.of([b + f for b, f, _ in runs])
    print(f"\n## deep: chain y = y·a + b of {ops:,} ops (depth {ops:,}), {len(runs)} run(s)")
    rows = [["tinygrad_edu Value", f"{build_s:.2f}", f"{backward_s:.2f}",
             f"{build_s + backward_s:.2f}", f"{ops / (build_s + backward_s):,.0f}",
             f"{grad:.6f}"] for build_s, backward_s, grad in runs]
    print_table(["engine", "build s", "backward s", "total s", "ops/s", "x.grad"], rows)
    grad = runs[0][2]
    expected = 0.9999999 ** (ops // 2)
    print(f"DEEP ours: {ops:,}-op chain backpropagated, x.grad {grad:.6f} "
          f"(exact {expected:.6f})")
    print(f"CHAIN ours: {ops:,} ops built and backpropagated in {spread(totals, '{:.2f}')} s"
          + ("" if args.quick else "  (target <= 6 s)"))
    if micrograd is not None:
        depth = sys.getrecursionlimit() * 2
        print(f"DEEP micrograd: {micrograd_deep(micrograd, depth)}")
    if ratio is not None and one_graph is not None and tree is not None:
        target = "" if args.quick else ">= 5"
        print_ratio("ours / micrograd (wide ops/s, one graph)", one_graph, target)
        print_ratio(f"ours / micrograd (wide ops/s, training loop of {STEPS} steps)", ratio,
                    target)
        print_ratio("ours / micrograd (tree sum of relu terms, ops/s)", tree, target)


if __name__ == "__main__":
    main()
