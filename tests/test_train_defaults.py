"""Every optimizer brings its own default learning rate, and the defaults train every
activation × optimizer combination that ``tinygrad-edu train`` offers (real MNIST)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import optim
from tinygrad_edu.cli import main
from tinygrad_edu.cli.train import _activation_names
from tinygrad_edu.datasets import load_mnist
from tinygrad_edu.models import build_model, prepare_inputs
from tinygrad_edu.train import OPTIMIZERS, defaults_for, fit, make_optimizer

#: Saturating activations leave SGD on a plateau for its first ~200 steps (measured: sigmoid
#: + SGD 19% after 94 steps, 78% after one full epoch): these get one full epoch.
SLOW_STARTERS = {("sgd", "sigmoid"), ("adam", "sigmoid"), ("adamw", "sigmoid"),
                 ("sgd", "softplus")}


pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def mnist(real_mnist_dir: Path) -> tuple[np.ndarray, ...]:
    """The real MNIST (conftest: ../shared/data/mnist, or fetched once into the user cache)."""
    return load_mnist(real_mnist_dir, download=False)


def test_each_optimizer_has_its_own_learning_rate() -> None:
    assert defaults_for("mlp")["optimizer"] == "sgd" and defaults_for("mlp")["lr"] == 0.05
    assert defaults_for("mlp", "adam")["lr"] == defaults_for("mlp", "adamw")["lr"] == 2e-3
    assert defaults_for("cnn")["optimizer"] == "adam" and defaults_for("cnn", "sgd")["lr"] == 0.05
    assert defaults_for("mlp", "adamw")["weight_decay"] == 1e-2  # decoupled, as in PyTorch


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("activation", _activation_names())
def test_defaults_train_every_activation_with_every_optimizer(mnist, optimizer, activation):
    """What ``train --model mlp --optimizer O --activation A`` runs (the defaults, a cosine
    over the run), on 4,000 images for two epochs (one full epoch for the slow starters):
    the loss falls well below its start ln 10 and the test accuracy is sane."""
    slow = (optimizer, activation) in SLOW_STARTERS
    n, epochs = (60_000, 1) if slow else (4_000, 2)
    settings = defaults_for("mlp", optimizer)
    x, y, x_test, y_test = mnist
    data = (prepare_inputs("mlp", x[:n]), y[:n], prepare_inputs("mlp", x_test[:2000]),
            y_test[:2000])
    model = build_model("mlp", rng=np.random.default_rng(0), activation=activation)
    opt = make_optimizer(optimizer, model.parameters(), settings["lr"], settings["momentum"],
                         settings["weight_decay"])
    results = fit(model, opt, data, epochs, settings["batch_size"], 0,
                  optim.CosineAnnealingLR(opt, T_max=epochs))
    loss, accuracy = results[-1].loss, results[-1].test_accuracy
    assert loss < (0.7 if slow else 0.5) * math.log(10), (optimizer, activation, loss)
    assert accuracy >= (0.7 if slow else 0.8), (optimizer, activation, accuracy)


def test_divergence_prints_only_the_clear_message_and_plurals_are_right(
    tmp_path, capsys, real_mnist_dir
):
    args = ["train", "--model", "mlp", "--lr", "1000", "--epochs", "1", "--limit", "1024",
            "--out", str(tmp_path / "m.npz"), "--no-progress", "--data", str(real_mnist_dir)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(args)
    assert code == 1
    assert [w for w in caught if issubclass(w.category, RuntimeWarning)] == []
    out, err = capsys.readouterr()
    assert ", 1 epoch," in out and "1 epochs" not in out
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "training diverged" in errors[0]
    assert "RuntimeWarning" not in err and "site-packages" not in err


def test_eval_takes_the_file_as_argument_limits_threads_and_reads_well(
    tmp_path, capsys, monkeypatch, real_mnist_dir
):
    from tinygrad_edu import runtime

    data = ["--data", str(real_mnist_dir)]
    checkpoint = str(tmp_path / "m.npz")
    assert main(["train", "--model", "mlp", "--optimizer", "adam", "--epochs", "1", "--limit",
                 "512", "--out", checkpoint, "--no-progress", *data]) == 0
    capsys.readouterr()
    threads = []
    monkeypatch.setattr(runtime, "set_blas_threads", lambda n: threads.append(n))
    assert main(["eval", checkpoint, *data]) == 0  # positional; the model comes from the file
    out = capsys.readouterr().out
    assert threads == [1]  # BLAS threads limited as train does
    assert f"checkpoint:   {checkpoint}" in out
    assert "model:        mlp (" in out and "sizes 784-256-128-64-10" in out
    assert "epoch 1 of 1, adam (lr 0.002, batch 128, seed 0) on the first 512 images" in out
    assert "{" not in out and '"' not in out  # no raw JSON dump
    assert main(["eval", "--checkpoint", checkpoint, *data]) == 0  # the option still works
    capsys.readouterr()
    assert main(["eval", checkpoint, "--checkpoint", str(tmp_path / "other.npz")]) == 2
    assert "two checkpoints given" in capsys.readouterr().err
