"""pytest plugin (registered through the ``pytest11`` entry point): gradient tests without
boilerplate.

* the ``gradcheck`` fixture: ``gradcheck(fn, inputs, **tolerances)`` fails the test with
  the checker's message (input, element and its value, analytic and numerical value, the
  suspect op and its formula) on a mismatch, as an ``AssertionError``;
* the ``gradgradcheck`` fixture: the same for second derivatives (the gradient of the
  gradient, through ``create_graph=True``), with the same failure report;
* the ``assert_gradients_match`` fixture: backpropagates ``fn(*inputs)`` and compares each
  input's ``.grad`` with the gradient you derived by hand, naming the input and element
  that differ;
* a hypothesis profile ``tinygrad-edu`` suited to gradient checks (no deadline: the first
  call of a graph is slower than the rest; 50 examples), selected with
  ``pytest --hypothesis-profile=tinygrad-edu``.

A user's gradient test then reads::

    def test_my_op(gradcheck):
        x = Tensor(np.array([0.5, 1.5]), dtype=np.float64, requires_grad=True)
        assert gradcheck(lambda t: my_op(t), [x])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from .gradcheck import gradcheck as _gradcheck
from .gradgradcheck import gradgradcheck as _gradgradcheck

PROFILE = "tinygrad-edu"

try:  # hypothesis is optional for users who only want the fixture
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        PROFILE,
        deadline=None,
        max_examples=50,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True,
    )
except ImportError:  # pragma: no cover - exercised only without hypothesis installed
    pass


@pytest.fixture(scope="session")  # stateless: usable inside hypothesis @given tests too
def gradcheck() -> Callable[..., bool]:
    """``gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)``: a mismatch raises
    :class:`~tinygrad_edu.testing.GradcheckError`, an ``AssertionError``, so pytest shows
    the test's failing line and, under ``@given``, hypothesis its "Falsifying example"."""

    def check(fn: Callable, inputs, **tolerances) -> bool:
        __tracebackhide__ = True
        return _gradcheck(fn, inputs, **tolerances)

    return check


@pytest.fixture(scope="session")
def gradgradcheck() -> Callable[..., bool]:
    """``gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3)``
    (see :func:`tinygrad_edu.testing.gradgradcheck`): a mismatch raises its
    :class:`~tinygrad_edu.testing.GradcheckError` as is, like the ``gradcheck`` fixture."""

    def check(fn: Callable, inputs, **options) -> bool:
        __tracebackhide__ = True
        return _gradgradcheck(fn, inputs, **options)

    return check


def gradients_match(
    fn: Callable,
    inputs: Sequence[Any],
    expected: Sequence[Any],
    rtol: float = 1e-7,
    atol: float = 1e-12,
) -> None:
    """Backpropagate ``fn(*inputs)`` (a scalar) and compare each input's ``.grad`` with
    ``expected`` (floats for Values, arrays for Tensors): ``|grad − expected| <= atol +
    rtol·|expected|`` element by element, else ``AssertionError`` naming input and element.

    The inputs' gradients are reset first, so the comparison is of this pass alone.
    """
    __tracebackhide__ = True
    inputs = list(inputs)
    expected = list(expected)
    if len(inputs) != len(expected):
        raise ValueError(f"{len(inputs)} inputs but {len(expected)} expected gradients")
    for x in inputs:
        x.zero_grad()
    fn(*inputs).backward()
    for i, (x, want) in enumerate(zip(inputs, expected)):
        want = np.asarray(want, dtype=np.float64)
        got = np.zeros(np.shape(x.data)) if x.grad is None else np.asarray(x.grad, np.float64)
        if got.shape != want.shape:
            raise AssertionError(
                f"input {i}: gradient has shape {got.shape}, expected shape {want.shape}"
            )
        bad = ~(np.abs(got - want) <= atol + rtol * np.abs(want))
        if bad.any():
            j = tuple(int(k) for k in np.argwhere(bad)[0])
            raise AssertionError(
                f"input {i}: gradient element {j}: got {got[j]!r}, expected {want[j]!r} "
                f"({int(bad.sum())} of {bad.size} elements differ; rtol {rtol:g}, atol {atol:g})"
            )


@pytest.fixture(scope="session")
def assert_gradients_match() -> Callable[..., None]:
    """``assert_gradients_match(fn, inputs, expected, rtol=1e-7, atol=1e-12)``: compare the
    backpropagated gradients with hand-derived ones (see :func:`gradients_match`)."""

    def check(fn: Callable, inputs, expected, **tolerances) -> None:
        __tracebackhide__ = True  # an AssertionError: the test's line and hypothesis's example
        gradients_match(fn, inputs, expected, **tolerances)

    return check
