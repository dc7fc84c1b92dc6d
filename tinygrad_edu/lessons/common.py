"""What every lesson shares: the result type, tables, figures, MNIST subsets, a small
training loop.

A lesson is a function ``run(fast=False, out="lessons-out", data=None, seed=0)`` that runs
one experiment and returns a :class:`LessonResult`: the table it prints, the PNG figures
it wrote into ``out``, and the ``numbers`` its claim rests on (the test suite asserts the
claim on these numbers, so a lesson cannot silently stop showing what it says).

Figures are drawn with matplotlib's object-oriented API on a bare :class:`Figure` (the Agg
canvas; no ``pyplot`` state, no window) and written atomically.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from ..datasets import batches, load_mnist
from ..fileio import atomic_write_bytes
from ..nn import functional as F
from ..tensor import Tensor
from ..train import evaluate

__all__ = [
    "LessonResult",
    "MnistSubset",
    "figure",
    "format_table",
    "mnist_subset",
    "save_figure",
    "train_epochs",
]


@dataclass
class LessonResult:
    """What a lesson produced: ``table`` (the text it prints), ``figures`` (PNG paths) and
    ``numbers`` (name -> value: everything the lesson's claim is checked on)."""

    name: str
    claim: str
    table: str
    figures: list[Path] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        figs = "\n".join(f"figure: {p}" for p in self.figures)
        return f"{self.name}: {self.claim}\n\n{self.table}\n\n{figs}".rstrip()


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table; floats are shown with 4 significant digits."""
    def cell(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return f"{float(v):.4g}"
        return str(v)

    cells = [[str(h) for h in headers]] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def figure(width: float = 8.0, height: float = 5.0) -> Any:
    """A new matplotlib Figure on the Agg canvas (no pyplot, so no global state)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def save_figure(fig: Any, out: str | os.PathLike[str], name: str) -> Path:
    """Write ``fig`` as ``out/name`` (PNG) atomically, creating ``out``; return the path."""
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    path = directory / name
    atomic_write_bytes(path, buffer.getvalue())
    return path


@dataclass
class MnistSubset:
    """Flattened MNIST images (float32, standardised) and labels for a lesson."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def mnist_subset(n_train: int | None, n_test: int | None, data: Any = None,
                 seed: int = 0) -> MnistSubset:
    """MNIST through :func:`tinygrad_edu.datasets.load_mnist` (``data`` is its path, or a
    tuple of the four arrays already loaded), flattened to (n, 784) and standardised;
    ``n_train``/``n_test`` first examples of a seeded permutation (None: all)."""
    if isinstance(data, tuple):
        x_train, y_train, x_test, y_test = data
    else:
        x_train, y_train, x_test, y_test = load_mnist(data, normalize=True)
    rng = np.random.default_rng(seed)

    def pick(x: np.ndarray, y: np.ndarray, n: int | None) -> tuple[np.ndarray, np.ndarray]:
        idx = rng.permutation(len(x))[:n] if n is not None else np.arange(len(x))
        return np.ascontiguousarray(x[idx].reshape(len(idx), 784), dtype=np.float32), y[idx]

    xtr, ytr = pick(x_train, y_train, n_train)
    xte, yte = pick(x_test, y_test, n_test)
    return MnistSubset(xtr, ytr, xte, yte)


def train_epochs(model: nn.Module, optimizer: Any, data: MnistSubset, epochs: int,
                 batch_size: int = 128, seed: int = 0,
                 penalty: Callable[[], Tensor] | None = None,
                 after_step: Callable[[int], None] | None = None) -> list[float]:
    """Train with cross-entropy (plus ``penalty()`` if given) for ``epochs``; return the
    test accuracy after each epoch.  ``after_step(step)`` runs after every optimizer step
    (step counted from 1 over the whole run)."""
    accuracies, step = [], 0
    for epoch in range(epochs):
        model.train()
        for xb, yb in batches(data.x_train, data.y_train, batch_size, seed=seed * 1000 + epoch):
            loss = F.cross_entropy(model(Tensor(xb)), yb)
            if penalty is not None:
                loss = loss + penalty()
            if not np.isfinite(float(loss.data)):
                raise FloatingPointError(f"loss became {float(loss.data)} at step {step + 1}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if after_step is not None:
                after_step(step)
        accuracies.append(evaluate(model, data.x_test, data.y_test))
    return accuracies
