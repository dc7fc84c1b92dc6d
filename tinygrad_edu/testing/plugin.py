"""pytest plugin (registered through the ``pytest11`` entry point): gradient tests without
boilerplate.

* the ``gradcheck`` fixture: ``gradcheck(fn, inputs, **tolerances)`` fails the test with
  the checker's message (input, element, analytic and numerical value) on a mismatch;
* a hypothesis profile ``tinygrad-edu`` suited to gradient checks (no deadline: the first
  call of a graph is slower than the rest; 50 examples), selected with
  ``pytest --hypothesis-profile=tinygrad-edu``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .gradcheck import GradcheckError
from .gradcheck import gradcheck as _gradcheck

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


@pytest.fixture
def gradcheck() -> Callable[..., bool]:
    """``gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)`` that fails the test cleanly."""

    def check(fn: Callable, inputs, **tolerances) -> bool:
        __tracebackhide__ = True
        try:
            return _gradcheck(fn, inputs, **tolerances)
        except GradcheckError as exc:
            pytest.fail(str(exc), pytrace=False)

    return check
