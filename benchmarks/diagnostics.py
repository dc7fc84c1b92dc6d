"""What the diagnostics cost: hooks in the backward loop, anomaly mode, kept intermediate grads.

Three measurements, each against a reference timed in the same run, interleaved:

* **backward loop**: ``backward()`` of a graph of Values (the engine most sensitive to
  per-node work) with today's loop (one ``watch is not None`` test per node) against the
  loop as it was before hooks existed (a copy of it, below), and with one hook registered
  on an unrelated node (the watch is then active: the price of having a hook anywhere);
* **anomaly mode**: a training step of a small MLP with the mode on, against off; and off
  after it was on (the engines' plain ``_make`` is put back, so this ratio is ~1);
* **memory**: the peak traced memory (``tracemalloc``, which sees numpy's arrays) of
  backward on an MLP batch of 512 with every intermediate keeping its ``.grad`` (the default)
  against ``retain_intermediate_grads(False)``.

Times are this process's CPU time with one BLAS thread, medians of paired ratios.

    python benchmarks/diagnostics.py            # 15 rounds
    python benchmarks/diagnostics.py --quick    # small sizes, 1 round
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

import numpy as np
from _common import (
    interleave,
    paired_ratios,
    parse_args,
    print_header,
    print_ratio,
    print_table,
    spread,
)

from tinygrad_edu import (
    Tensor,
    Value,
    autograd,
    cross_entropy,
    detect_anomaly,
    nn,
    optim,
    runtime,
)
from tinygrad_edu.hooks import retain_intermediate_grads


def reference_propagate(order: list, on_edge: Callable | None) -> None:
    """The backward loop before hooks (the reference): the chain rule and nothing else."""
    for node in reversed(order):
        op, upstream = node._op, node.grad
        if op is None or upstream is None:
            continue
        grads = op.backward(node, upstream)
        for i, parent in enumerate(node._parents):
            grad = grads[i]
            if grad is None:
                continue
            parent.grad = grad if parent.grad is None else parent.grad + grad
            if on_edge is not None:
                on_edge(node, i, upstream, grad)


def value_graph(width: int, depth: int) -> Value:
    """A dense net of Values: ``depth`` layers of ``width`` tanh neurons, summed."""
    rng = np.random.default_rng(0)
    xs = [Value(float(v)) for v in rng.standard_normal(width)]
    for _ in range(depth):
        ws = rng.standard_normal((width, width)) / np.sqrt(width)
        xs = [sum((w * x for w, x in zip(row, xs)), Value(0.0)).tanh() for row in ws.tolist()]
    return sum(xs, Value(0.0))


def loop_overhead(quick: bool, repeats: int) -> None:
    out = value_graph(12 if quick else 48, 3)
    plain = autograd._propagate
    unrelated = Value(1.0)

    def run(propagate: Callable, hooked: bool) -> Callable[[], None]:
        def once() -> None:
            handle = unrelated.register_hook(lambda g: None) if hooked else None
            autograd._propagate = propagate
            try:
                for _ in range(3):
                    out.backward()
            finally:
                autograd._propagate = plain
                if handle is not None:
                    handle.remove()
        return once

    nodes = len(out.topological_order())
    times = interleave({"before hooks": run(reference_propagate, False),
                        "today": run(plain, False),
                        "today, a hook elsewhere": run(plain, True)}, 3 * repeats,
                       time.process_time)  # a small difference: three times the rounds
    print(f"\n## backward loop: a graph of {nodes:,} Values")
    print_table(["loop", "ms per backward"],
                [[name, spread(_ms([v / 3 for v in t]))] for name, t in times.items()])
    print_ratio("today / before hooks (no hook)", paired_ratios(times, "today", "before hooks"),
                "1.00: one test per node")
    print_ratio("a hook elsewhere / before hooks",
                paired_ratios(times, "today, a hook elsewhere", "before hooks"))


def _ms(values: list[float]):
    from _common import Summary

    return Summary.of([v * 1e3 for v in values])


def _mlp(quick: bool, batch: int = 64) -> tuple[nn.Module, optim.SGD, Tensor, np.ndarray]:
    rng = np.random.default_rng(0)
    sizes = [64, 32, 10] if quick else [784, 128, 64, 10]
    model = nn.MLP(sizes, rng=rng)
    x = Tensor(rng.standard_normal((batch, sizes[0])).astype(np.float32))
    y = rng.integers(0, 10, batch)
    return model, optim.SGD(model.parameters(), lr=0.01), x, y


def anomaly_cost(quick: bool, repeats: int) -> None:
    model, opt, x, y = _mlp(quick)
    steps = 5 if quick else 20

    def train(anomaly: bool) -> Callable[[], None]:
        def once() -> None:
            for _ in range(steps):
                if anomaly:
                    with detect_anomaly():
                        _step(model, opt, x, y)
                else:
                    _step(model, opt, x, y)
        return once

    times = interleave({"off": train(False), "on": train(True)}, repeats, time.process_time)
    print(f"\n## anomaly mode: {steps} training steps of an MLP, batch 64")
    print_table(["anomaly mode", "ms per step"],
                [[name, spread(_ms([v / steps for v in t]))] for name, t in times.items()])
    print_ratio("anomaly on / off", paired_ratios(times, "on", "off"))

    def values(anomaly: bool) -> Callable[[], None]:
        def once() -> None:
            if anomaly:
                with detect_anomaly():
                    value_graph(8 if quick else 24, 3).backward()
            else:
                value_graph(8 if quick else 24, 3).backward()
        return once

    times = interleave({"off": values(False), "on": values(True)}, repeats, time.process_time)
    print("\n## anomaly mode: build + backward of a graph of Values (every op checked)")
    print_table(["anomaly mode", "ms per graph"],
                [[name, spread(_ms(t))] for name, t in times.items()])
    print_ratio("anomaly on / off (Values)", paired_ratios(times, "on", "off"))
    print(f"MECHANISM off: Tensor._make is the plain function: "
          f"{Tensor._make.__name__ == '_make'} (no stack capture, no check)")


def _step(model: nn.Module, opt: optim.SGD, x: Tensor, y: np.ndarray) -> None:
    loss = cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def memory(quick: bool) -> None:
    batch = 64 if quick else 512
    model, _, x, y = _mlp(quick, batch)
    rows = []
    peaks = {}
    for keep in (True, False):
        model.zero_grad()
        loss = cross_entropy(model(x), y)
        tracemalloc.start()
        with retain_intermediate_grads(keep):
            loss.backward()
        kept_after = tracemalloc.get_traced_memory()[0]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        peaks[keep] = peak
        rows.append(["kept (default)" if keep else "freed (retain_intermediate_grads(False))",
                     f"{peak / 1e3:,.0f}", f"{kept_after / 1e3:,.0f}"])
        del loss
    print(f"\n## memory of one backward (MLP batch {batch}), traced by tracemalloc")
    print_table(["intermediate .grad", "peak kB", "held after backward kB"], rows)
    print(f"MEMORY freed / kept peak: {peaks[False] / peaks[True]:.2f}")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeats=15)
    runtime.set_blas_threads(1)
    print_header("diagnostics: hooks, anomaly mode, intermediate grads", args.quick)
    loop_overhead(args.quick, args.repeats)
    anomaly_cost(args.quick, args.repeats)
    memory(args.quick)


if __name__ == "__main__":
    main()
