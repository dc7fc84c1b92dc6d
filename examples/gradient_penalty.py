"""A gradient penalty in a training step ("double backpropagation", Drucker & LeCun, 1992).

    python examples/gradient_penalty.py [--fast]

The classifier is trained on   L(θ) = CE(f_θ(x), y) + λ · (1/N) Σₙ ‖∂CE/∂xₙ‖²,
which asks the loss to be flat around the training inputs (robustness to small input
changes; WGAN-GP penalises the same kind of input gradient).  The penalty contains a
gradient, so the step needs the gradient *of* a gradient:

* ``gx = grad(ce, x, create_graph=True)`` -- ∂CE/∂x as a node depending on θ;
* ``(ce + λ·(gx·gx).sum()·N).backward()`` -- an ordinary backward through both the forward
  pass and the recorded backward pass fills every parameter's ``.grad``.

Trained twice for 30 Adam steps from the same start, with and without the penalty: the
penalised model has a far smaller input gradient at a similar accuracy.  (Trained much
longer, the unpenalised model's softmax saturates and its input gradient vanishes too.)
"""

from __future__ import annotations

import argparse

import numpy as np

from tinygrad_edu import Tensor, cross_entropy, grad, nn, optim


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half-moons in 2-D with labels 0/1."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    y = rng.integers(0, 2, n)
    x = np.stack([np.cos(t) + y * 1.0 - 0.5, np.sin(t) * (1 - 2 * y) + 0.25 * (2 * y - 1)], 1)
    return x + 0.1 * rng.standard_normal((n, 2)), y


def make_model(seed: int = 0) -> nn.Module:
    model = nn.MLP([2, 16, 16, 2], activation="tanh", rng=seed)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    return model


def penalised_loss(model: nn.Module, x: np.ndarray, y: np.ndarray, lam: float
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """(total, cross-entropy, mean squared input-gradient norm), all nodes of θ."""
    xt = Tensor(x, dtype=np.float64, requires_grad=True)
    ce = cross_entropy(model(xt), y)
    (gx,) = grad(ce, xt, create_graph=True)  # ∂CE/∂x: (N, 2), a node depending on θ
    n = x.shape[0]
    penalty = (gx * gx).sum() * float(n)  # (1/N) Σ ‖∂CEₙ/∂xₙ‖², as CE is a mean over n
    return ce + lam * penalty, ce, penalty


def train(lam: float, steps: int, x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict:
    model = make_model(seed)
    opt = optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        total, _, _ = penalised_loss(model, x, y, lam)
        opt.zero_grad()
        total.backward()  # through the forward and the recorded backward pass
        opt.step()
    _, ce, penalty = penalised_loss(model, x, y, lam)
    accuracy = float((model(Tensor(x, dtype=np.float64)).data.argmax(1) == y).mean())
    return {"model": model, "ce": ce.item(), "penalty": penalty.item(), "accuracy": accuracy}


def run(fast: bool = False) -> dict:
    x, y = make_data(64 if fast else 400)
    steps = 30  # early in training, where the unpenalised input gradient is large
    results = {lam: train(lam, steps, x, y) for lam in (0.0, 1.0)}
    print(f"{'λ':>4}  {'cross-entropy':>13}  {'mean ‖∂CE/∂x‖²':>15}  {'accuracy':>8}")
    for lam, r in results.items():
        print(f"{lam:>4}  {r['ce']:>13.4f}  {r['penalty']:>15.5f}  {r['accuracy']:>8.3f}")
    return {"x": x, "y": y, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description="Training with a gradient penalty.")
    parser.add_argument("--fast", action="store_true", help="fewer points and steps")
    run(parser.parse_args().fast)


if __name__ == "__main__":
    main()
