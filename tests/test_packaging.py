"""What a user installing or unpacking the project gets: the licence as declared, and an
sdist that holds everything its own test suite needs (``python -m pytest`` in the unpacked
tree)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from importlib.metadata import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: What the source tree holds besides the package and the tests: an sdist must carry it
#: all (the tests read the README, run the examples and benchmarks, check the docs' images).
SHIPPED = ("tinygrad_edu", "tests", "benchmarks", "examples", "docs")
TOP_FILES = ("LICENSE", "README.md", "pyproject.toml", "MANIFEST.in", ".ci/run")
NOT_SOURCE = {".venv", "build", "dist", "__pycache__", ".pytest_cache", ".hypothesis",
              ".ruff_cache", ".ipynb_checkpoints"}


def test_the_licence_is_mit_in_spdx_form_with_its_file() -> None:
    """The installed metadata (what pip and PyPI show) declares the SPDX expression and
    ships the licence text."""
    meta = metadata("tinygrad_edu")
    assert meta["License-Expression"] == "MIT"  # PEP 639, not the deprecated table form
    assert "LICENSE" in meta.get_all("License-File", [])
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    classifiers = meta.get_all("Classifier", [])
    # A licence classifier next to an SPDX expression is rejected by PEP 639 tools.
    assert not [c for c in classifiers if c.startswith("License ::")]
    assert "Intended Audience :: Education" in classifiers


def _source_files() -> set[str]:
    """The files of the source tree an sdist must ship: git's list in a clone; in an
    unpacked sdist (no .git), the files on disk minus caches and virtual environments."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                                capture_output=True).stdout.decode().split("\0")
        files = {f for f in listed if f and (ROOT / f).is_file()}
    else:
        files = {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
                 if p.is_file() and not NOT_SOURCE & set(p.relative_to(ROOT).parts)
                 and ".egg-info" not in p.as_posix() and p.name != "PKG-INFO"
                 and p.name != "setup.cfg"}
    return {f for f in files if f.split("/")[0] in SHIPPED or f in TOP_FILES}


@pytest.fixture(scope="module")
def sdist_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Build the sdist (setuptools' PEP 517 hook, no network) from a copy of the source
    files, and list the paths it holds, relative to its top folder."""
    tmp = tmp_path_factory.mktemp("sdist")
    src, out = tmp / "src", tmp / "out"
    for rel in _source_files() | {"pyproject.toml", "MANIFEST.in"}:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    out.mkdir()
    code = ("import sys; from setuptools import build_meta; "
            "print(build_meta.build_sdist(sys.argv[1]))")
    done = subprocess.run([sys.executable, "-c", code, str(out)], check=False, cwd=src,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"building the sdist failed:\n{done.stderr[-3000:]}"
    archive = out / done.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    top = names[0].split("/")[0]
    return {n[len(top) + 1:] for n in names}


def test_the_sdist_holds_every_file_its_tests_need(sdist_files: set[str]) -> None:
    assert "tests/conftest.py" in sdist_files  # the file the first sdist forgot
    missing = sorted(_source_files() - sdist_files)
    assert not missing, f"the sdist lacks {len(missing)} source file(s): {missing[:20]}"


def test_the_sdist_carries_no_caches_or_compiled_files(sdist_files: set[str]) -> None:
    junk = sorted(f for f in sdist_files
                  if NOT_SOURCE & set(f.split("/")) or f.endswith((".pyc", ".pyo")))
    assert not junk, junk
