"""The registry's elementwise entries as pytest parameters, shared by the first-order
(``test_registry_gradients.py``) and second-order (``test_higher_order.py``) checks."""

from __future__ import annotations

import pytest

from tinygrad_edu import REGISTRY


def registry_cases(kind: str, variants: dict[str, list[dict]]) -> list:
    """One ``pytest.param(op, params)`` per entry of ``kind`` ("unary", "binary"): its
    defaults, then each parameter variant in ``variants[op.name]``; ids like
    ``leaky_relu-alpha=0.2``."""
    cases = []
    for op in REGISTRY.values():
        if op.kind != kind:
            continue
        for params in [{}, *variants.get(op.name, [])]:
            label = op.name + "".join(f"-{k}={v}" for k, v in params.items())
            cases.append(pytest.param(op, params, id=label))
    return cases
