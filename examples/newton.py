"""Newton's method on a scalar function, with the first and second derivative from the engine.

    python examples/newton.py [--fast]

To minimise f(x) = eˣ − 2x + ½(x − 1)², Newton's method steps x ← x − f′(x)/f″(x): it fits
the parabola with the same value, slope and curvature at x and jumps to its minimum.
Both derivatives come from ``grad``: the first with ``create_graph=True`` (the backward
pass recorded as a graph, a Value depending on x), the second by differentiating that.
Near the minimum the error squares at every step (quadratic convergence): the digits of
accuracy double.
"""

from __future__ import annotations

import argparse
import math

from tinygrad_edu import Value, grad


def f(x: Value) -> Value:
    """The function to minimise (strictly convex: f″ = eˣ + 1 > 0)."""
    return x.exp() - 2.0 * x + 0.5 * (x - 1.0) ** 2


def newton(x0: float, steps: int) -> list[tuple[float, float, float]]:
    """``steps`` Newton steps from ``x0``: (x, f′(x), f″(x)) before each step, and the end."""
    history = []
    x = x0
    for _ in range(steps):
        node = Value(x, label="x")
        (d1,) = grad(f(node), node, create_graph=True)  # f′(x) as a node of x
        (d2,) = grad(d1, node)  # f″(x)
        history.append((x, d1.data, d2.data))
        x = x - d1.data / d2.data
    history.append((x, float("nan"), float("nan")))
    return history


def solve_reference(x: float = 0.0) -> float:
    """The minimiser by bisection on f′(x) = eˣ − 2 + (x − 1) (for the check)."""
    lo, hi = -5.0, 5.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if math.exp(mid) - 3.0 + mid < 0 else (lo, mid)
    return 0.5 * (lo + hi)


def run(fast: bool = False) -> dict:
    """Run the method and print the table; returns the history and the errors."""
    steps = 6 if fast else 8
    history = newton(x0=3.0, steps=steps)
    star = solve_reference()
    errors = [abs(x - star) for x, _, _ in history]
    print(f"{'step':>4}  {'x':>20}  {'f′(x)':>12}  {'f″(x)':>10}  {'|x − x*|':>10}")
    for k, ((x, d1, d2), e) in enumerate(zip(history, errors)):
        print(f"{k:>4}  {x:>20.16f}  {d1:>12.4e}  {d2:>10.4f}  {e:>10.2e}")
    return {"history": history, "x_star": star, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description="Newton's method with engine derivatives.")
    parser.add_argument("--fast", action="store_true", help="fewer steps")
    run(parser.parse_args().fast)


if __name__ == "__main__":
    main()
