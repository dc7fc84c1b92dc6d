"""The examples in the package's docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tinygrad_edu
from tinygrad_edu.registry import REGISTRY


def _modules() -> list[str]:
    names = [tinygrad_edu.__name__]
    for info in pkgutil.walk_packages(tinygrad_edu.__path__, prefix="tinygrad_edu."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    before = dict(REGISTRY)
    try:
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    finally:  # examples may register demo ops; keep the registry as it was
        REGISTRY.clear()
        REGISTRY.update(before)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_some_modules_have_examples() -> None:
    """Guard against the collection above silently finding nothing to run."""
    finder = doctest.DocTestFinder()
    counted = sum(
        len(t.examples) for n in _modules() for t in finder.find(importlib.import_module(n))
    )
    assert counted >= 10
