"""Every op in the registry is gradient-tested somewhere.

Each test module that gradient-tests registry ops declares a module-level ``TESTED_OPS``
set of op names.  This test imports every ``tests/test_*.py`` module (reusing the module
pytest already imported), collects the union, and requires it to contain every name in
:data:`REGISTRY` (the package's own ops, ``tinygrad_edu.nn``'s included).  Ops registered
by test files themselves are not the package's and are ignored.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import tinygrad_edu.nn  # noqa: F401  (the nn layer ops are registry entries too)
from tinygrad_edu import REGISTRY

TESTS_DIR = Path(__file__).resolve().parent


def _test_module(path: Path) -> ModuleType:
    """The module of ``path``: the one pytest imported if any, else imported now."""
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve() == path:
            return module
    if str(TESTS_DIR) not in sys.path:  # pytest's default "prepend" import mode does this
        sys.path.insert(0, str(TESTS_DIR))
    return importlib.import_module(path.stem)


def _declared() -> dict[str, set[str]]:
    declared = {}
    for path in sorted(TESTS_DIR.glob("test_*.py")):
        module = _test_module(path.resolve())
        names = getattr(module, "TESTED_OPS", None)
        if names is not None:
            declared[path.name] = set(names)
    return declared


def _package_op(op) -> bool:
    """True for ops defined inside tinygrad_edu (not by a test registering its own)."""
    fn = getattr(op, "f", None) or getattr(op, "forward", None)
    module = getattr(fn, "__module__", None) or type(op).__module__
    return module.split(".")[0] == "tinygrad_edu"


def test_every_registry_op_is_tested():
    declared = _declared()
    assert "test_registry_gradients.py" in declared
    covered = set().union(*declared.values())
    package_ops = {name for name, op in REGISTRY.items() if _package_op(op)}
    missing = sorted(package_ops - covered)
    assert not missing, (
        f"registry ops without a gradient test: {missing}. Add a test and list the name in "
        f"a module-level TESTED_OPS set (modules declaring one: {sorted(declared)})"
    )


def test_declared_names_exist_in_the_registry():
    unknown = {
        module: sorted(names - set(REGISTRY))
        for module, names in _declared().items()
        if names - set(REGISTRY)
    }
    assert not unknown, f"TESTED_OPS names that are not registry ops: {unknown}"


def test_core_op_modules_are_counted():
    # the filter above must not hide the package's own ops
    assert all(_package_op(REGISTRY[name]) for name in ("add", "relu", "matmul", "softmax",
                                                        "cross_entropy", "gelu"))
