"""Taylor expansions of an activation, with every derivative computed by the engine.

    python examples/taylor.py [--fast] [--activation tanh] [--at 0.5] [--png taylor.png]

Around a point a,   f(x) ≈ Σₖ₌₀ⁿ f⁽ᵏ⁾(a)/k! · (x − a)ᵏ.   The derivatives f⁽ᵏ⁾(a) come from
``tinygrad_edu.derivative``: ``grad`` applied k times with ``create_graph=True`` -- the
registry's local gradient, evaluated on graph nodes, differentiated again and again.  The
table shows how the worst error on [a − r, a + r] shrinks as the order grows (like rⁿ⁺¹
while r is inside the radius of convergence: π/2 from the nearest pole of tanh).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from tinygrad_edu import derivative


def taylor_coefficients(name: str, a: float, order: int) -> np.ndarray:
    """f⁽ᵏ⁾(a)/k! for k = 0..order."""
    return np.array([float(derivative(name, a, k)) / math.factorial(k)
                     for k in range(order + 1)])


def taylor(coefficients: np.ndarray, a: float, x: np.ndarray) -> np.ndarray:
    return sum(c * (x - a) ** k for k, c in enumerate(coefficients))


def run(fast: bool = False, activation: str = "tanh", a: float = 0.5,
        png: str | None = None) -> dict:
    orders = [1, 2, 3, 5] if fast else [1, 2, 3, 5, 7, 9]
    coefficients = taylor_coefficients(activation, a, max(orders))
    radius = 0.5
    x = np.linspace(a - radius, a + radius, 201)
    f = derivative(activation, x, 0)
    errors = {n: float(np.max(np.abs(taylor(coefficients[:n + 1], a, x) - f))) for n in orders}
    print(f"{activation} around a = {a}: f⁽ᵏ⁾(a)/k! = "
          + ", ".join(f"{c:.5g}" for c in coefficients))
    print(f"{'order':>5}  {'max |f − Tₙ| on [a − 0.5, a + 0.5]':>36}")
    for n, e in errors.items():
        print(f"{n:>5}  {e:>36.3e}")
    if png:
        _plot(activation, a, coefficients, orders, png)
        print(f"wrote {png}")
    return {"coefficients": coefficients, "errors": errors}


def _plot(activation: str, a: float, coefficients: np.ndarray, orders: list[int],
          path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.linspace(a - 2.5, a + 2.5, 400)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax.plot(x, derivative(activation, x, 0), color="black", lw=2.5, label=activation)
    for n in orders:
        ax.plot(x, taylor(coefficients[:n + 1], a, x), lw=1.2, label=f"order {n}")
    ax.axvline(a, color="grey", lw=0.8, ls=":")
    ax.set_ylim(-1.6, 1.6)
    ax.set_title(f"Taylor polynomials of {activation} around a = {a} (derivatives by the engine)")
    ax.set_xlabel("x")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description="Taylor expansion of an activation.")
    parser.add_argument("--fast", action="store_true", help="fewer orders")
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--at", type=float, default=0.5, help="the expansion point a")
    parser.add_argument("--png", default=None, help="write a figure")
    args = parser.parse_args()
    run(args.fast, args.activation, args.at, args.png)


if __name__ == "__main__":
    main()
