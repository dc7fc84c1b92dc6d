"""``tinygrad-edu train`` and ``tinygrad-edu eval``: train a model on MNIST, test a checkpoint.

``train`` prints one line per epoch and saves a checkpoint after every epoch; a NaN loss
stops it with the last good checkpoint kept.  It owns its process, so it sets the
process-wide knobs of :mod:`tinygrad_edu.runtime` (``--threads``, the allocator).
``eval`` rebuilds the model recorded in a checkpoint and prints its test accuracy.
Exit codes: 0 done, 1 data, checkpoint or divergence error (one line), 2 bad arguments or
output path (checked before any work), 130 Ctrl-C, 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from .. import nn, runtime
from ..anomaly import AnomalyError, set_detect_anomaly
from ..autograd import no_grad
from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..datasets import DatasetError, load_mnist
from ..models import build_model, model_names, prepare_inputs
from ..registry import activation_ops
from ..tensor import Tensor
from ..train import (
    ACTIVATION_LR,
    DEFAULTS,
    MODEL_OPTIONS,
    OPTIMIZER_DEFAULTS,
    OPTIMIZERS,
    SCHEDULES,
    EpochResult,
    TrainingDiverged,
    defaults_for,
    evaluate,
    fit,
    format_epoch,
    make_optimizer,
    make_scheduler,
)
from .common import (
    UsageError,
    check_output_path,
    fail,
    non_negative_float,
    non_negative_int,
    one_line,
    positive_float,
    positive_int,
)

__all__ = ["register_cli"]


# --------------------------------------------------------------------------- train


def _activation_names() -> list[str]:
    """Hidden-layer activations: the registry's (minus the softmax family), PReLU, RReLU."""
    names = [op.name for op in activation_ops() if op.name not in ("softmax", "log_softmax")]
    return [*names, "prelu", "rrelu"]


def _resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Fill the options left unset with the chosen model's defaults."""
    # the optimizer's own lr (for this activation) and decay
    settings = defaults_for(args.model, args.optimizer, args.activation)
    for key in settings:
        value = getattr(args, key, None)  # normalize has no option
        if value is not None:
            settings[key] = value
    return settings


def _count(n: int, word: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _load_data(data_dir: str | None, model_name: str, limit: int | None,
               normalize: bool = False) -> tuple[np.ndarray, ...]:
    """MNIST shaped for ``model_name``, the training set cut to ``limit`` images, standardised
    if ``normalize``."""
    x, y, x_test, y_test = load_mnist(data_dir, verbose=True,  # say where the data comes from
                                      normalize=normalize)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return prepare_inputs(model_name, x), y, prepare_inputs(model_name, x_test), y_test


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    """Floats to 6 significant digits (for a readable JSON record)."""
    return {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in values.items()}


#: Test images whose logits must be finite before an epoch's checkpoint is saved.
_FINITE_CHECK_IMAGES = 2000


def _check_finite_model(model: nn.Module, x_test: np.ndarray, epoch: int) -> None:
    """Raise :class:`TrainingDiverged` unless every weight, and the logits of the first test
    images, are finite: a diverged model is never saved as a success."""
    for name, p in model.named_parameters():
        if not np.isfinite(p.data).all():
            raise TrainingDiverged(epoch, 0, float("nan"), what=f"weight {name!r}")
    was_training = model.training
    model.eval()
    try:
        with no_grad(), np.errstate(all="ignore"):
            logits = model(Tensor(x_test[:_FINITE_CHECK_IMAGES])).data
    finally:
        model.train(was_training)
    if not np.isfinite(logits).all():
        bad = float(logits[~np.isfinite(logits)].flat[0])
        raise TrainingDiverged(epoch, 0, bad, what="a logit of the test images")


def _epoch_saver(args: argparse.Namespace, model: nn.Module, settings: dict[str, Any],
                 state: dict[str, Any],
                 x_test: np.ndarray | None = None) -> Callable[[EpochResult], None]:
    """The per-epoch callback of ``train``: print the epoch line, check the model is finite,
    save the checkpoint."""

    def on_epoch(result: EpochResult) -> None:
        print(format_epoch(result, settings["epochs"]), flush=True)
        if x_test is not None:
            _check_finite_model(model, x_test, result.epoch)
        meta = {**settings, "seed": args.seed, "limit": args.limit, **_rounded(asdict(result)),
                "activation": args.activation}
        save_checkpoint(args.out, model, meta)
        state["saved_epoch"] = result.epoch

    return on_epoch


def _available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _threads(requested: int) -> int:
    """``--threads``, capped at the available cores (with a note on stderr)."""
    cores = _available_cores()
    if requested > cores:
        print(f"tinygrad-edu train: note: --threads {requested} capped at the {cores} "
              "available cores", file=sys.stderr)
        return cores
    return requested


def _grad_norm_logger(model: nn.Module, on_epoch: Callable[[EpochResult], None]
                      ) -> Callable[[EpochResult], None]:
    """``on_epoch`` followed by the epoch's mean gradient norm per layer (--log-grad-norms)."""
    recorder = nn.utils.GradNormRecorder(model)

    def log(result: EpochResult) -> None:
        on_epoch(result)
        print(f"gradient norms, mean over the {recorder.passes} steps of epoch {result.epoch}:")
        print("  " + str(recorder.summary()).replace("\n", "\n  "), flush=True)

    return log


def _train_command(args: argparse.Namespace) -> int:
    """Run ``tinygrad-edu train``; return the exit code."""
    if args.out is None:
        args.out = f"checkpoints/mnist-{args.model}.npz"
    try:  # every argument and output path is checked before the data is loaded
        check_output_path(args.out, "--out", create_parents=True)
    except UsageError as exc:
        return fail(str(exc), "train", code=2)
    settings = _resolve(args)
    wall = time.perf_counter()
    if args.threads > 0:
        runtime.set_blas_threads(_threads(args.threads))
    runtime.apply_memory_default()  # this command owns its process: reuse freed memory
    try:
        data = _load_data(args.data, args.model, args.limit, settings["normalize"])
    except DatasetError as exc:
        return fail(one_line(exc), "train")
    rng = np.random.default_rng(args.seed)
    model = build_model(args.model, rng=rng, activation=args.activation,
                        **MODEL_OPTIONS[args.model])
    optimizer = make_optimizer(settings["optimizer"], model.parameters(), settings["lr"],
                               settings["momentum"], settings["weight_decay"])
    scheduler = make_scheduler(settings["schedule"], optimizer, settings["epochs"],
                               -(-len(data[0]) // settings["batch_size"]))
    print(
        f"training {args.model} ({model.num_parameters():,} parameters, {args.activation}) on "
        f"{len(data[0]):,} images: {settings['optimizer']} lr {settings['lr']:g} "
        f"({settings['schedule']}), "
        f"batch {settings['batch_size']}, {_count(settings['epochs'], 'epoch')}, seed {args.seed}",
        flush=True,
    )
    state: dict[str, Any] = {"saved_epoch": None}
    on_epoch = _epoch_saver(args, model, settings, state, data[2])
    if args.log_grad_norms:
        on_epoch = _grad_norm_logger(model, on_epoch)
    try:
        quiet = {"all": "ignore"} if args.detect_anomaly else {}  # the mode says it better
        with set_detect_anomaly(args.detect_anomaly), np.errstate(**quiet):
            results = fit(model, optimizer, data, settings["epochs"], settings["batch_size"],
                          args.seed, scheduler, progress=None if args.progress else False,
                          on_epoch=on_epoch)
    except AnomalyError as exc:
        print(f"tinygrad-edu train: error: {exc}", file=sys.stderr)
        return 1
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


def _config_text(config: dict[str, Any]) -> str:
    """``sizes 784-256-128-64-10, activation relu``: an architecture's settings, readable."""
    parts = []
    for key, value in config.items():
        if isinstance(value, (list, tuple)):
            value = "-".join(str(v) for v in value)
        parts.append(f"{key} {value}")
    return ", ".join(parts)


def _training_notes(meta: dict[str, Any]) -> list[str]:
    """The checkpoint's training notes as sentences (keys it lacks are left out)."""
    get = meta.get
    lines = []
    if get("epoch") is not None:
        run = f"epoch {get('epoch')}" + (f" of {get('epochs')}" if get("epochs") else "")
        opt = get("optimizer", "?")
        details = [f"lr {get('lr'):g}" if get("lr") is not None else "",
                   f"{get('schedule')} schedule" if get("schedule") else "",
                   f"momentum {get('momentum'):g}" if opt == "sgd" and get("momentum") else "",
                   f"weight decay {get('weight_decay'):g}" if get("weight_decay") else "",
                   f"batch {get('batch_size')}" if get("batch_size") else "",
                   f"seed {get('seed')}" if get("seed") is not None else ""]
        images = f"the first {get('limit'):,} images" if get("limit") else "all training images"
        images += ", standardised" if get("normalize") else ""
        lines.append(f"trained:      {run}, {opt} ({', '.join(d for d in details if d)}) on "
                     f"{images}")
    scores = [f"loss {get('loss'):.4f}" if get("loss") is not None else "",
              f"train accuracy {get('train_accuracy'):.2%}"
              if get("train_accuracy") is not None else "",
              f"test accuracy {get('test_accuracy'):.2%}"
              if get("test_accuracy") is not None else ""]
    if any(scores):
        lines.append(f"at saving:    {', '.join(x for x in scores if x)}")
    known = {"epoch", "epochs", "optimizer", "lr", "momentum", "weight_decay", "batch_size",
             "seed", "limit", "loss", "train_accuracy", "test_accuracy", "activation",
             "epoch_lr", "seconds", "images_per_second", "schedule", "normalize"}
    rest = {k: v for k, v in meta.items() if k not in known}
    if rest:
        lines.append("other notes:  " + ", ".join(f"{k} {v}" for k, v in sorted(rest.items())))
    return lines


def _eval_command(args: argparse.Namespace) -> int:
    """Run ``tinygrad-edu eval``: rebuild the recorded model and test it."""
    if args.file and args.checkpoint and args.file != args.checkpoint:
        return fail(f"two checkpoints given ({args.file}, {args.checkpoint}): name one", "eval",
                    code=2)
    path = args.file or args.checkpoint
    if path is None:
        return fail("name the checkpoint: tinygrad-edu eval FILE.npz", "eval", code=2)
    if args.threads > 0:
        runtime.set_blas_threads(args.threads)  # as train does: 1 is fastest on shared cores
    try:
        model, meta = load_checkpoint(path)
    except CheckpointError as exc:
        return fail(one_line(exc), "eval")
    architecture = meta.pop("architecture")
    try:  # the test images prepared as in training (older checkpoints: raw [0, 1] pixels)
        _, _, x_test, y_test = load_mnist(args.data, normalize=bool(meta.get("normalize")))
    except DatasetError as exc:
        return fail(one_line(exc), "eval")
    accuracy = evaluate(model, prepare_inputs(architecture["name"], x_test), y_test)
    print(f"checkpoint:   {path}")
    print(f"model:        {architecture['name']} ({_config_text(architecture.get('config', {}))}"
          f"), {model.num_parameters():,} parameters")
    for line in _training_notes(meta):
        print(line)
    print(f"test accuracy: {accuracy:.2%} ({round(accuracy * len(y_test))}/{len(y_test)})")
    return 0


# --------------------------------------------------------------------------- parsers


def _per_model(key: str) -> str:
    return ", ".join(f"{m}: {DEFAULTS[m][key]:g}" if not isinstance(DEFAULTS[m][key], str)
                     else f"{m}: {DEFAULTS[m][key]}" for m in DEFAULTS)


def _per_optimizer(key: str) -> str:
    def special(m: str, o: str) -> str:
        rates = ACTIVATION_LR.get(m, {}).get(o, {}) if key == "lr" else {}
        return "".join(f" ({a} {v:g})" for a, v in rates.items())

    return "; ".join(f"{m}: " + ", ".join(f"{o} {v[key]:g}{special(m, o)}"
                                          for o, v in table.items())
                     for m, table in OPTIMIZER_DEFAULTS.items())


def _add_train_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="train a model on MNIST",
        description="Train an MLP or a CNN on MNIST; print one line per epoch and save a "
                    "checkpoint after every epoch. Options left out take the model's default.",
        epilog="Example: tinygrad-edu train --model mlp --data ~/mnist --out mlp.npz")
    p.add_argument("--model", required=True, choices=model_names(),
                   help="architecture: mlp (784-256-128-64-10) or cnn (two conv5x5 + batch "
                        "norm + pool, a hidden layer of 128 with dropout 0.3)")
    p.add_argument("--activation", default="relu", choices=_activation_names(), metavar="NAME",
                   help=f"hidden-layer activation, one of {', '.join(_activation_names())} "
                        "(default: relu)")
    p.add_argument("--epochs", type=positive_int, metavar="N",
                   help=f"epochs ({_per_model('epochs')})")
    p.add_argument("--batch-size", type=positive_int, metavar="N",
                   help=f"training batch size ({_per_model('batch_size')})")
    p.add_argument("--lr", type=positive_float, metavar="F",
                   help="learning rate: the start of a cosine, the peak of a onecycle "
                        "(default: the "
                        f"optimizer's own: {_per_optimizer('lr')})")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help=f"({_per_model('optimizer')})")
    p.add_argument("--schedule", choices=SCHEDULES,
                   help="learning-rate schedule: cosine over the epochs from --lr, or onecycle "
                        f"over the batches peaking at --lr ({_per_model('schedule')})")
    p.add_argument("--momentum", type=non_negative_float, metavar="F",
                   help=f"SGD momentum ({_per_model('momentum')})")
    p.add_argument("--weight-decay", type=non_negative_float, metavar="F",
                   help="L2 (sgd, adam) or decoupled (adamw) (default: the optimizer's own: "
                        f"{_per_optimizer('weight_decay')})")
    p.add_argument("--seed", type=non_negative_int, metavar="N", default=0,
                   help="drives initialisation, shuffling and dropout (default: 0)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="MNIST directory (default: $TINYGRAD_EDU_DATA, then the user cache, "
                        "downloading if missing)")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="checkpoint written after every epoch (default: "
                        "checkpoints/mnist-MODEL.npz)")
    p.add_argument("--limit", type=positive_int, metavar="N", default=None,
                   help="train on the first N images only (quick runs)")
    p.add_argument("--threads", type=non_negative_int, metavar="N", default=1,
                   help="BLAS threads for numpy's matrix products (the linear layers' big "
                        "ones), at most the available cores; 1 is fastest when the cores are "
                        "shared (the convolution and pooling ops split their batch over the "
                        "cores themselves either way); 0 keeps the library's default "
                        "(default: 1)")
    p.add_argument("--detect-anomaly", action="store_true",
                   help="stop at the first op whose result or gradient is NaN/inf, naming it "
                        "and where it was made (several times slower)")
    p.add_argument("--log-grad-norms", action="store_true",
                   help="print each layer's gradient norm (mean over the epoch) after each epoch")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="hide the progress bar (it is also hidden when stderr is not a terminal)")
    p.set_defaults(func=_train_command)


def _add_eval_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval", help="test a saved checkpoint on MNIST",
        description="Rebuild the model recorded in a checkpoint and print its test accuracy "
                    "with the recorded architecture and training notes.",
    )
    p.add_argument("file", nargs="?", metavar="FILE",
                   help="a .npz checkpoint (the model is rebuilt from it)")
    p.add_argument("--checkpoint", metavar="FILE", help="the same, as an option")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="MNIST directory (default: $TINYGRAD_EDU_DATA, then the user cache)")
    p.add_argument("--threads", type=int, metavar="N", default=1,
                   help="BLAS threads, as for train (default: 1; 0 keeps the library's)")
    p.set_defaults(func=_eval_command)


def register_cli(subparsers: Any) -> None:
    """Add the ``train`` and ``eval`` subcommands to the ``tinygrad-edu`` parser."""
    _add_train_parser(subparsers)
    _add_eval_parser(subparsers)
