"""The ``train`` and ``eval`` commands: help, argument errors, data errors, NaN stops, and
an end-to-end run through ``python -m tinygrad_edu``."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli

from tinygrad_edu.checkpoint import read_checkpoint
from tinygrad_edu.datasets import MNIST_SHA256
from tinygrad_edu.nn import functional as F


@pytest.fixture
def mnist_env(monkeypatch: pytest.MonkeyPatch, real_mnist_dir: Path) -> Path:
    """Point the loader at the real MNIST (conftest: ../shared, or fetched once into the
    user cache); only the tests that train ask for it."""
    monkeypatch.setenv("TINYGRAD_EDU_DATA", str(real_mnist_dir))
    return real_mnist_dir


pytestmark = pytest.mark.usefixtures("restore_blas_threads")


# --------------------------------------------------------------------------- help and usage


def test_train_help_lists_every_option_with_defaults(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["train", "--help"], capsys)
    assert code == 0
    for option in ("--model", "--activation", "--epochs", "--batch-size", "--lr", "--optimizer",
                   "--momentum", "--weight-decay", "--seed", "--data", "--out", "--limit",
                   "--threads", "--no-progress"):
        assert option in out
    assert "mlp: 15" in out and "cnn: " in out and "checkpoints/mnist-MODEL.npz" in out


def test_eval_help(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["eval", "--help"], capsys)
    assert code == 0 and "--checkpoint" in out


def test_top_level_help_lists_train_and_eval(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0 and "train" in out and "eval" in out


@pytest.mark.parametrize("argv", [
    ["train", "--model", "resnet"],
    ["train", "--model", "mlp", "--activation", "swishy"],
    ["train", "--model", "mlp", "--optimizer", "lbfgs"],
    ["train", "--model", "mlp", "--epochs", "0"],
    ["train", "--model", "mlp", "--lr", "-1"],
    ["train", "--model", "mlp", "--epochs", "many"],
    ["train"],
    ["eval"],
])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert "error:" in err


# --------------------------------------------------------------------------- errors


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


def test_corrupt_data_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for name in MNIST_SHA256:
        (tmp_path / name).write_bytes(b"\x00\x00\x08\x03 not really MNIST")
    code, _, err = run_cli(["train", "--model", "mlp", "--data", str(tmp_path),
                             "--out", str(tmp_path / "m.npz")], capsys)
    assert code == 1
    (error,) = _error_lines(err)  # progress lines may precede it; the error is one line
    assert error.startswith("tinygrad-edu train: error: ")
    assert str(tmp_path) in error
    assert not (tmp_path / "m.npz").exists()


def test_unwritable_checkpoint_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run_cli(["train", "--model", "mlp", "--epochs", "1", "--limit", "200",
                              "--no-progress", "--out", str(blocker / "m.npz")], capsys)
    assert code == 2  # found before the data is loaded or an epoch is trained
    (error,) = _error_lines(err)
    assert f"--out {blocker / 'm.npz'}: {blocker} is not a folder" in error
    assert "MNIST" not in err


def test_eval_of_a_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["eval", "--checkpoint", str(tmp_path / "none.npz")], capsys)
    assert code == 1
    assert "none.npz" in err and err.count("\n") == 1


def test_eval_of_a_corrupt_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    code, _, err = run_cli(["eval", "--checkpoint", str(path)], capsys)
    assert code == 1 and "bad.npz" in err and "corrupt or truncated" in err


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
    mnist_env: Path,
) -> None:
    real = F.cross_entropy
    calls = {"n": 0}

    def nan_from_step_10(logits, labels):  # 1000 images / batch 128 = 8 steps per epoch
        calls["n"] += 1
        loss = real(logits, labels)
        return loss * math.nan if calls["n"] >= 10 else loss

    monkeypatch.setattr(F, "cross_entropy", nan_from_step_10)
    out_file = tmp_path / "run.npz"
    code, out, err = run_cli(["train", "--model", "mlp", "--epochs", "3", "--limit", "1000",
                                "--out", str(out_file), "--no-progress"], capsys)
    assert code == 1
    assert "epoch 1/3" in out and "epoch 2/3" not in out
    assert "loss is nan at epoch 2, step 2" in err
    assert "last good checkpoint (epoch 1)" in err and str(out_file) in err
    state, _, meta = read_checkpoint(out_file)
    assert meta["epoch"] == 1
    assert all(np.isfinite(a).all() for a in state.values())


# --------------------------------------------------------------------------- end to end


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _python(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # TINYGRAD_EDU_DATA from mnist_env
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300, check=False)


def _python_m(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return _python("-m", "tinygrad_edu", *args, cwd=cwd)


def test_train_then_eval_end_to_end(tmp_path: Path, mnist_env: Path) -> None:
    train = _python_m("train", "--model", "mlp", "--epochs", "1", "--limit", "2000",
                      "--no-progress", "--out", "ck/mlp.npz", cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    lines = [line for line in train.stdout.splitlines() if line.startswith("epoch")]
    assert len(lines) == 1
    match = re.search(r"loss [\d.]+  train acc [\d.]+%  test acc ([\d.]+)%  [\d.]+ s  [\d,]+ img/s",
                      lines[0])
    assert match, lines[0]
    trained = float(match.group(1))
    assert trained > 60.0  # 16 steps on 2,000 images: measured 73.9%
    checkpoint = tmp_path / "ck" / "mlp.npz"
    assert checkpoint.is_file()
    with np.load(checkpoint, allow_pickle=False) as archive:
        assert "param/layers.0.weight" in archive.files

    evaluated = _python_m("eval", "--checkpoint", str(checkpoint), cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"test accuracy: {trained:.2f}%" in evaluated.stdout
    assert "model:        mlp (" in evaluated.stdout and "epoch 1 of 1" in evaluated.stdout


def test_default_checkpoint_path_and_same_seed_same_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
    mnist_env: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--model", "mlp", "--epochs", "2", "--limit", "600", "--no-progress"]

    def epoch_numbers() -> list[str]:
        code, out, _ = run_cli(argv, capsys)
        assert code == 0
        return [re.sub(r"\s+[\d.]+ s\s+[\d,]+ img/s", "", line)
                for line in out.splitlines() if line.startswith("epoch")]

    first = epoch_numbers()
    assert (tmp_path / "checkpoints" / "mnist-mlp.npz").is_file()
    assert epoch_numbers() == first and len(first) == 2


@pytest.mark.parametrize(("script", "limit"), [("train_mnist_mlp.py", "3000"),
                                               ("train_mnist_cnn.py", "320")])
def test_examples_run(script: str, limit: str, tmp_path: Path, mnist_env: Path) -> None:
    done = _python(str(EXAMPLES / script), "--epochs", "1", "--limit", limit, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    match = re.search(r"epoch 1: last loss [\d.]+, test accuracy ([\d.]+)%", done.stdout)
    assert match, done.stdout
    assert float(match.group(1)) > 30.0  # far above chance (10%) after a few steps
