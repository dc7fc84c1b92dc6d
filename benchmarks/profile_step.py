"""Where a training step's time goes: cProfile of MLP (or CNN) training steps, summarised.

Profiles ``--steps`` steps of ``build_model(MODEL)`` training (SGD+momentum for the MLP, Adam
for the CNN, batch 128) and prints the functions with the most own time, then the same time
grouped by where it is spent: the layer ops (whose own time is their numpy/BLAS calls), the
optimizer's array arithmetic, the graph engine's Python (registry, autograd, tensor), and
the rest.  Under cProfile every Python call costs extra, so the engine's share is an upper
bound.

    python benchmarks/profile_step.py               # 100 MLP steps
    python benchmarks/profile_step.py --model cnn   # 20 CNN steps
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
from collections import defaultdict

import numpy as np
from _common import mnist_or_synthetic, print_header, print_table

GROUPS = (  # (label, path fragment), first match wins
    ("layer ops: numpy/BLAS inside nn/", "tinygrad_edu/nn/"),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="a few steps only")
    args = parser.parse_args()
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
