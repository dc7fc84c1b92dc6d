"""MLP training epoch: tinygrad_edu against a hand-written numpy floor and PyTorch eager.

The net is 784→256→128→64→10 with ReLU, softmax cross-entropy, SGD with momentum 0.9
(lr 0.05), batch 128, float32.  Ours is the loop of the README's notebook section, word for
word (``nn.MLP``, ``optim.SGD``, ``datasets.batches`` shuffling each epoch,
``F.cross_entropy``), with no process-wide setting.  The floor is the same net and recipe
written directly in numpy (its own shuffle, forward, backward and update by hand, in-place
where numpy allows): the least Python any framework could run.  Every contender sees the
same batches (the same permutation per epoch); their epochs are interleaved.

    python benchmarks/mlp.py            # full 60k-image epochs, 5 rounds
    python benchmarks/mlp.py --images 6400 --repeats 30   # 30 rounds of 50-step epochs
    python benchmarks/mlp.py --quick    # a smoke run on 1,024 images

On a shared machine a full epoch (~1 s) is often hit whole by a neighbour's burst: five
rounds gave medians from 1.08 to 1.56 for the same code in one afternoon (docs/
performance.md).  Many short epochs (``--images``: the first N training images, still
shuffled each epoch by ``batches``) give the median more rounds to stand on.
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
    torch_facts,
)

SIZES = (784, 256, 128, 64, 10)
LR, MOMENTUM, BATCH = 0.05, 0.9, 128


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
def readme_loop() -> Callable[[np.ndarray, np.ndarray, int], None]:
    """The README's notebook loop (an epoch of it per call; ``seed`` = the epoch)."""
    from tinygrad_edu import Tensor, nn, optim
    from tinygrad_edu.datasets import batches
    from tinygrad_edu.nn import functional as F

    model = nn.MLP([784, 256, 128, 64, 10], activation="relu", rng=0)
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def epoch(x_train: np.ndarray, y_train: np.ndarray, seed: int) -> None:
        for x, y in batches(x_train, y_train, batch_size=BATCH, seed=seed):
            loss = F.cross_entropy(model(Tensor(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

    return epoch


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
    """A function running one epoch of ``step``, a new permutation each call (the one
    ``datasets.batches`` draws for that epoch's seed)."""
    count = [0]

    def epoch() -> None:
        count[0] += 1
        order = np.random.default_rng(count[0]).permutation(len(x))
        for start in range(0, len(x), BATCH):
            index = order[start:start + BATCH]
            step(x[index], y[index])

    return epoch


def epochs_of(run: Callable[[np.ndarray, np.ndarray, int], None], x: np.ndarray,
              y: np.ndarray) -> Callable[[], None]:
    """``run(x, y, seed)`` with the epoch count as its seed."""
    count = [0]

    def epoch() -> None:
        count[0] += 1
        run(x, y, count[0])

    return epoch


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeats=5, extra=lambda parser: parser.add_argument(
        "--images", type=int, default=60000, help="images per epoch (default 60000)"))
    print_header("MLP 784-256-128-64-10, ReLU, CE, SGD+momentum, batch 128, float32", args.quick)
    n = 1024 if args.quick else args.images
    images, labels, source = mnist_or_synthetic(n)
    x = np.ascontiguousarray(images.reshape(len(images), -1))
    y = np.ascontiguousarray(labels)
    print(f"    data: {source}; {len(x)} images per epoch (shuffled each epoch), "
          f"{args.repeats} rounds, interleaved")

    floor = NumpyMLP(seed=0)
    contenders = {"numpy floor (hand-written)": epoch_of(floor.step, x, y)}
    ours_name = "tinygrad_edu (README notebook loop)"
    contenders[ours_name] = epochs_of(readme_loop(), x, y)
    torch = optional_import("torch", "the PyTorch column is")
    if torch is not None:
        print(f"   torch: {torch_facts(torch)}")
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
                "<= 1.05")
    for name in times:
        if name.startswith("PyTorch"):
            print_ratio("ours / PyTorch eager (epoch time)", paired_ratios(times, ours_name, name),
                        "< 1")


if __name__ == "__main__":
    main()
