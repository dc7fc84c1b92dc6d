"""When training goes wrong: a 20-layer sigmoid net that does not learn, diagnosed.

    python examples/when_training_goes_wrong.py [--steps 60] [--figure grad_flow.png]

The loss of a net of 20 hidden sigmoid layers stays at ln 10 ≈ 2.30: it does not learn.
The gradient norm per layer (``nn.utils.grad_norms``) shows why: it shrinks about 4× per
layer towards the input (the sigmoid's slope is at most 1/4), so the first layer gets
~1e-12 of what the last one gets and does not move.  The same net with ReLU (and the He
initialisation ``nn.MLP`` picks for it) passes gradients of one size through all 20 layers
and learns.  ``viz.plot_grad_flow`` draws both.  (For a learning rate far too high, see
``tinygrad-edu train --lr 5 --log-grad-norms --detect-anomaly``.)
"""

from __future__ import annotations

import argparse

import numpy as np

from tinygrad_edu import Tensor, nn, optim, viz
from tinygrad_edu.datasets import batches, load_mnist
from tinygrad_edu.nn import functional as F


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, lr: float, steps: int) -> float:
    """``steps`` SGD steps (momentum 0.9, batches of 128); the mean loss of the last 10."""
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses: list[float] = []
    epoch = 0
    while len(losses) < steps:
        epoch += 1
        for xb, yb in batches(x, y, batch_size=128, seed=epoch):
            loss = F.cross_entropy(model(Tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return float(np.mean(losses[-10:]))


def deep_sigmoid(x: np.ndarray, y: np.ndarray, steps: int, figure: str | None) -> None:
    runs = {}
    for activation in ("sigmoid", "relu"):
        model = nn.MLP([784] + [64] * 20 + [10], activation=activation, rng=0)
        loss = train(model, x, y, lr=0.02, steps=steps)
        norms = nn.utils.grad_norms(model)  # the gradients of the last step
        first, last = norms.per_layer["layers.0"], norms.per_layer["layers.40"]
        print(f"20 × {activation:7s}: loss {loss:.3f} after {steps} steps; gradient norm "
              f"of layer 1 {first:.2g}, of layer 21 {last:.2g} (ratio {first / last:.1e})")
        runs[f"20 × {activation}"] = norms
    if figure:
        viz.plot_grad_flow(runs, figure, title="gradient norm per layer, 20 hidden layers")
        print(f"figure written to {figure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="MNIST directory (default: find/fetch)")
    parser.add_argument("--limit", type=int, default=3000, help="use the first N images")
    parser.add_argument("--steps", type=int, default=60, help="SGD steps per net")
    parser.add_argument("--figure", default=None, help="write the gradient-flow figure here")
    args = parser.parse_args()
    x, y, _, _ = load_mnist(args.data)
    x, y = x[: args.limit].reshape(-1, 784), y[: args.limit]
    deep_sigmoid(x, y, args.steps, args.figure)


if __name__ == "__main__":
    main()
