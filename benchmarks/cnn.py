"""CNN training throughput (images/s): tinygrad_edu against a numpy floor and PyTorch.

The library as a notebook user runs it: ``build_model("cnn")`` with its default config,
``optim.Adam``, no process-wide setting (no malloc tuning; BLAS and PyTorch at their
default threads).  PyTorch builds the same config.  The base CNN: conv5x5(1→16, pad 2) →
ReLU → maxpool2 → conv5x5(16→32, pad 2) → ReLU → maxpool2 → linear(1568→10), softmax
cross-entropy, Adam (lr 1e-3), batch 128, float32.  ``build_model`` pools before each ReLU
(``models.POOL_FIRST``: the same function, on a quarter of the numbers); PyTorch and the floor
apply the ReLU first, as the textbook writes it.
The floor is the same net written directly in numpy, laid out for speed: channels-last
(NHWC) activations, im2col by a strided view plus one copy, one GEMM per convolution,
pooling as the maximum of the four strided corners of each 2×2 window, col2im as kh·kw
GEMMs each giving a contiguous block added onto a shifted window, in-place Adam.
Contenders run the same batches, interleaved, for a fixed number of steps per round, each
round after a 0.2 s pause (``_common.SETTLE_SECONDS``: no contender inherits another's
spinning BLAS threads).  Where the BLAS has several
threads, the library runs a second time with it held at one thread, as ``tinygrad-edu train``
runs it: the conv and pooling ops then split their batch over the cores themselves
(``tinygrad_edu.parallel``).

    python benchmarks/cnn.py            # 5 rounds of 40 steps (5,120 images) each
    python benchmarks/cnn.py --quick    # a smoke run: 2 steps
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

import numpy as np
from _common import (
    SETTLE_SECONDS,
    Summary,
    interleave,
    mnist_or_synthetic,
    optional_import,
    parse_args,
    print_header,
    print_ratio,
    print_table,
    spread,
    torch_facts,
)
from numpy.lib.stride_tricks import as_strided

BATCH, LR, K = 128, 1e-3, 5
Step = Callable[[np.ndarray, np.ndarray], None]
#: The architecture the hand-written floor implements (``build_model("cnn", **FLOOR_CONFIG)``).
FLOOR_CONFIG = {"channels": [16, 32], "kernel_size": K, "activation": "relu",
                "batch_norm": False, "hidden": 0, "dropout": 0.0}


# ------------------------------------------------------------------ the numpy floor
def _patches(xp: np.ndarray, k: int) -> np.ndarray:
    """The (N, H, W, k, k, C) view of every k×k window of a padded NHWC array (no copy)."""
    n, hp, wp, c = xp.shape
    s_n, s_h, s_w, s_c = xp.strides
    return as_strided(xp, (n, hp - k + 1, wp - k + 1, k, k, c), (s_n, s_h, s_w, s_h, s_w, s_c),
                      writeable=False)


def _pad(x: np.ndarray, p: int) -> np.ndarray:
    """Zero-pad the two spatial axes of an NHWC array by ``p``."""
    n, h, w, c = x.shape
    xp = np.zeros((n, h + 2 * p, w + 2 * p, c), dtype=x.dtype)
    xp[:, p:p + h, p:p + w] = x
    return xp


class ConvReluPool:
    """conv k×k ('same' padding) → ReLU → maxpool 2 on NHWC arrays, forward and backward."""

    def __init__(self, cin: int, cout: int, rng: np.random.Generator) -> None:
        scale = np.float32(np.sqrt(2.0 / (K * K * cin)))
        self.w = rng.standard_normal((K * K * cin, cout), dtype=np.float32) * scale
        self.b = np.zeros(cout, np.float32)

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, h, w, c = x.shape
        self.in_shape = x.shape
        self.cols = _patches(_pad(x, K // 2), K).reshape(n * h * w, K * K * c)
        z = self.cols @ self.w
        z += self.b
        np.maximum(z, 0, out=z)
        self.z6 = z.reshape(n, h // 2, 2, w // 2, 2, -1)
        corners = [self.z6[:, :, i, :, j] for i in (0, 1) for j in (0, 1)]
        y = np.maximum(corners[0], corners[1])
        np.maximum(y, corners[2], out=y)
        np.maximum(y, corners[3], out=y)
        self.y = y
        return y

    def backward(self, g: np.ndarray, need_input_grad: bool) -> np.ndarray | None:
        n, h, w, c = self.in_shape
        g = g * (self.y > 0)  # ReLU: no gradient where the whole window was clipped to 0
        gz6 = np.empty_like(self.z6)
        for i in (0, 1):
            for j in (0, 1):
                np.multiply(g, self.z6[:, :, i, :, j] == self.y, out=gz6[:, :, i, :, j])
        gz = gz6.reshape(n * h * w, -1)
        self.gw = self.cols.T @ gz
        self.gb = gz.sum(axis=0)
        if not need_input_grad:
            return None
        blocks = self.w.reshape(K, K, c, -1)
        gxp = np.zeros((n, h + K - 1, w + K - 1, c), np.float32)
        for u in range(K):
            for v in range(K):  # each kernel offset's patch gradient is a contiguous block
                gxp[:, u:u + h, v:v + w] += (gz @ blocks[u, v].T).reshape(n, h, w, c)
        p = K // 2
        return gxp[:, p:p + h, p:p + w]


class Adam:
    """In-place Adam with bias correction over a list of arrays."""

    def __init__(self, params: list[np.ndarray]) -> None:
        self.params, self.t = params, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        b1, b2 = 0.9, 0.999
        step = np.float32(LR / (1 - b1**self.t))
        root = np.float32(1 / np.sqrt(1 - b2**self.t))
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= np.float32(b1)
            m += np.float32(1 - b1) * g
            v *= np.float32(b2)
            v += np.float32(1 - b2) * (g * g)
            denom = np.sqrt(v)
            denom *= root
            denom += np.float32(1e-8)
            np.divide(m, denom, out=denom)
            denom *= step
            p -= denom


class NumpyCNN:
    """The default CNN trained by hand in numpy (channels-last throughout)."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.blocks = [ConvReluPool(1, 16, rng), ConvReluPool(16, 32, rng)]
        self.w = rng.standard_normal((1568, 10), dtype=np.float32) * np.float32(1 / 1568**0.5)
        self.b = np.zeros(10, np.float32)
        params = [p for blk in self.blocks for p in (blk.w, blk.b)] + [self.w, self.b]
        self.adam = Adam(params)

    def step(self, x: np.ndarray, y: np.ndarray) -> None:
        h = x.reshape(len(x), 28, 28, 1)
        for block in self.blocks:
            h = block.forward(h)
        flat = h.reshape(len(x), -1)
        logits = flat @ self.w
        logits += self.b
        g = _softmax_ce_grad(logits, y)
        grads_out = [flat.T @ g, g.sum(axis=0)]
        g = (g @ self.w.T).reshape(h.shape)
        for i in (1, 0):
            g = self.blocks[i].backward(g, need_input_grad=i > 0)
        grads = [a for blk in self.blocks for a in (blk.gw, blk.gb)] + grads_out
        self.adam.step(grads)


def _softmax_ce_grad(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d(mean cross-entropy)/d logits = (softmax − onehot) / N."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    z[np.arange(len(y)), y] -= 1
    z /= np.float32(len(y))
    return z


# ------------------------------------------------------------------ tinygrad_edu
def build_ours(seed: int) -> Step:
    """A training step of ``build_model("cnn")`` with ``optim.Adam``."""
    from tinygrad_edu import Tensor, cross_entropy
    from tinygrad_edu.models import build_model
    from tinygrad_edu.optim import Adam as OurAdam

    model = build_model("cnn", rng=seed)
    optimizer = OurAdam(model.parameters(), lr=LR)

    def step(x: np.ndarray, y: np.ndarray) -> None:
        loss = cross_entropy(model(Tensor(x.reshape(len(x), 1, 28, 28))), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


# ------------------------------------------------------------------ PyTorch
def build_torch(torch: Any, seed: int, config: dict[str, Any] | None = None) -> Step:
    """A PyTorch eager training step of the same CNN (``build_model("cnn")``'s config:
    channels, kernel, batch norm, hidden layer, dropout; ReLU) and recipe."""
    torch.manual_seed(seed)
    nn = torch.nn
    config = config if config is not None else FLOOR_CONFIG
    k, bn = int(config["kernel_size"]), bool(config["batch_norm"])
    layers: list[Any] = []
    channels = [1, *(int(c) for c in config["channels"])]
    for cin, cout in pairwise(channels):
        layers.append(nn.Conv2d(cin, cout, k, padding=k // 2, bias=not bn))
        layers += [nn.BatchNorm2d(cout)] if bn else []
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
    features = channels[-1] * (28 // 2 ** (len(channels) - 1)) ** 2
    layers.append(nn.Flatten())
    if int(config["hidden"]):
        layers += [nn.Linear(features, int(config["hidden"])), nn.ReLU()]
        features = int(config["hidden"])
    if float(config["dropout"]):
        layers.append(nn.Dropout(float(config["dropout"])))
    model = nn.Sequential(*layers, nn.Linear(features, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()

    def step(x: np.ndarray, y: np.ndarray) -> None:
        logits = model(torch.from_numpy(x.reshape(len(x), 1, 28, 28)))
        loss = loss_fn(logits, torch.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


# ------------------------------------------------------------------ the run
#: The library with the BLAS at one thread, as ``tinygrad-edu train`` runs it (``--threads 1``):
#: its conv and pooling ops then split the batch over the cores themselves.
ONE_THREAD = "tinygrad_edu, BLAS at 1 thread (as train runs)"


def one_blas_thread() -> Callable[[Callable[[], None]], Callable[[], None]] | None:
    """A wrapper running a function with the BLAS held at one thread (threadpoolctl), or
    None when no BLAS threadpoolctl can set is loaded or it already has one thread."""
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController().select(user_api="blas")
    if max((lib["num_threads"] for lib in blas.info()), default=1) == 1:
        return None

    def wrap(run: Callable[[], None]) -> Callable[[], None]:
        def single() -> None:
            with blas.limit(limits=1):
                run()
        return single

    return wrap


def run_of(step: Step, x: np.ndarray, y: np.ndarray, steps: int) -> Callable[[], None]:
    """A function running ``steps`` training steps over consecutive batches."""

    def run() -> None:
        for i in range(steps):
            start = (i * BATCH) % (len(x) - BATCH + 1)
            step(x[start:start + BATCH], y[start:start + BATCH])

    return run


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeats=5)
    print_header("CNN conv5-relu-pool-conv5-relu-pool-linear, Adam, batch 128", args.quick)
    steps = 2 if args.quick else 40
    images, labels, source = mnist_or_synthetic(BATCH * steps)
    x, y = np.ascontiguousarray(images), np.ascontiguousarray(labels)
    print(f"    data: {source}; {steps} steps of {BATCH} per round, {args.repeats} rounds, "
          "interleaved")

    from tinygrad_edu.models import default_config

    config = default_config("cnn")
    print(f"   model: build_model('cnn'), config {config}")
    if config != FLOOR_CONFIG:
        print(f"   floor: hand-written for {FLOOR_CONFIG} only (the default differs, so the "
              "floor ratio compares different nets); PyTorch builds the default")
    contenders = {"numpy floor (hand-written, NHWC)": NumpyCNN(0).step}
    contenders["tinygrad_edu"] = build_ours(0)
    single = one_blas_thread()
    if single is not None:
        contenders[ONE_THREAD] = build_ours(0)
    torch = optional_import("torch", "the PyTorch column is")
    if torch is not None:
        if config["activation"] != "relu":
            print(f"   torch: activation {config['activation']!r} is built as ReLU")
        print(f"   torch: {torch_facts(torch)}")
        contenders[f"PyTorch {torch.__version__} eager"] = build_torch(torch, 0, config)
    runs = {name: run_of(step, x, y, steps) for name, step in contenders.items()}
    if single is not None:
        runs[ONE_THREAD] = single(runs[ONE_THREAD])
        print(f"   split: {ONE_THREAD!r} runs with the BLAS held at one thread, so the conv "
              "and pooling ops split their batch over the cores themselves "
              "(tinygrad_edu.parallel)")
    for name, step in contenders.items():  # warm-up
        warm = run_of(step, x, y, 1)
        (single(warm) if name == ONE_THREAD and single is not None else warm)()

    times = interleave(runs, args.repeats, settle=SETTLE_SECONDS)
    report(times, BATCH * steps)


def report(times: dict[str, list[float]], images: int) -> None:
    """The throughput table and the ratios against the floor and PyTorch."""
    floor = next(iter(times))
    rows = []
    for name, seconds in times.items():
        rate = Summary.of([images / s for s in seconds])
        speed = Summary.of([f / s for s, f in zip(seconds, times[floor])])
        rows.append([name, spread(rate, "{:,.0f}"), spread(speed, "{:.2f}")])
    print_table(["contender", "images/s: median [min – max]", "speed × floor"], rows)
    ours = "tinygrad_edu"
    if ours not in times:
        return
    rate = Summary.of([images / s for s in times[ours]])
    print(f"RATE ours: {rate.median:,.0f} images/s")
    print_ratio("ours / numpy floor (throughput)", _speed(times, ours, floor))
    for name in times:
        if name.startswith("PyTorch"):
            print_ratio("ours / PyTorch (throughput)", _speed(times, ours, name), ">= 0.67")
            if ONE_THREAD in times:
                print_ratio("ours with one BLAS thread / PyTorch (throughput)",
                            _speed(times, ONE_THREAD, name))
    if ONE_THREAD in times:
        print_ratio("ours with one BLAS thread / ours (throughput)",
                    _speed(times, ONE_THREAD, ours))


def _speed(times: dict[str, list[float]], name: str, reference: str) -> Summary:
    """Throughput of ``name`` relative to ``reference``, per round."""
    return Summary.of([r / s for s, r in zip(times[name], times[reference])])


if __name__ == "__main__":
    main()
