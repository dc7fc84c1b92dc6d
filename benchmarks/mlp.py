"""MLP training epoch: tinygrad_edu against a hand-written numpy floor and PyTorch eager.

The net is 784→256→128→64→10 with ReLU, softmax cross-entropy, SGD with momentum 0.9,
batch 128, float32.  The floor is the same net and recipe written directly in numpy (forward,
backward and update by hand, in-place where numpy allows): the least Python any framework
could run.  All contenders see the same pre-shuffled batches; their epochs are interleaved.

    python benchmarks/mlp.py            # full 60k-image epochs, 5 rounds
    python benchmarks/mlp.py --quick    # a smoke run on 1,024 images
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

import numpy as np
from _common import (
    Summary,
    interleave,
    mnist_or_synthetic,
    optional_import,
    paired_ratios,
    parse_args,
    print_header,
    print_ratio,
    print_table,
    spread,
)

SIZES = (784, 256, 128, 64, 10)
LR, MOMENTUM, BATCH = 0.01, 0.9, 128


def _init_weights(seed: int) -> list[np.ndarray]:
    """He-initialised weights (in, out) and zero biases, float32, for the numpy floor."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in pairwise(SIZES):
        w = rng.standard_normal((fan_in, fan_out), dtype=np.float32)
        params += [w * np.float32(np.sqrt(2.0 / fan_in)), np.zeros(fan_out, np.float32)]
    return params


# ------------------------------------------------------------------ the numpy floor
class NumpyMLP:
    """The MLP trained by hand: forward, backward and SGD+momentum in plain numpy."""

    def __init__(self, seed: int) -> None:
        self.params = _init_weights(seed)
        self.velocity = [np.zeros_like(p) for p in self.params]
        self.lr, self.momentum = np.float32(LR), np.float32(MOMENTUM)

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Activations of every layer (the input first, the logits last)."""
        acts = [x]
        for i in range(0, len(self.params), 2):
            z = acts[-1] @ self.params[i]
            z += self.params[i + 1]
            if i + 2 < len(self.params):
                np.maximum(z, 0, out=z)
            acts.append(z)
        return acts

    def step(self, x: np.ndarray, y: np.ndarray) -> None:
        """One training step on a batch."""
        acts = self.forward(x)
        g = _softmax_ce_grad(acts[-1], y)
        for layer in range(len(self.params) // 2 - 1, -1, -1):
            w = self.params[2 * layer]
            grads = (acts[layer].T @ g, g.sum(axis=0))
            if layer > 0:
                g = g @ w.T
                g *= acts[layer] > 0
            for k, grad in zip((2 * layer, 2 * layer + 1), grads):
                v = self.velocity[k]
                v *= self.momentum
                v += grad
                self.params[k] -= self.lr * v


def _softmax_ce_grad(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d(mean cross-entropy)/d logits = (softmax − onehot) / N."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    z[np.arange(len(y)), y] -= 1
    z /= np.float32(len(y))
    return z


# ------------------------------------------------------------------ tinygrad_edu
def build_ours(seed: int) -> tuple[Callable[[np.ndarray, np.ndarray], None], str]:
    """A training step of our MLP (``build_model("mlp")`` + ``optim.SGD``) and its name."""
    from tinygrad_edu import Tensor, cross_entropy
    from tinygrad_edu.models import build_model

    model = build_model("mlp", rng=seed)
    try:
        from tinygrad_edu.optim import SGD
    except ImportError:  # the optimizers are not written yet: a stand-in with the same rule
        optimizer, name = _MomentumSGD(model.parameters()), "tinygrad_edu (in-script SGD)"
    else:
        optimizer, name = SGD(model.parameters(), lr=LR, momentum=MOMENTUM), "tinygrad_edu"

    def step(x: np.ndarray, y: np.ndarray) -> None:
        loss = cross_entropy(model(Tensor(x)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step, name


class _MomentumSGD:
    """``v ← μv + g; p ← p − lr·v`` in place (used only while tinygrad_edu.optim is missing)."""

    def __init__(self, params: list[Any]) -> None:
        self.params = params
        self.velocity = [np.zeros_like(p.data) for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        for p, v in zip(self.params, self.velocity):
            v *= np.float32(MOMENTUM)
            v += p.grad
            p.data -= np.float32(LR) * v


# ------------------------------------------------------------------ PyTorch
def build_torch(torch: Any, seed: int) -> Callable[[np.ndarray, np.ndarray], None]:
    """A PyTorch eager training step of the same net and recipe."""
    torch.manual_seed(seed)
    nn = torch.nn
    layers: list[Any] = []
    for fan_in, fan_out in pairwise(SIZES):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()

    def step(x: np.ndarray, y: np.ndarray) -> None:
        loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


# ------------------------------------------------------------------ the run
def epoch_of(step: Callable[[np.ndarray, np.ndarray], None], x: np.ndarray,
             y: np.ndarray) -> Callable[[], None]:
    """A function running one epoch of ``step`` over the (pre-shuffled) batches."""

    def epoch() -> None:
        for start in range(0, len(x), BATCH):
            step(x[start:start + BATCH], y[start:start + BATCH])

    return epoch


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeats=5)
    print_header("MLP 784-256-128-64-10, ReLU, CE, SGD+momentum, batch 128, float32", args.quick)
    n = 1024 if args.quick else 60000
    images, labels, source = mnist_or_synthetic(n)
    order = np.random.default_rng(0).permutation(len(images))
    x = np.ascontiguousarray(images.reshape(len(images), -1)[order])
    y = np.ascontiguousarray(labels[order])
    print(f"    data: {source}; {len(x)} images per epoch, {args.repeats} rounds, interleaved")

    floor = NumpyMLP(seed=0)
    contenders = {"numpy floor (hand-written)": epoch_of(floor.step, x, y)}
    ours, ours_name = build_ours(seed=0)
    contenders[ours_name] = epoch_of(ours, x, y)
    torch = optional_import("torch", "the PyTorch column is")
    if torch is not None:
        print(f"   torch: {torch.__version__}, {torch.get_num_threads()} threads")
        contenders[f"PyTorch {torch.__version__} eager"] = epoch_of(build_torch(torch, 0), x, y)
    for epoch in contenders.values():  # warm-up: first-touch allocations, BLAS threads
        epoch()

    times = interleave(contenders, args.repeats)
    floor_name = next(iter(contenders))
    rows = []
    for name, seconds in times.items():
        ratio = paired_ratios(times, name, floor_name)
        rows.append([name, spread(Summary.of(seconds)), spread(ratio, "{:.2f}")])
    print_table(["contender", "s / epoch: median [min – max]", "× floor: median [min – max]"],
                rows)
    print_ratio("ours / numpy floor (epoch time)", paired_ratios(times, ours_name, floor_name),
                "<= 1.10")
    for name in times:
        if name.startswith("PyTorch"):
            print_ratio("ours / PyTorch eager (epoch time)", paired_ratios(times, ours_name, name),
                        "< 1")


if __name__ == "__main__":
    main()
