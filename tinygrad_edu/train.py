"""Training on MNIST: the library loop (:func:`fit`, :func:`train_epoch`, :func:`evaluate`).

One training step is the loop every learner writes::

    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

:func:`fit` adds what a real run needs around it: seeded shuffling, a tqdm progress bar
(loss, running accuracy, images/s), a test-set evaluation after every epoch, a stop with a
clear message as soon as the loss is NaN or infinite (before the bad step touches the
weights), and a callback per epoch (the ``tinygrad-edu train`` command, in
:mod:`tinygrad_edu.cli.train`, saves a checkpoint there).  Only Python floats are kept
between steps, so memory stays flat: each step's graph is freed when the next step
replaces ``loss``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from . import nn, optim
from .autograd import no_grad
from .datasets import batches
from .nn import functional as F
from .runtime import blas_threads, set_blas_threads  # moved to runtime; old imports work
from .tensor import Tensor

__all__ = [
    "ACTIVATION_LR",
    "DEFAULTS",
    "MODEL_OPTIONS",
    "OPTIMIZER_DEFAULTS",
    "EpochResult",
    "TrainingDiverged",
    "blas_threads",
    "defaults_for",
    "evaluate",
    "fit",
    "format_epoch",
    "make_optimizer",
    "make_scheduler",
    "set_blas_threads",
    "train_epoch",
    "train_step",
]

#: Per-model defaults of ``tinygrad-edu train`` (measured on a 2-core machine).  ``schedule``:
#: ``"cosine"`` (:class:`~tinygrad_edu.optim.CosineAnnealingLR` over the epochs) or
#: ``"onecycle"`` (:class:`~tinygrad_edu.optim.OneCycleLR` over the batches, peak = lr);
#: ``normalize``: the images standardised with MNIST's mean and std (recorded in the
#: checkpoint, so ``eval`` prepares the test images the same way).
DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"epochs": 15, "batch_size": 128, "optimizer": "sgd", "lr": 0.05,
            "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine", "normalize": True},
    "cnn": {"epochs": 7, "batch_size": 128, "optimizer": "sgd", "lr": 0.2,
            "momentum": 0.9, "weight_decay": 5e-4, "schedule": "onecycle", "normalize": True},
}
#: The architecture options ``tinygrad-edu train`` builds each model with (on top of
#: :func:`tinygrad_edu.models.default_config`).  CNN, 5 epochs of one-cycle, batch 64, seed 0:
#: batch norm alone 99.20% (Adam 3e-3); + dropout 0.3 99.35% (SGD 0.1); + hidden 128 99.43%.
#: The default run, 7 epochs of batch 128 at SGD 0.2: 99.48, 99.34, 99.39% (seeds 0, 1, 2).
MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "mlp": {}, "cnn": {"batch_norm": True, "hidden": 128, "dropout": 0.3}}
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "onecycle")
#: Each optimizer's own defaults per model (``--lr``, ``--weight-decay`` override them); the
#: rate is the start of the model's cosine or the peak of its one-cycle.  Adam's steps are
#: normalised, so SGD's 0.05 is 25× too large for them (MLP, 2 epochs: 77% with 0.05; 97.2%
#: with 2e-3, on raw pixels).
OPTIMIZER_DEFAULTS: dict[str, dict[str, dict[str, float]]] = {
    "mlp": {"sgd": {"lr": 0.05, "weight_decay": 5e-4},
            "adam": {"lr": 2e-3, "weight_decay": 0.0},
            "adamw": {"lr": 2e-3, "weight_decay": 1e-2}},
    "cnn": {"sgd": {"lr": 0.02, "weight_decay": 5e-4},
            "adam": {"lr": 3e-3, "weight_decay": 0.0},
            "adamw": {"lr": 3e-3, "weight_decay": 1e-2}},
}
#: Rates that depend on the activation too ({model: {optimizer: {activation: lr}}}).  SGD
#: trains the CNN at 0.02 with any activation; ReLU, the default, takes 0.2 at batch 128 (7
#: epochs: 99.34-99.48%; 0.1 at batch 64, 5 epochs: 99.37-99.43%, 6 epochs 99.39-99.44%;
#: Adam at 3e-3 reached 99.32%), which others do not survive (50 steps of batch 32 at 0.1:
#: identity and PReLU diverge, sigmoid and softplus stay below 25%).  The MLP without an
#: activation (a linear model) diverges at SGD's 0.05 on standardised images (NaN within 2
#: epochs of 4,000 images); at 0.01: 88.45% there, 0.02: 87.04%.
ACTIVATION_LR: dict[str, dict[str, dict[str, float]]] = {
    "mlp": {"sgd": {"identity": 0.01}}, "cnn": {"sgd": {"relu": 0.2}}}
EVAL_BATCH = 1000


def defaults_for(model: str, optimizer: str | None = None,
                 activation: str = "relu") -> dict[str, Any]:
    """A run's default settings: the model's (:data:`DEFAULTS`), with ``optimizer`` (default:
    the model's own) and that optimizer's learning rate and weight decay, the rate adjusted
    for ``activation`` where :data:`ACTIVATION_LR` says so."""
    settings = dict(DEFAULTS[model])
    name = optimizer or settings["optimizer"]
    settings.update(OPTIMIZER_DEFAULTS[model][name], optimizer=name)
    lr = ACTIVATION_LR.get(model, {}).get(name, {}).get(activation)
    if lr is not None:
        settings["lr"] = lr
    return settings


class TrainingDiverged(RuntimeError):
    """The loss (or a weight) became NaN or infinite; ``epoch`` and ``step`` say where."""

    def __init__(self, epoch: int, step: int, value: float, what: str = "loss") -> None:
        self.epoch, self.step, self.value = epoch, step, value
        super().__init__(
            f"training diverged: {what} is {value} at epoch {epoch}, step {step} "
            "(try a smaller --lr)"
        )


@dataclass
class EpochResult:
    """What one epoch measured (plain floats: nothing that holds a graph)."""

    epoch: int
    loss: float
    train_accuracy: float
    test_accuracy: float | None
    seconds: float
    images_per_second: float
    epoch_lr: float


# --------------------------------------------------------------------------- library


def make_optimizer(name: str, params: list, lr: float, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> Any:
    """``optim.SGD`` (with momentum), ``optim.Adam`` or ``optim.AdamW`` by name."""
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose from {list(OPTIMIZERS)}")


def make_scheduler(name: str, optimizer: Any, epochs: int, steps_per_epoch: int) -> Any:
    """The learning-rate schedule of a run by name: ``"cosine"`` (per epoch, from the
    optimizer's rate down to 0) or ``"onecycle"`` (per batch, peaking at the optimizer's
    rate after 30% of the steps)."""
    if name == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "onecycle":
        return optim.OneCycleLR(optimizer, max_lr=optimizer.lr, epochs=epochs,
                                steps_per_epoch=max(steps_per_epoch, 1))
    raise ValueError(f"unknown schedule {name!r}; choose from {list(SCHEDULES)}")


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray,
             batch_size: int = EVAL_BATCH) -> float:
    """Accuracy of ``model`` on ``(x, y)``, in eval mode and without recording a graph.

    The model's previous train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    correct = 0
    try:
        with no_grad():
            for start in range(0, len(x), batch_size):
                logits = model(Tensor(x[start:start + batch_size]))
                correct += int((logits.data.argmax(axis=1) == y[start:start + batch_size]).sum())
    finally:
        model.train(was_training)
    return correct / max(len(x), 1)


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffling seed of ``epoch``, derived from the run's ``seed``."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _progress_bar(epoch: int, epochs: int, steps: int, progress: bool | None) -> tqdm:
    """A per-epoch tqdm bar on stderr; ``progress=None`` shows it only on a terminal."""
    disable = None if progress is None else not progress
    return tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False,
                file=sys.stderr, disable=disable, dynamic_ncols=True)


def _check_finite_weights(model: nn.Module, epoch: int, step: int) -> None:
    """Raise :class:`TrainingDiverged` if any parameter holds NaN or inf."""
    for name, p in model.named_parameters():
        if not np.isfinite(p.data).all():
            raise TrainingDiverged(epoch, step, math.nan, what=f"weight {name!r}")


def train_step(model: nn.Module, optimizer: Any, xb: np.ndarray, yb: np.ndarray,
               where: tuple[int, int] = (1, 1)) -> tuple[float, int]:
    """One optimisation step on a batch: ``(loss, number classified correctly)``.

    A NaN or infinite loss raises :class:`TrainingDiverged` (naming ``where`` = (epoch,
    step)) *before* backward and the optimizer step, so the weights stay as they were.
    """
    logits = model(Tensor(xb))
    loss = F.cross_entropy(logits, yb)
    value = float(loss.data)
    if not math.isfinite(value):
        raise TrainingDiverged(*where, value)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return value, int((logits.data.argmax(axis=1) == yb).sum())


def train_epoch(model: nn.Module, optimizer: Any, x: np.ndarray, y: np.ndarray,
                batch_size: int, seed: int, epoch: int = 1, epochs: int = 1,
                progress: bool | None = False,
                scheduler: Any = None) -> tuple[float, float, int]:
    """One pass over ``(x, y)`` in seeded random order: ``(mean loss, accuracy, images)``.

    ``scheduler.step()`` (if given: a per-batch schedule such as
    :class:`~tinygrad_edu.optim.OneCycleLR`) runs after every optimizer step.
    Only floats are accumulated, so nothing of a step's graph outlives the step.  Raises
    :class:`TrainingDiverged` on a non-finite loss (before the step) or, at the end of the
    epoch, on a non-finite weight.
    """
    model.train()
    steps = math.ceil(len(x) / batch_size)
    loss_sum, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    order = batches(x, y, batch_size, seed=epoch_seed(seed, epoch))
    with _progress_bar(epoch, epochs, steps, progress) as bar:
        for step, (xb, yb) in enumerate(order, 1):
            loss, right = train_step(model, optimizer, xb, yb, (epoch, step))
            if scheduler is not None:
                scheduler.step()
            loss_sum, correct, seen = loss_sum + loss * len(yb), correct + right, seen + len(yb)
            if step % 20 == 0 or step == steps:
                rate = seen / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix({"loss": f"{loss_sum / seen:.4f}", "acc": f"{correct / seen:.2%}",
                                 "img/s": f"{rate:,.0f}"}, refresh=False)
            bar.update(1)
    _check_finite_weights(model, epoch, steps)
    return loss_sum / max(seen, 1), correct / max(seen, 1), seen


# --------------------------------------------------------------------------- the loop


def _current_lr(optimizer: Any) -> float:
    return float(getattr(optimizer, "lr", math.nan))


@np.errstate(over="ignore", invalid="ignore", divide="ignore")  # divergence: our message only
def fit(model: nn.Module, optimizer: Any,
        data: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None],
        epochs: int, batch_size: int, seed: int = 0, scheduler: Any = None,
        progress: bool | None = False,
        on_epoch: Callable[[EpochResult], None] | None = None) -> list[EpochResult]:
    """Train ``model`` for ``epochs`` on ``data = (x_train, y_train, x_test, y_test)``.

    Inputs must already have the model's shape (see :func:`tinygrad_edu.models.prepare_inputs`);
    pass ``x_test=None`` to skip testing.  ``seed`` fixes the shuffling of every epoch.
    ``scheduler.step()`` (if given) runs after each epoch -- or after every batch for a
    scheduler with ``per_step = True`` (:class:`~tinygrad_edu.optim.OneCycleLR`) -- and
    ``on_epoch(result)`` after the epoch.  Returns one :class:`EpochResult` per epoch;
    raises :class:`TrainingDiverged` (numpy's overflow warnings are silenced here: a
    diverging run says so once, clearly).
    """
    x, y, x_test, y_test = data
    per_step = getattr(scheduler, "per_step", False)
    results = []
    for epoch in range(1, epochs + 1):
        lr = _current_lr(optimizer)
        start = time.perf_counter()
        loss, acc, seen = train_epoch(model, optimizer, x, y, batch_size, seed, epoch, epochs,
                                      progress, scheduler if per_step else None)
        train_seconds = time.perf_counter() - start
        test_acc = evaluate(model, x_test, y_test) if x_test is not None else None
        seconds = time.perf_counter() - start
        result = EpochResult(epoch, loss, acc, test_acc, seconds,
                             seen / max(train_seconds, 1e-9), lr)
        results.append(result)
        if scheduler is not None and not per_step:
            scheduler.step()
        if on_epoch is not None:
            on_epoch(result)
    return results


def format_epoch(result: EpochResult, epochs: int) -> str:
    """The one stdout line of an epoch."""
    test = "n/a" if result.test_accuracy is None else f"{result.test_accuracy:.2%}"
    width = len(str(epochs))
    return (
        f"epoch {result.epoch:>{width}}/{epochs}  loss {result.loss:.4f}  "
        f"train acc {result.train_accuracy:.2%}  test acc {test}  "
        f"{result.seconds:.1f} s  {result.images_per_second:,.0f} img/s"
    )
