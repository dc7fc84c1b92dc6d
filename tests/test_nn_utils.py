"""nn.utils: clipping matches its definition; the gradient-norm report and its figure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_edu import Tensor, Value, nn, viz
from tinygrad_edu.nn import utils


def _params_with_grads(rng: np.random.Generator, scale: float = 1.0) -> list[Tensor]:
    params = []
    for shape in [(3, 4), (4,), (2, 2, 2)]:
        p = nn.Parameter(rng.standard_normal(shape))
        p.grad = scale * rng.standard_normal(shape)
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, math.inf])
def test_clip_grad_norm_matches_definition(norm_type: float) -> None:
    rng = np.random.default_rng(0)
    params = _params_with_grads(rng, scale=5.0)
    before = [p.grad.copy() for p in params]
    flat = np.concatenate([g.ravel() for g in before])
    expected = float(np.linalg.norm(flat, ord=norm_type))
    max_norm = 0.5
    total = utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    assert total == pytest.approx(expected, rel=1e-12)
    coef = max_norm / (expected + 1e-6)
    for p, g in zip(params, before):
        np.testing.assert_allclose(p.grad, g * coef, rtol=1e-12)
    after = np.concatenate([p.grad.ravel() for p in params])
    assert np.linalg.norm(after, ord=norm_type) == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_norm_leaves_small_gradients_alone_and_skips_none() -> None:
    rng = np.random.default_rng(1)
    params = _params_with_grads(rng, scale=0.01)
    params.append(nn.Parameter(np.ones(3)))  # no grad
    before = [None if p.grad is None else p.grad.copy() for p in params]
    total = utils.clip_grad_norm_(params, max_norm=10.0)
    assert total < 10.0
    for p, g in zip(params, before):
        assert (p.grad is None) if g is None else np.array_equal(p.grad, g)


def test_clip_grad_norm_keeps_dtype_and_does_not_write_into_the_old_array() -> None:
    p = nn.Parameter(np.zeros(4, np.float32))
    old = np.full(4, 10.0, np.float32)
    p.grad = old
    utils.clip_grad_norm_(p, 1.0)
    assert p.grad.dtype == np.float32
    assert np.all(old == 10.0)  # the array may be shared: never scaled in place
    assert float(np.linalg.norm(p.grad)) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_nonfinite() -> None:
    p = nn.Parameter(np.zeros(2))
    p.grad = np.array([1.0, np.nan])
    with pytest.raises(RuntimeError, match="NaN or inf"):
        utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert math.isnan(utils.clip_grad_norm_([p], 1.0))
    with pytest.raises(ValueError, match="max_norm"):
        utils.clip_grad_norm_([p], 0.0)


def test_clip_grad_value_matches_definition() -> None:
    rng = np.random.default_rng(2)
    params = _params_with_grads(rng, scale=3.0)
    before = [p.grad.copy() for p in params]
    utils.clip_grad_value_(params, 1.5)
    for p, g in zip(params, before):
        np.testing.assert_array_equal(p.grad, np.minimum(np.maximum(g, -1.5), 1.5))
    v = Value(1.0)
    v.grad = -7.0
    utils.clip_grad_value_([v], 2.0)
    assert v.grad == -2.0


def test_parameters_to_vector_round_trip() -> None:
    model = nn.MLP([3, 4, 2])
    vec = utils.parameters_to_vector(model.parameters())
    assert vec.shape == (model.num_parameters(),)
    first = model.parameters()[0]
    np.testing.assert_array_equal(vec[: first.data.size], first.data.ravel())
    utils.vector_to_parameters(np.arange(vec.size, dtype=np.float64), model.parameters())
    again = utils.parameters_to_vector(model.parameters())
    np.testing.assert_array_equal(again, np.arange(vec.size))
    with pytest.raises(ValueError, match=f"expected a vector of {vec.size} values"):
        utils.vector_to_parameters(np.zeros(vec.size + 1), model.parameters())


def _trained_step(model: nn.Module) -> None:
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((5, 3)))
    model(x).sum().backward()


def test_grad_norms_per_parameter_and_per_layer() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    unused = nn.Linear(2, 2)
    model.extra = unused  # registered, never called: no gradient
    _trained_step(model)
    report = utils.grad_norms(model)
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        assert report.per_parameter[name] == pytest.approx(float(np.linalg.norm(p.grad)))
    w, b = model[0].weight.grad, model[0].bias.grad
    assert report.per_layer["0"] == pytest.approx(math.sqrt((w**2).sum() + (b**2).sum()))
    assert list(report.per_layer) == ["0", "2"]
    assert report.without_grad == ["extra.weight", "extra.bias"]
    text = str(report)
    assert "extra" in text and "no grad" in text
    line0 = next(line for line in text.splitlines() if line.startswith("0 "))
    assert f"{report.per_layer['0']:.3e}" in line0
    flat = np.concatenate([p.grad.ravel() for p in model.parameters() if p.grad is not None])
    assert report.total == pytest.approx(float(np.linalg.norm(flat)))
    assert utils.clip_grad_norm_(model.parameters(), 1e9) == pytest.approx(report.total)


def test_grad_norms_rejects_other_things() -> None:
    with pytest.raises(TypeError, match="Module or a dict"):
        utils.grad_norms([1, 2])


def test_plot_grad_flow_writes_a_png(tmp_path) -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 2))
    _trained_step(model)
    path = tmp_path / "flow.png"
    fig = viz.plot_grad_flow({"a": model, "b": utils.grad_norms(model)}, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "2"]
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), list(utils.grad_norms(model).per_layer.values()))
    with pytest.raises(ValueError, match="no layer has a gradient"):
        viz.plot_grad_flow(nn.Linear(2, 2))


def test_grad_norm_recorder_means_over_passes() -> None:
    rng = np.random.default_rng(6)
    model = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.Tanh(), nn.Linear(4, 2, rng=rng))
    recorder = utils.GradNormRecorder(model)
    layer_norms = []
    for scale in (1.0, 5.0):
        model.zero_grad()
        (model(Tensor(scale * rng.standard_normal((5, 3)))) ** 2).sum().backward()
        layer_norms.append(utils.grad_norms(model).per_layer)
    assert recorder.passes == 2
    report = recorder.summary()
    for layer in ("0", "2"):
        expected = (layer_norms[0][layer] + layer_norms[1][layer]) / 2
        assert report.per_layer[layer] == pytest.approx(expected, rel=1e-12)
    assert recorder.passes == 0  # reset by summary()
    recorder.remove()
    model(Tensor(np.ones((1, 3)))).sum().backward()
    assert recorder.passes == 0  # removed hooks record nothing
