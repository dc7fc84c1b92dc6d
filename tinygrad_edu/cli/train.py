"""``tinygrad-edu train`` and ``tinygrad-edu eval``: train a model on MNIST, test a checkpoint.

``train`` prints one line per epoch and saves a checkpoint after every epoch; a NaN loss
stops it with the last good checkpoint kept.  It owns its process, so it sets the
process-wide knobs of :mod:`tinygrad_edu.runtime` (``--threads``, the allocator).
``eval`` rebuilds the model recorded in a checkpoint and prints its test accuracy.
Exit codes: 0 done, 1 data, checkpoint or divergence error (one line), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from .. import nn, optim, runtime
from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..datasets import DatasetError, load_mnist
from ..models import build_model, model_names, prepare_inputs
from ..registry import activation_ops
from ..train import (
    DEFAULTS,
    OPTIMIZER_DEFAULTS,
    OPTIMIZERS,
    EpochResult,
    TrainingDiverged,
    defaults_for,
    evaluate,
    fit,
    format_epoch,
    make_optimizer,
)
from .common import fail, one_line, positive_float, positive_int

__all__ = ["register_cli"]


# --------------------------------------------------------------------------- train


def _activation_names() -> list[str]:
    """Hidden-layer activations: the registry's (minus the softmax family), PReLU, RReLU."""
    names = [op.name for op in activation_ops() if op.name not in ("softmax", "log_softmax")]
    return [*names, "prelu", "rrelu"]


def _resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Fill the options left unset with the chosen model's defaults."""
    settings = defaults_for(args.model, args.optimizer)  # the optimizer's own lr, decay
    for key in settings:
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    return settings


def _count(n: int, word: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _load_data(data_dir: str | None, model_name: str,
               limit: int | None) -> tuple[np.ndarray, ...]:
    """MNIST shaped for ``model_name``, the training set cut to ``limit`` images."""
    x, y, x_test, y_test = load_mnist(data_dir, verbose=True)  # say where the data comes from
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return prepare_inputs(model_name, x), y, prepare_inputs(model_name, x_test), y_test


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
        runtime.set_blas_threads(args.threads)
    runtime.apply_memory_default()  # this command owns its process: reuse freed memory
    try:
        data = _load_data(args.data, args.model, args.limit)
    except DatasetError as exc:
        return fail(one_line(exc), "train")
    rng = np.random.default_rng(args.seed)
    model = build_model(args.model, rng=rng, activation=args.activation)
    optimizer = make_optimizer(settings["optimizer"], model.parameters(), settings["lr"],
                               settings["momentum"], settings["weight_decay"])
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=settings["epochs"])
    print(
        f"training {args.model} ({model.num_parameters():,} parameters, {args.activation}) on "
        f"{len(data[0]):,} images: {settings['optimizer']} lr {settings['lr']:g} (cosine), "
        f"batch {settings['batch_size']}, {_count(settings['epochs'], 'epoch')}, seed {args.seed}",
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
        return fail(f"{exc}; {kept}", "train")
    except OSError as exc:
        return fail(f"cannot write the checkpoint {args.out}: {one_line(exc)}", "train")
    final = results[-1].test_accuracy if results else None
    accuracy = "n/a" if final is None else f"{final:.2%}"
    print(f"test accuracy {accuracy}; checkpoint saved to {args.out} "
          f"({time.perf_counter() - wall:.1f} s in total)")
    return 0


# --------------------------------------------------------------------------- eval


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _eval_command(args: argparse.Namespace) -> int:
    """Run ``tinygrad-edu eval``: rebuild the recorded model and test it."""
    try:
        model, meta = load_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        return fail(one_line(exc), "eval")
    architecture = meta.pop("architecture")
    try:
        _, _, x_test, y_test = load_mnist(args.data)
    except DatasetError as exc:
        return fail(one_line(exc), "eval")
    accuracy = evaluate(model, prepare_inputs(architecture["name"], x_test), y_test)
    print(f"checkpoint: {args.checkpoint}")
    print(f"architecture: {architecture['name']} {_json(architecture.get('config', {}))}")
    print(f"parameters: {model.num_parameters():,}")
    print(f"meta: {_json(meta)}")
    print(f"test accuracy: {accuracy:.2%} ({round(accuracy * len(y_test))}/{len(y_test)})")
    return 0


# --------------------------------------------------------------------------- parsers


def _per_model(key: str) -> str:
    return ", ".join(f"{m}: {DEFAULTS[m][key]:g}" if not isinstance(DEFAULTS[m][key], str)
                     else f"{m}: {DEFAULTS[m][key]}" for m in DEFAULTS)


def _per_optimizer(key: str) -> str:
    return "; ".join(f"{m}: " + ", ".join(f"{o} {v[key]:g}" for o, v in table.items())
                     for m, table in OPTIMIZER_DEFAULTS.items())


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
    p.add_argument("--epochs", type=positive_int, metavar="N",
                   help=f"epochs ({_per_model('epochs')})")
    p.add_argument("--batch-size", type=positive_int, metavar="N",
                   help=f"training batch size ({_per_model('batch_size')})")
    p.add_argument("--lr", type=positive_float, metavar="F",
                   help="initial learning rate, annealed by a cosine (default: the "
                        f"optimizer's own: {_per_optimizer('lr')})")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help=f"({_per_model('optimizer')})")
    p.add_argument("--momentum", type=float, metavar="F",
                   help=f"SGD momentum ({_per_model('momentum')})")
    p.add_argument("--weight-decay", type=float, metavar="F",
                   help="L2 (sgd, adam) or decoupled (adamw) (default: the optimizer's own: "
                        f"{_per_optimizer('weight_decay')})")
    p.add_argument("--seed", type=int, metavar="N", default=0,
                   help="drives initialisation, shuffling and dropout (default: 0)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="MNIST directory (default: $TINYGRAD_EDU_DATA, then the user cache, "
                        "downloading if missing)")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="checkpoint written after every epoch (default: "
                        "checkpoints/mnist-MODEL.npz)")
    p.add_argument("--limit", type=positive_int, metavar="N", default=None,
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
