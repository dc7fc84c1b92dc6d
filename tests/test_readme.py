"""README.md is a promise: its examples run and print what it shows."""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_edu.viz.graph import dot_available

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, re.DOTALL)


def _examples_with_output() -> list[tuple[str, str]]:
    """Python blocks directly followed by a text block showing what they print."""
    pairs = []
    for (lang, code), (next_lang, shown) in itertools.pairwise(BLOCKS):
        if lang == "python" and next_lang == "text":
            pairs.append((code, shown))
    return pairs


@pytest.mark.parametrize("code, shown", _examples_with_output())
def test_example_prints_what_readme_shows(code: str, shown: str) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})  # noqa: S102 (our README)
    assert out.getvalue().strip() == shown.strip()


def test_readme_has_examples_with_output() -> None:
    assert len(_examples_with_output()) >= 2


def _pytest_file(tmp_path: Path, name: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run pytest on ``code`` saved as ``name`` in a fresh directory, as a user would."""
    (tmp_path / name).write_text(code, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
    )


def _block(first_line: str) -> str:
    return next(c for lang, c in BLOCKS if lang == "python" and c.startswith(first_line))


def test_custom_op_pytest_example_passes(tmp_path: Path) -> None:
    result = _pytest_file(tmp_path, "test_cube.py", _block("# test_cube.py"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_property_test_example_passes(tmp_path: Path) -> None:
    code = _block("# test_leaky_relu_property.py")
    result = _pytest_file(tmp_path, "test_leaky_relu_property.py", code)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_custom_op_example_catches_a_wrong_gradient(tmp_path: Path) -> None:
    code = _block("# test_cube.py")
    wrong = code.replace("return 3 * x * x", "return 6 * x * x")
    assert wrong != code
    result = _pytest_file(tmp_path, "test_cube.py", wrong)
    assert result.returncode == 1
    assert "gradcheck failed for input 0" in result.stdout
    assert "1 failed" in result.stdout


def test_both_commands_are_in_the_readme_and_ci_runs_the_test_command() -> None:
    commands = [c.strip() for lang, c in BLOCKS if lang == "bash"]
    train = [c for c in commands if "tinygrad-edu train" in c]
    tests = [c for c in commands if "pytest" in c]
    assert train and tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests[0] in ci.splitlines(), "the CI script must run the README's test command verbatim"


def test_explain_command_prints_the_table_readme_shows(tmp_path: Path) -> None:
    pairs = [(c, shown) for (lang, c), (next_lang, shown) in itertools.pairwise(BLOCKS)
             if lang == "bash" and "tinygrad-edu explain" in c and next_lang == "text"]
    assert pairs, "README shows an explain example with its output"
    command, shown = pairs[0]
    args = command.split("tinygrad-edu", 1)[1].split()
    expression = command.split('"')[1]
    args = ["explain", expression] + args[args.index("--set"):]
    render = dot_available()
    if not render:  # the table needs no Graphviz; the graph and stepper do (required in CI)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Graphviz `dot` is missing in CI (.ci/run installs it)")
        for option in ("--svg", "--html"):
            at = args.index(option)
            del args[at:at + 2]
    result = subprocess.run([sys.executable, "-m", "tinygrad_edu", *args], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    printed = [line.rstrip() for line in result.stdout.splitlines()]
    for line in shown.strip().splitlines():
        assert line.rstrip() in printed
    assert (tmp_path / "stepper.html").exists() == (tmp_path / "graph.svg").exists() == render
    if not render:
        pytest.skip("Graphviz `dot` not installed: the table was checked, the README's "
                    "--html stepper and --svg graph were not")
