"""Where a training step's time goes: cProfile of MLP (or CNN) training steps, summarised.

Profiles ``--steps`` steps of ``build_model(MODEL)`` training (SGD+momentum for the MLP, Adam
for the CNN, batch 128) and prints the functions with the most own time, then the same time
grouped by where it is spent: the layer ops (whose own time is their numpy/BLAS calls), the
optimizer's array arithmetic, the graph engine's Python (registry, autograd, tensor), and
the rest.  Under cProfile every Python call costs extra, so the engine's share is an upper
bound.

    python benchmarks/profile_step.py               # 100 MLP steps
    python benchmarks/profile_step.py --model cnn   # 20 CNN steps
    python benchmarks/profile_step.py --gemm        # the physical bound: GEMM FLOP/s, and
                                                    # what a training step achieves
    python benchmarks/profile_step.py --model cnn --ops   # wall time per op, threads included

cProfile sees only the calling thread, and the conv and pooling ops run their parts in
worker threads too (``tinygrad_edu.parallel``); ``--ops`` times each tensor op's forward and
backward by the wall clock instead (its nested helpers are not split out).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import pstats
from collections import defaultdict

import numpy as np
from _common import mnist_or_synthetic, print_header, print_table

GROUPS = (  # (label, path fragment), first match wins
    ("layer ops: numpy/BLAS inside nn/", "tinygrad_edu/nn/"),
    ("layer ops: numpy/BLAS inside nn/", "tinygrad_edu/parallel.py"),  # their products
    ("loss (fused cross-entropy)", "tinygrad_edu/losses.py"),
    ("optimizer array updates", "tinygrad_edu/optim.py"),
    ("graph engine (autograd, registry, tensor, activations): Python + small numpy calls",
     "tinygrad_edu/"),
    ("numpy methods called directly (reductions, astype...)", "~"),
)


def step_function(model_name: str, batch: int) -> tuple:
    """(train step on one batch, input batch, labels) for ``model_name``."""
    from tinygrad_edu import Tensor, cross_entropy
    from tinygrad_edu.models import build_model
    from tinygrad_edu.optim import SGD, Adam

    model = build_model(model_name, rng=0)
    params = model.parameters()
    optimizer = Adam(params, lr=1e-3) if model_name == "cnn" else SGD(params, 0.01, 0.9)
    images, labels, _ = mnist_or_synthetic(batch)
    shape = (batch, 1, 28, 28) if model_name == "cnn" else (batch, 784)
    x = np.ascontiguousarray(images.reshape(shape))

    def step() -> None:
        loss = cross_entropy(model(Tensor(x)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step, x, labels


def group_of(filename: str) -> str:
    for label, fragment in GROUPS:
        if fragment in filename:
            return label
    return "other (benchmark loop, numpy's Python wrappers)"


def step_gemm_flops(model_name: str, batch: int) -> float:
    """The floating-point operations of one training step's matrix products: 2·M·K·N for
    each forward product (Linear: M = rows; Conv2d: M = N·H'·W', K = kh·kw·C), as much again
    for ∂W, and again for ∂x except in the first layer (the images need no gradient)."""
    from tinygrad_edu import Tensor, nn, no_grad
    from tinygrad_edu.models import build_model, input_shape

    model = build_model(model_name, rng=0)
    h = Tensor(np.zeros((batch, *input_shape(model_name)), np.float32))
    layers = model.layers if model_name == "mlp" else model
    total, first = 0.0, True
    with no_grad():
        for layer in layers:
            out = layer(h)
            if isinstance(layer, nn.Linear):
                forward = 2.0 * h.data.size * layer.out_features
            elif isinstance(layer, nn.Conv2d):
                kh, kw = layer.kernel_size
                forward = 2.0 * out.data.size * kh * kw * layer.in_channels
            else:
                forward = 0.0
            if forward:
                total += forward * (2.0 if first else 3.0)
                first = False
            h = out
    return total


def gemm_bound(args: argparse.Namespace) -> None:
    """GEMM FLOP/s of this machine's BLAS (square n×n, float32/float64, 1 and 2 threads) and
    the FLOP/s a training step of each model reaches at the library's default threads."""
    import time

    from threadpoolctl import threadpool_info, threadpool_limits

    print_header("The physical bound: GEMM FLOP/s and what a training step achieves",
                 args.quick)
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            # (the header's blas line names the library and its kernel)
            print(f"BLAS threads by default: {lib.get('num_threads')}")
    n = 256 if args.quick else 1024
    rows = []
    for dtype in (np.float32, np.float64):
        a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
        for threads in (1, 2):
            with threadpool_limits(limits=threads, user_api="blas"):
                product = functools.partial(np.matmul, a, a)
                product()
                best = min(_seconds(product, time.perf_counter) for _ in range(5))
            rows.append([f"{n}×{n} GEMM", np.dtype(dtype).name, threads,
                         f"{2 * n**3 / best / 1e9:.1f}"])
    steps = 3 if args.quick else 30
    for name in ("mlp", "cnn"):
        step, _, _ = step_function(name, 128)
        flops = step_gemm_flops(name, 128)
        for threads in (None, 1):  # the library's default, then one BLAS thread
            with threadpool_limits(limits=threads, user_api="blas"):
                step()
                count = max(1, steps // (10 if name == "cnn" else 1))
                seconds = sorted(_seconds(step, time.perf_counter) for _ in range(count))
            median = seconds[len(seconds) // 2]
            what = (f"{name.upper()} training step ({flops / 1e6:,.0f} MFLOP of GEMMs, "
                    f"{median * 1e3:.1f} ms)")
            rows.append([what, "float32", threads or "default", f"{flops / median / 1e9:.1f}"])
    print_table(["what", "dtype", "BLAS threads", "GFLOP/s"], rows)
    print("BOUND: a step's GFLOP/s counts only its matrix products, over its whole time")


def op_times(args: argparse.Namespace) -> None:
    """Wall ms per step in each registry tensor op's forward and backward (the conv and
    pooling ops' worker threads included), and what is left: the elementwise ops, the
    optimizer and the engine."""
    import time

    from tinygrad_edu.registry import REGISTRY

    steps = args.steps or (3 if args.quick else 40)
    print_header(f"Wall time per op over {steps} {args.model.upper()} training steps, batch 128",
                 args.quick)
    spent: dict[str, float] = defaultdict(float)

    def timed(fn, label: str):
        def run(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[label] += time.perf_counter() - start
        return run

    originals = []
    for op in REGISTRY.values():
        if op.kind == "tensor":
            originals.append((op, op.forward, op._backward))
            op.forward = timed(op.forward, f"{op.name} forward")
            op._backward = timed(op._backward, f"{op.name} backward")
    try:
        step, _, _ = step_function(args.model, 128)
        step()  # warm-up
        spent.clear()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        total = time.perf_counter() - start
    finally:
        for op, forward, backward in originals:
            op.forward, op._backward = forward, backward
    rows = [[label, f"{sec / steps * 1e3:.2f}", f"{sec / total:.1%}"]
            for label, sec in sorted(spent.items(), key=lambda kv: -kv[1]) if sec > 0]
    rest = total - sum(spent.values())
    rows.append(["the rest: elementwise ops, optimizer, engine", f"{rest / steps * 1e3:.2f}",
                 f"{rest / total:.1%}"])
    print_table(["op", "ms/step", "share"], rows)
    print(f"OPS total {total / steps * 1e3:.2f} ms/step (wall)")


def _seconds(fn, clock) -> float:
    start = clock()
    fn()
    return clock() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="a few steps only")
    parser.add_argument("--gemm", action="store_true",
                        help="GEMM FLOP/s of the machine and of a training step instead")
    parser.add_argument("--ops", action="store_true",
                        help="wall time per op (threads included) instead of cProfile")
    args = parser.parse_args()
    if args.gemm:
        gemm_bound(args)
        return
    if args.ops:
        op_times(args)
        return
    steps = args.steps or (3 if args.quick else (20 if args.model == "cnn" else 100))
    print_header(f"Profile of {steps} {args.model.upper()} training steps, batch 128", args.quick)
    step, _, _ = step_function(args.model, 128)
    step()  # warm-up
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    stats = pstats.Stats(profiler)
    report(stats, steps)


def report(stats: pstats.Stats, steps: int) -> None:
    """Top functions by own time, then own time per group, per step."""
    rows = []
    groups: dict[str, float] = defaultdict(float)
    total = 0.0
    for (filename, line, name), (_, calls, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        total += own
        groups[group_of(filename)] += own
        rows.append((own, calls, f"{_short(filename)}:{line}({name})"))
    rows.sort(reverse=True)
    print("\n## functions with the most own time")
    print_table(["own ms/step", "calls/step", "function"],
                [[f"{own / steps * 1e3:.3f}", f"{calls / steps:g}", where]
                 for own, calls, where in rows[:12]])
    print("\n## own time by group")
    print_table(["group", "ms/step", "share"],
                [[label, f"{sec / steps * 1e3:.3f}", f"{sec / total:.1%}"]
                 for label, sec in sorted(groups.items(), key=lambda kv: -kv[1])])
    print(f"PROFILE total {total / steps * 1e3:.3f} ms/step under cProfile")


def _short(filename: str) -> str:
    marker = "tinygrad_edu/"
    return filename[filename.index(marker):] if marker in filename else filename.split("/")[-1]


if __name__ == "__main__":
    main()
