"""How the fast-backward tests check an engine's order of op results (autograd's
``results_first``, value.py's ``_outputs_first``): shared by test_tensor_fast and
test_value_fast."""

from __future__ import annotations

from typing import Any


def assert_results_first(order: list, out: Any) -> None:
    """``order`` holds every op result ``out`` depends on once, no leaf, ``out`` first and
    each result before all of its parents that are results."""
    position = {id(n): i for i, n in enumerate(order)}
    assert len(position) == len(order) and order[0] is out
    ops = [n for n in out.topological_order() if n.op is not None]
    assert {id(n) for n in ops} == set(position)  # every op result once, no leaf
    for node in order:
        for parent in node.parents:
            if parent.op is not None:
                assert position[id(parent)] > position[id(node)]
