"""``tinygrad-edu train --detect-anomaly`` and ``--log-grad-norms`` on a few MNIST images."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tinygrad_edu.cli import main

pytestmark = pytest.mark.usefixtures("restore_blas_threads")


@pytest.fixture(autouse=True)
def mnist_env(monkeypatch: pytest.MonkeyPatch, real_mnist_dir: Path) -> None:
    """The command finds the real MNIST (conftest: ../shared, or fetched once)."""
    monkeypatch.setenv("TINYGRAD_EDU_DATA", str(real_mnist_dir))


def _train(tmp_path: Path, capsys: pytest.CaptureFixture, *extra: str) -> tuple[int, str, str]:
    argv = ["train", "--model", "mlp", "--epochs", "2", "--limit", "512", "--no-progress",
            "--out", str(tmp_path / "run.npz"), *extra]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_log_grad_norms_prints_each_layer_each_epoch(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    code, out, _ = _train(tmp_path, capsys, "--log-grad-norms")
    assert code == 0
    for epoch in (1, 2):
        assert f"gradient norms, mean over the 4 steps of epoch {epoch}:" in out
    table = out.split("epoch 1:")[1].split("epoch 2/2")[0]
    assert [line.split()[0] for line in table.strip().splitlines()] == [
        "layer", "layers.0", "layers.2", "layers.4", "layers.6", "total"]


def test_detect_anomaly_names_the_first_bad_op(tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    code, _, err = _train(tmp_path, capsys, "--detect-anomaly", "--lr", "5")
    assert code == 1
    # The product overflows: inf, and where a BLAS kernel's partial sums meet inf − inf, NaN
    # too (OpenBLAS's Haswell kernel here: "nan/inf"; its SkylakeX kernel: "inf").
    assert re.search(r"tinygrad-edu train: error: forward of op 'linear' produced (nan/)?inf "
                     r"\(\d+ of 16384 values\)", err), err
    assert "created at " in err and "nn/linear.py:" in err and "in forward" in err
    assert "called from" in err
    from tinygrad_edu import is_anomaly_enabled

    assert not is_anomaly_enabled()  # the command restores the mode


def test_deep_sigmoid_example_shows_the_vanishing_gradient(tmp_path: Path,
                                                          real_mnist_dir: Path) -> None:
    """The README's example, in a few steps: the sigmoid net's first layer gets a gradient
    orders of magnitude below its last layer's; ReLU's stay within a factor of ten."""
    import os
    import re
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "examples" / "when_training_goes_wrong.py"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "TINYGRAD_EDU_DATA": str(real_mnist_dir)}
    figure = tmp_path / "flow.png"
    done = subprocess.run([sys.executable, str(script), "--steps", "3", "--limit", "384",
                           "--figure", str(figure)], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    ratios = dict(re.findall(r"20 × (\w+)\s*: .*\(ratio ([0-9.e+-]+)\)", done.stdout))
    assert float(ratios["sigmoid"]) < 1e-8
    assert 0.1 < float(ratios["relu"]) < 10
    assert figure.read_bytes()[:4] == b"\x89PNG"
