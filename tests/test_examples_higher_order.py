"""The higher-order examples in ``examples/`` run in their fast mode and show what they claim."""

from __future__ import annotations

import importlib.util
import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import grad

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_newton_converges_quadratically(capsys):
    newton = _load("newton")
    out = newton.run(fast=True)
    assert "|x − x*|" in capsys.readouterr().out
    for x, d1, d2 in out["history"][:-1]:  # the engine's f′ and f″ are the closed forms
        assert d1 == pytest.approx(math.exp(x) - 2 + (x - 1), rel=1e-13, abs=1e-15)
        assert d2 == pytest.approx(math.exp(x) + 1, rel=1e-14)
    e, star = out["errors"], out["x_star"]
    assert e[-1] < 1e-11
    rate = math.exp(star) / (2 * (math.exp(star) + 1))  # f‴/(2f″) at the minimum
    for k in (3, 4, 5):  # e_{k+1} ≈ rate · e_k²: the digits double at every step
        assert e[k + 1] / e[k] ** 2 == pytest.approx(rate, rel=0.1)


def test_hessian_vector_products_and_top_eigenvalue(capsys):
    ex = _load("hessian_eigenvalue")
    out = ex.run(fast=True)
    model, x, y = out["model"], out["x"], out["y"]
    params = list(model.parameters())
    sizes = [p.data.size for p in params]
    n = sum(sizes)

    def unflat(v):
        parts, start = [], 0
        for p, s in zip(params, sizes):
            parts.append(v[start:start + s].reshape(p.data.shape))
            start += s
        return parts

    hessian = np.stack([np.concatenate([h.ravel() for h in ex.hvp(model, x, y,
                                                                    unflat(np.eye(n)[i]))])
                        for i in range(n)])
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-12)
    eigenvalues = np.linalg.eigvalsh(hessian)
    top = eigenvalues[np.argmax(np.abs(eigenvalues))]
    assert out["eigenvalue"] == pytest.approx(top, rel=1e-6)
    # one column against central differences of the gradient
    j, eps = 7, 1e-6

    original = [p.data.copy() for p in params]

    def gradient_at(delta):
        flat = np.concatenate([o.ravel() for o in original])
        flat[j] += delta
        for p, part in zip(params, unflat(flat)):
            p.data = part.copy()
        g = grad(ex.loss_of(model, x, y), params)
        return np.concatenate([t.data.ravel() for t in g])

    column = (gradient_at(eps) - gradient_at(-eps)) / (2 * eps)
    for p, o in zip(params, original):
        p.data = o
    np.testing.assert_allclose(hessian[:, j], column, rtol=1e-5, atol=1e-8)
    assert f"⟨v, Hv⟩ = {out['eigenvalue']:.8f}" in capsys.readouterr().out


def test_gradient_penalty_step(capsys):
    ex = _load("gradient_penalty")
    out = ex.run(fast=True)
    plain, penalised = out["results"][0.0], out["results"][1.0]
    assert penalised["penalty"] < 0.2 * plain["penalty"]
    assert plain["accuracy"] >= 0.85 and penalised["accuracy"] >= 0.85
    assert "mean ‖∂CE/∂x‖²" in capsys.readouterr().out
    # the step's gradient (through the recorded backward pass) against central differences
    model = ex.make_model(seed=3)
    x, y = out["x"][:16], out["y"][:16]
    w = model.layers[0].weight
    total, _, _ = ex.penalised_loss(model, x, y, 1.0)
    total.backward()
    for idx in [(0, 0), (5, 1), (11, 0)]:
        original = w.data[idx]
        w.data[idx] = original + 1e-6
        plus = ex.penalised_loss(model, x, y, 1.0)[0].item()
        w.data[idx] = original - 1e-6
        minus = ex.penalised_loss(model, x, y, 1.0)[0].item()
        w.data[idx] = original
        assert w.grad[idx] == pytest.approx((plus - minus) / 2e-6, rel=1e-6, abs=1e-9)


def test_taylor_expansion_of_tanh(capsys):
    ex = _load("taylor")
    out = ex.run(fast=True, activation="tanh", a=0.5)
    t = math.tanh(0.5)
    closed = [t, 1 - t * t, -t * (1 - t * t), (6 * t * t - 2) * (1 - t * t) / 6]
    np.testing.assert_allclose(out["coefficients"][:4], closed, rtol=1e-13)
    errors = list(out["errors"].values())
    assert all(b < a for a, b in itertools.pairwise(errors))
    assert out["errors"][5] < 1e-3
    assert "max |f − Tₙ|" in capsys.readouterr().out
