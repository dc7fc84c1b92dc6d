"""Each lesson in fast mode asserts its claim (not only that it ran); its figures are valid
PNGs; ``tinygrad-edu lesson`` lists and runs them.

MNIST comes through the loader: ``../shared/data/mnist`` when present (as in
tests/test_train.py), else the loader's own search and download.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import lessons
from tinygrad_edu.cli import main
from tinygrad_edu.datasets import load_mnist

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def mnist(real_mnist_dir: Path):
    """The real MNIST, standardised, loaded once for the module (conftest: ../shared, or
    fetched once into the user cache)."""
    return load_mnist(real_mnist_dir, download=False, normalize=True)


def check_figures(result: lessons.LessonResult, out: Path) -> None:
    """Every figure exists in ``out``, is a PNG (signature, IHDR) of a sensible size and
    decodes to an image that is not blank."""
    from matplotlib.image import imread

    assert result.figures, f"{result.name} wrote no figure"
    for path in result.figures:
        path = Path(path)
        assert path.parent == out and path.suffix == ".png"
        raw = path.read_bytes()
        assert raw[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
        assert raw[12:16] == b"IHDR"
        width, height = struct.unpack(">II", raw[16:24])
        assert width >= 400 and height >= 300, (path, width, height)
        pixels = imread(path)
        assert pixels.shape[:2] == (height, width)
        assert pixels[..., :3].std() > 0.05, f"{path} looks blank"


def run_fast(name: str, tmp_path: Path, data=None) -> lessons.LessonResult:
    result = lessons.run(name, fast=True, out=tmp_path, data=data)
    assert result.name == name and result.table.strip()
    check_figures(result, tmp_path)
    return result


def test_activations_claims(tmp_path):
    result = run_fast("activations", tmp_path)
    n = result.numbers
    # the drawn derivative is the derivative of the drawn function (central differences)
    assert max(n["fd_error"].values()) < 1e-8
    assert set(n["fd_error"]) >= {"sigmoid", "tanh", "relu", "gelu", "silu", "softplus"}
    # σ′ ≤ 1/4, reached at 0
    assert n["sigmoid_df_max"] <= 0.25 + 1e-15
    assert n["sigmoid_df_max"] == pytest.approx(0.25, abs=1e-12)
    assert n["sigmoid_df_argmax"] == 0.0
    # saturation: sigmoid beyond |x| ≈ 6.9 (σ′ = 1e-3 at x = ln(1/1e-3 − 2) ≈ 6.906),
    # ReLU on all x < 0, identity nowhere
    (lo, a), (b, hi) = n["saturation"]["sigmoid"]
    assert lo == -math.inf and hi == math.inf
    assert a == pytest.approx(-6.906, abs=2e-3) and b == pytest.approx(6.906, abs=2e-3)
    assert n["saturation"]["relu"] == [(-math.inf, 0.0)]
    assert n["saturation"]["identity"] == []
    assert n["f"]["tanh"][2] == 0.0 and n["df"]["tanh"][2] == 1.0


def test_backprop_by_hand_claims(tmp_path):
    result = run_fast("backprop-by-hand", tmp_path)
    n = result.numbers
    assert n["max_grad_diff"] < 1e-12      # δ and every weight gradient, engine and stepper
    assert n["max_update_diff"] < 1e-12    # one update by hand = one optim.SGD step
    hand = n["hand"]
    assert hand["h1"] == pytest.approx(0.593269992, abs=1e-9)  # the worked example's value
    assert hand["delta_o"] > 0 and hand["new_c"] < 0.60      # the step moves c downhill


def test_linear_collapse_claims(tmp_path, mnist):
    n = run_fast("linear-collapse", tmp_path, data=mnist).numbers
    assert n["max_collapse_error"] < 1e-10
    acc = n["accuracy"]
    logreg, ident, relu = (acc["logistic regression"], acc["deep MLP, identity"],
                           acc["deep MLP, ReLU"])
    assert abs(ident - logreg) < 0.02, acc
    assert relu > max(ident, logreg) + 0.02, acc


def test_vanishing_gradients_claims(tmp_path, mnist):
    n = run_fast("vanishing-gradients", tmp_path, data=mnist).numbers
    norms = n["norms"]
    assert set(norms) == {"sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu",
                          "silu", "softplus"}
    assert all(len(v) == 20 and all(np.isfinite(v)) for v in norms.values())
    assert norms["sigmoid"][0] < 1e-3 * norms["relu"][0]
    # the sigmoid's gradient shrinks layer after layer; ReLU's does not
    assert norms["sigmoid"][0] < 1e-6 * norms["sigmoid"][-1]
    assert 0.1 < norms["relu"][0] / norms["relu"][-1] < 10


def test_dead_relu_claims(tmp_path, mnist):
    n = run_fast("dead-relu", tmp_path, data=mnist).numbers
    high = n["ReLU, Adam lr 0.03"]["stats"]
    healthy = n["ReLU, SGD lr 0.05 (healthy)"]["stats"]
    assert high[0]["dead"] < 0.05          # alive at initialisation
    assert high[-1]["dead"] > 0.3          # the large steps killed many
    for name in ("Leaky ReLU, Adam lr 0.03", "ELU, Adam lr 0.03"):
        assert all(s["dead"] == 0.0 for s in n[name]["stats"])   # they cannot die
        assert n[name]["accuracy"] > n["ReLU, Adam lr 0.03"]["accuracy"] + 0.1
    assert healthy[-1]["dead"] < 0.1
    assert 0.4 < healthy[-1]["zeros"] < 0.95  # sparse: many exact zeros, few dead units


def test_activation_race_claims(tmp_path, mnist):
    n = run_fast("activation-race", tmp_path, data=mnist).numbers
    reach = n["epochs_to_target"]
    assert math.isfinite(reach["relu"])
    assert n["tanh_over_relu"] == reach["tanh"] / reach["relu"]
    final = {a: r["accuracy"][-1] for a, r in n["results"].items()}
    assert final["relu"] > final["sigmoid"] + 0.02, final
    assert n["cost_over_relu"]["sigmoid"] > 1.5     # exp costs more than max
    assert all(len(r["seconds"]) == 2 and min(r["seconds"]) > 0 for r in n["results"].values())


def test_init_claims(tmp_path):
    s = run_fast("init", tmp_path).numbers["stats"]
    he, xavier = s["ReLU + He"], s["ReLU + Xavier"]
    assert 0.2 < he["std"][-1] / he["std"][0] < 5           # He keeps the scale
    assert xavier["std"][-1] / xavier["std"][0] < 1e-2       # Xavier halves the variance
    assert he["alive"][-1] > 0.4 and xavier["alive"][-1] < 0.05
    assert s["tanh + Xavier"]["saturated"][0] < 0.02
    assert s["tanh + N(0, 1)"]["saturated"][-1] > 0.5
    assert s["tanh + Xavier"]["std"][-1] > 0.1               # tanh + Xavier does not die
    assert s["ReLU + He, bias 0.1"]["active"][0] > he["active"][0]
    growth = {name: v["grad"][0] / v["grad"][-1] for name, v in s.items()}
    assert growth["tanh + He"] > 2.0  # He puts tanh in the chaotic regime
    assert 0.7 < growth["tanh + Xavier"] < 1.5
    assert growth["tanh + N(0, 1)"] > 1e4
    assert growth["ReLU + He"] == pytest.approx(growth["ReLU + Xavier"], rel=1e-4)


def test_softmax_stability_claims(tmp_path):
    n = run_fast("softmax-stability", tmp_path).numbers
    f32 = n["float32"]
    for scale, (loss_err, grad_err) in f32["fused cross_entropy"].items():
        assert loss_err < 1e-6 and grad_err < 1e-6, scale
    naive = f32["naive exp/sum, log"]
    assert naive[1.0][1] < 1e-6                       # fine at small logits
    assert 0.5 < naive[40.0][1] < math.inf            # finite but wrong gradient
    assert all(naive[s] == (math.inf, math.inf) for s in (60.0, 100.0, 1000.0))  # NaN/inf
    assert f32["softmax, then log"][100.0] == (math.inf, math.inf)
    assert max(n["float64"]["fused cross_entropy"].values()) < 1e-12


def test_regularisation_claims(tmp_path, mnist):
    n = run_fast("regularisation", tmp_path, data=mnist).numbers
    pen = n["penalties"]
    none, l2, l1 = pen["none"], pen["L2 (weight decay 5e-3)"], pen["L1 (λ = 3e-4)"]
    assert l1["near_zero"] > 3 * max(l2["near_zero"], none["near_zero"])
    assert l2["mean_abs"] < none["mean_abs"]
    assert all(p["accuracy"][-1] > 0.85 for p in pen.values())
    bn = n["batch_norm"]
    assert isinstance(bn["plain, lr 0.5"], str) and "diverged" in bn["plain, lr 0.5"]
    assert bn["batch norm, lr 0.5"][-1] > 0.85


def test_every_lesson_has_a_test_and_a_notebook():
    tested = {name.removeprefix("test_").removesuffix("_claims").replace("_", "-")
              for name in globals() if name.endswith("_claims")}
    assert tested == set(lessons.LESSONS)
    examples = Path(__file__).resolve().parents[1] / "examples"
    for lesson in lessons.LESSONS.values():
        assert (examples / f"lesson_{lesson.module}.ipynb").is_file(), lesson.name


def test_cli_lists_the_lessons(capsys):
    assert main(["lesson"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(lessons.LESSONS)
    assert all(len(line.split(maxsplit=1)[1]) > 20 for line in lines)


def test_cli_runs_a_lesson(tmp_path, capsys):
    assert main(["lesson", "softmax-stability", "--fast", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "fused cross_entropy" in out and str(tmp_path / "softmax_stability.png") in out
    assert (tmp_path / "softmax_stability.png").read_bytes()[:8] == PNG_SIGNATURE


def test_cli_unknown_lesson(capsys):
    assert main(["lesson", "no-such-lesson"]) == 1
    err = capsys.readouterr().err
    assert "no lesson named 'no-such-lesson'" in err and "backprop-by-hand" in err
