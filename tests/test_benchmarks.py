"""Smoke runs of every benchmark script with ``--quick``: they run and print their tables.

CI never times anything: these tests check only that each script exits 0 and prints its
table and its summary (ratio) lines, with and without the optional contenders (PyTorch,
micrograd).  The runs are started together and run in parallel.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
NO_OPTIONAL = "TINYGRAD_EDU_BENCH_NO_OPTIONAL"

# script -> the summary lines it must print (besides a Markdown table)
EXPECTED = {
    "mlp.py": ["RATIO ours / numpy floor (epoch time):"],
    "cnn.py": ["RATE ours:", "RATIO ours / numpy floor (throughput):"],
    "scalar.py": ["## wide:", "DEEP ours:"],
    "memory.py": ["GROWTH peak RSS"],
    "overhead.py": ["OVERHEAD forward:"],
    "profile_step.py": ["## own time by group", "PROFILE total"],
    "diagnostics.py": ["RATIO today / before hooks", "RATIO anomaly on / off",
                       "MECHANISM off: Tensor._make is the plain function: True",
                       "MEMORY freed / kept peak"],
}


def _start(script: str, skip_optional: bool) -> subprocess.Popen[str]:
    """Start ``benchmarks/<script> --quick`` in the background."""
    env = dict(os.environ)
    env.pop(NO_OPTIONAL, None)
    if skip_optional:
        env[NO_OPTIONAL] = "1"
    return subprocess.Popen(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, bool], tuple[int, str, str]]:
    """(script, skip_optional) -> (exit code, stdout, stderr) of every smoke run."""
    jobs = [(script, False) for script in sorted(EXPECTED)] + [("scalar.py", True)]
    procs = {job: _start(*job) for job in jobs}
    results = {}
    for job, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        results[job] = (proc.returncode, out, err)
    return results


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_benchmark_quick_run_prints_its_table(runs, script: str) -> None:
    code, out, err = runs[(script, False)]
    assert code == 0, err[-2000:]
    assert "|--" in out and "cores:" in out
    for line in EXPECTED[script]:
        assert line in out, f"{script} did not print {line!r}:\n{out}"


def test_benchmarks_run_without_optional_contenders(runs) -> None:
    code, out, err = runs[("scalar.py", True)]
    assert code == 0, err[-2000:]
    assert "micrograd skipped" in out
    assert "DEEP ours:" in out
    assert "RATIO ours / micrograd" not in out
