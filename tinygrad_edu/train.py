"""Training on MNIST: the library loop (:func:`fit`, :func:`evaluate`) and the
``tinygrad-edu train`` / ``tinygrad-edu eval`` commands.

One training step is the loop every learner writes::

    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

:func:`fit` adds what a real run needs around it: seeded shuffling, a tqdm progress bar
(loss, running accuracy, images/s), a test-set evaluation after every epoch, a stop with a
clear message as soon as the loss is NaN or infinite (before the bad step touches the
weights), and a callback per epoch (the CLI saves a checkpoint there).  Only Python floats
are kept between steps, so memory stays flat: each step's graph is freed when the next
step replaces ``loss``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from . import nn, optim
from .autograd import no_grad
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .datasets import DatasetError, batches, load_mnist
from .models import build_model, model_names, prepare_inputs
from .nn import functional as F
from .tensor import Tensor

__all__ = [
    "DEFAULTS",
    "EpochResult",
    "TrainingDiverged",
    "blas_threads",
    "evaluate",
    "fit",
    "make_optimizer",
    "register_cli",
    "set_blas_threads",
    "train_epoch",
    "train_step",
]

#: Per-model defaults of ``tinygrad-edu train`` (measured on a 2-core machine).
DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"epochs": 15, "batch_size": 128, "optimizer": "sgd", "lr": 0.05,
            "momentum": 0.9, "weight_decay": 5e-4},
    "cnn": {"epochs": 6, "batch_size": 64, "optimizer": "adam", "lr": 2e-3,
            "momentum": 0.9, "weight_decay": 0.0},
}
OPTIMIZERS = ("sgd", "adam", "adamw")
EVAL_BATCH = 1000


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
                progress: bool | None = False) -> tuple[float, float, int]:
    """One pass over ``(x, y)`` in seeded random order: ``(mean loss, accuracy, images)``.

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
            loss_sum, correct, seen = loss_sum + loss * len(yb), correct + right, seen + len(yb)
            if step % 20 == 0 or step == steps:
                rate = seen / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix({"loss": f"{loss_sum / seen:.4f}", "acc": f"{correct / seen:.2%}",
                                 "img/s": f"{rate:,.0f}"}, refresh=False)
            bar.update(1)
    _check_finite_weights(model, epoch, steps)
    return loss_sum / max(seen, 1), correct / max(seen, 1), seen


# --------------------------------------------------------------------------- BLAS threads


def _openblas_function(action: str) -> Any:
    """``openblas_{action}_num_threads`` of the OpenBLAS numpy loaded (Linux), or None."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    names = [f"{prefix}_{action}_num_threads{suffix}"
             for prefix in ("scipy_openblas", "openblas") for suffix in ("64_", "")]
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            function = getattr(lib, name, None)
            if function is not None:
                return function
    return None


def set_blas_threads(threads: int) -> bool:
    """Limit the threads of numpy's OpenBLAS to ``threads``; False if that is not possible.

    On a machine whose cores are shared, multi-threaded OpenBLAS spins while it waits and
    becomes several times *slower* (measured: 7x for the CNN with 2 threads on 2 busy
    cores); one thread also gives the same bits whatever the machine's core count.
    Works on Linux by finding the loaded OpenBLAS library; a no-op elsewhere.
    """
    setter = _openblas_function("set")
    if setter is None:
        return False
    setter(ctypes.c_int(threads))
    return True


def blas_threads() -> int | None:
    """How many threads numpy's OpenBLAS uses now (None if unknown)."""
    getter = _openblas_function("get")
    if getter is None:
        return None
    getter.restype = ctypes.c_int
    return int(getter())


# --------------------------------------------------------------------------- the loop


def _current_lr(optimizer: Any) -> float:
    return float(getattr(optimizer, "lr", math.nan))


def fit(model: nn.Module, optimizer: Any,
        data: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None],
        epochs: int, batch_size: int, seed: int = 0, scheduler: Any = None,
        progress: bool | None = False,
        on_epoch: Callable[[EpochResult], None] | None = None) -> list[EpochResult]:
    """Train ``model`` for ``epochs`` on ``data = (x_train, y_train, x_test, y_test)``.

    Inputs must already have the model's shape (see :func:`tinygrad_edu.models.prepare_inputs`);
    pass ``x_test=None`` to skip testing.  ``seed`` fixes the shuffling of every epoch.
    ``scheduler.step()`` (if given) runs after each epoch, and ``on_epoch(result)`` after
    that.  Returns one :class:`EpochResult` per epoch; raises :class:`TrainingDiverged`.
    """
    x, y, x_test, y_test = data
    results = []
    for epoch in range(1, epochs + 1):
        lr = _current_lr(optimizer)
        start = time.perf_counter()
        loss, acc, seen = train_epoch(model, optimizer, x, y, batch_size, seed, epoch, epochs,
                                      progress)
        train_seconds = time.perf_counter() - start
        test_acc = evaluate(model, x_test, y_test) if x_test is not None else None
        seconds = time.perf_counter() - start
        result = EpochResult(epoch, loss, acc, test_acc, seconds,
                             seen / max(train_seconds, 1e-9), lr)
        results.append(result)
        if scheduler is not None:
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


# --------------------------------------------------------------------------- CLI: train


def _activation_names() -> list[str]:
    """Hidden-layer activations: the registry's (minus the softmax family), PReLU, RReLU."""
    from .registry import activation_ops

    names = [op.name for op in activation_ops() if op.name not in ("softmax", "log_softmax")]
    return [*names, "prelu", "rrelu"]


def _resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Fill the options left unset with the chosen model's defaults."""
    settings = dict(DEFAULTS[args.model])
    for key in settings:
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    return settings


def _load_data(data_dir: str | None, model_name: str,
               limit: int | None) -> tuple[np.ndarray, ...]:
    """MNIST shaped for ``model_name``, the training set cut to ``limit`` images."""
    x, y, x_test, y_test = load_mnist(data_dir, verbose=True)  # say where the data comes from
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return prepare_inputs(model_name, x), y, prepare_inputs(model_name, x_test), y_test


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _error(command: str, message: str) -> int:
    print(f"tinygrad-edu {command}: error: {message}", file=sys.stderr)
    return 1


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    """Floats to 6 significant digits (for a readable JSON record)."""
    return {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in values.items()}


def _epoch_saver(args: argparse.Namespace, model: nn.Module, settings: dict[str, Any],
                 state: dict[str, Any]) -> Callable[[EpochResult], None]:
    """The per-epoch callback of ``train``: print the epoch line, save the checkpoint."""

    def on_epoch(result: EpochResult) -> None:
        print(format_epoch(result, settings["epochs"]), flush=True)
        meta = {**settings, "seed": args.seed, "limit": args.limit, **_rounded(asdict(result)),
                "activation": args.activation}
        save_checkpoint(args.out, model, meta)
        state["saved_epoch"] = result.epoch

    return on_epoch


def _train_command(args: argparse.Namespace) -> int:
    """Run ``tinygrad-edu train``; return the exit code."""
    if args.out is None:
        args.out = f"checkpoints/mnist-{args.model}.npz"
    settings = _resolve(args)
    wall = time.perf_counter()
    if args.threads > 0:
        set_blas_threads(args.threads)
    nn.allocator.apply_default()  # this command owns its process: reuse freed memory
    try:
        data = _load_data(args.data, args.model, args.limit)
    except DatasetError as exc:
        return _error("train", _one_line(exc))
    rng = np.random.default_rng(args.seed)
    model = build_model(args.model, rng=rng, activation=args.activation)
    optimizer = make_optimizer(settings["optimizer"], model.parameters(), settings["lr"],
                               settings["momentum"], settings["weight_decay"])
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=settings["epochs"])
    print(
        f"training {args.model} ({model.num_parameters():,} parameters, {args.activation}) on "
        f"{len(data[0]):,} images: {settings['optimizer']} lr {settings['lr']:g} (cosine), "
        f"batch {settings['batch_size']}, {settings['epochs']} epochs, seed {args.seed}",
        flush=True,
    )
    state: dict[str, Any] = {"saved_epoch": None}
    try:
        results = fit(model, optimizer, data, settings["epochs"], settings["batch_size"],
                      args.seed, scheduler, progress=None if args.progress else False,
                      on_epoch=_epoch_saver(args, model, settings, state))
    except TrainingDiverged as exc:
        kept = (f"the last good checkpoint (epoch {state['saved_epoch']}) is kept in {args.out}"
                if state["saved_epoch"] else "no checkpoint was written")
        return _error("train", f"{exc}; {kept}")
    except OSError as exc:
        return _error("train", f"cannot write the checkpoint {args.out}: {_one_line(exc)}")
    final = results[-1].test_accuracy if results else None
    accuracy = "n/a" if final is None else f"{final:.2%}"
    print(f"test accuracy {accuracy}; checkpoint saved to {args.out} "
          f"({time.perf_counter() - wall:.1f} s in total)")
    return 0


# --------------------------------------------------------------------------- CLI: eval


def _eval_command(args: argparse.Namespace) -> int:
    """Run ``tinygrad-edu eval``: rebuild the recorded model and test it."""
    try:
        model, meta = load_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        return _error("eval", _one_line(exc))
    architecture = meta.pop("architecture")
    try:
        _, _, x_test, y_test = load_mnist(args.data)
    except DatasetError as exc:
        return _error("eval", _one_line(exc))
    accuracy = evaluate(model, prepare_inputs(architecture["name"], x_test), y_test)
    print(f"checkpoint: {args.checkpoint}")
    print(f"architecture: {architecture['name']} {_json(architecture.get('config', {}))}")
    print(f"parameters: {model.num_parameters():,}")
    print(f"meta: {_json(meta)}")
    print(f"test accuracy: {accuracy:.2%} ({round(accuracy * len(y_test))}/{len(y_test)})")
    return 0


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# --------------------------------------------------------------------------- parsers


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _per_model(key: str) -> str:
    return ", ".join(f"{m}: {DEFAULTS[m][key]:g}" if not isinstance(DEFAULTS[m][key], str)
                     else f"{m}: {DEFAULTS[m][key]}" for m in DEFAULTS)


def _add_train_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="train a model on MNIST",
        description="Train an MLP or a CNN on MNIST; print one line per epoch and save a "
                    "checkpoint after every epoch. Options left out take the model's default.",
        epilog="Example: tinygrad-edu train --model mlp --data ~/mnist --out mlp.npz")
    p.add_argument("--model", required=True, choices=model_names(),
                   help="architecture: mlp (784-256-128-64-10) or cnn (two conv5x5 + pool)")
    p.add_argument("--activation", default="relu", choices=_activation_names(), metavar="NAME",
                   help=f"hidden-layer activation, one of {', '.join(_activation_names())} "
                        "(default: relu)")
    p.add_argument("--epochs", type=_positive_int, metavar="N",
                   help=f"epochs ({_per_model('epochs')})")
    p.add_argument("--batch-size", type=_positive_int, metavar="N",
                   help=f"training batch size ({_per_model('batch_size')})")
    p.add_argument("--lr", type=_positive_float, metavar="F",
                   help=f"initial learning rate, annealed by a cosine ({_per_model('lr')})")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help=f"({_per_model('optimizer')})")
    p.add_argument("--momentum", type=float, metavar="F",
                   help=f"SGD momentum ({_per_model('momentum')})")
    p.add_argument("--weight-decay", type=float, metavar="F",
                   help=f"L2 (sgd, adam) or decoupled (adamw) ({_per_model('weight_decay')})")
    p.add_argument("--seed", type=int, metavar="N", default=0,
                   help="drives initialisation, shuffling and dropout (default: 0)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="MNIST directory (default: $TINYGRAD_EDU_DATA, then the user cache, "
                        "downloading if missing)")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="checkpoint written after every epoch (default: "
                        "checkpoints/mnist-MODEL.npz)")
    p.add_argument("--limit", type=_positive_int, metavar="N", default=None,
                   help="train on the first N images only (quick runs)")
    p.add_argument("--threads", type=int, metavar="N", default=1,
                   help="BLAS threads for numpy's matrix products; 1 is fastest when the cores "
                        "are shared and bit-reproducible; 0 keeps the library's default "
                        "(default: 1)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="hide the progress bar (it is also hidden when stderr is not a terminal)")
    p.set_defaults(func=_train_command)


def _add_eval_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval", help="test a saved checkpoint on MNIST",
        description="Rebuild the model recorded in a checkpoint and print its test accuracy "
                    "with the recorded architecture and training notes.",
    )
    p.add_argument("--checkpoint", required=True, metavar="FILE", help="a .npz checkpoint")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="MNIST directory (default: $TINYGRAD_EDU_DATA, then the user cache)")
    p.set_defaults(func=_eval_command)


def register_cli(subparsers: Any) -> None:
    """Add the ``train`` and ``eval`` subcommands to the ``tinygrad-edu`` parser."""
    _add_train_parser(subparsers)
    _add_eval_parser(subparsers)
