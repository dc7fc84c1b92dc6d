"""The curvature of a network's loss: Hessian-vector products and the top eigenvalue.

    python examples/hessian_eigenvalue.py [--fast]

The Hessian H of the loss L(θ) has one row per parameter (242,762² numbers for the MNIST
MLP: never formed).  What the engine gives cheaply is its product with a vector v:

    H v = ∂/∂θ ⟨∂L/∂θ, v⟩,

one backward pass recorded with ``create_graph=True`` (∂L/∂θ as nodes depending on θ)
and one more backward through it (``grad(g, θ, grad_outputs=v)``).  Power iteration
v ← H v / ‖H v‖ then finds the eigenvalue of largest magnitude: the sharpest direction of
the loss surface, which bounds the stable learning rate of gradient descent (lr < 2/λ).
"""

from __future__ import annotations

import argparse

import numpy as np

from tinygrad_edu import Tensor, cross_entropy, grad, nn


def make_problem(fast: bool, seed: int = 0) -> tuple[nn.Module, np.ndarray, np.ndarray]:
    """A tanh MLP (float64) and a synthetic 3-class data set: blobs around 3 centres."""
    rng = np.random.default_rng(seed)
    sizes = [4, 6, 3] if fast else [20, 64, 32, 3]
    n = 24 if fast else 512
    centres = rng.standard_normal((3, sizes[0])) * 2.0
    y = rng.integers(0, 3, n)
    x = centres[y] + rng.standard_normal((n, sizes[0]))
    model = nn.MLP(sizes, activation="tanh", rng=seed)
    for p in model.parameters():  # float64: the checks compare to finite differences
        p.data = p.data.astype(np.float64)
    return model, x, y


def loss_of(model: nn.Module, x: np.ndarray, y: np.ndarray) -> Tensor:
    return cross_entropy(model(Tensor(x, dtype=np.float64)), y)


def hvp(model: nn.Module, x: np.ndarray, y: np.ndarray, v: list[np.ndarray]) -> list[np.ndarray]:
    """H v for the loss at the current parameters (v: one array per parameter)."""
    params = list(model.parameters())
    g = grad(loss_of(model, x, y), params, create_graph=True)
    return [h.data for h in grad(g, params, grad_outputs=v)]


def top_eigenvalue(model: nn.Module, x: np.ndarray, y: np.ndarray, iterations: int,
                   seed: int = 1) -> tuple[float, list[float]]:
    """Power iteration on H: the Rayleigh quotient ⟨v, Hv⟩ at each step (v normalised)."""
    rng = np.random.default_rng(seed)
    v = [rng.standard_normal(p.data.shape) for p in model.parameters()]
    estimates = []
    for _ in range(iterations):
        norm = np.sqrt(sum(float((a * a).sum()) for a in v))
        v = [a / norm for a in v]
        hv = hvp(model, x, y, v)
        estimates.append(sum(float((a * b).sum()) for a, b in zip(v, hv)))
        v = hv
    return estimates[-1], estimates


def run(fast: bool = False) -> dict:
    model, x, y = make_problem(fast)
    n_params = sum(p.data.size for p in model.parameters())
    lam, estimates = top_eigenvalue(model, x, y, iterations=60 if fast else 40)
    print(f"{n_params} parameters, {len(x)} examples, loss {loss_of(model, x, y).item():.4f}")
    for k in (0, 1, 2, 4, 9, len(estimates) - 1):
        print(f"  power iteration {k + 1:>3}: ⟨v, Hv⟩ = {estimates[k]:.8f}")
    if lam > 0:
        print(f"top eigenvalue of the Hessian ≈ {lam:.6f}: gradient descent is stable for "
              f"lr < 2/λ ≈ {2 / lam:.3f}")
    else:
        print(f"largest eigenvalue in magnitude ≈ {lam:.6f} < 0: a direction of negative "
              "curvature (a saddle, not a minimum)")
    return {"model": model, "x": x, "y": y, "eigenvalue": lam, "estimates": estimates}


def main() -> None:
    parser = argparse.ArgumentParser(description="Top Hessian eigenvalue of an MLP loss.")
    parser.add_argument("--fast", action="store_true", help="a tiny network")
    run(parser.parse_args().fast)


if __name__ == "__main__":
    main()
