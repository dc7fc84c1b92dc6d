"""Smoke runs of every benchmark script with ``--quick``: they run and print their tables.

CI never times anything: these tests check that each script exits 0 and prints its table
and its summary (ratio) lines, with and without the optional contenders (PyTorch,
micrograd), and that each hand-written numpy floor computes the same training steps as the
library from the same weights (so a ratio against it compares equal work).  The runs are
started together and run in parallel.
"""

from __future__ import annotations

import importlib.util
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
    "scalar.py": ["## wide:", "## tree:", "DEEP ours:", "CHAIN ours:"],
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
    if script == "scalar.py" and importlib.util.find_spec("micrograd") is not None:
        # micrograd is not a dependency: its ratios are printed where it is installed
        assert "RATIO ours / micrograd (tree sum of relu terms, ops/s):" in out, out


def test_benchmarks_run_without_optional_contenders(runs) -> None:
    code, out, err = runs[("scalar.py", True)]
    assert code == 0, err[-2000:]
    assert "micrograd skipped" in out
    assert "DEEP ours:" in out and "CHAIN ours:" in out and "## tree:" in out
    assert "RATIO ours / micrograd" not in out


# ------------------------------------------------------------------ the floors are the same work
def _bench_module(name: str):
    """A benchmark script imported as a module (its directory on the path for _common)."""
    import importlib
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


def _one_step(model, optimizer, x, y) -> None:
    from tinygrad_edu import Tensor, cross_entropy
    loss = cross_entropy(model(Tensor(x)), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_mlp_floor_computes_the_same_step_as_the_library() -> None:
    """The numpy floor of benchmarks/mlp.py and our MLP + SGD, from the same weights, take
    the same training step: a ratio against the floor compares equal work."""
    import numpy as np

    from tinygrad_edu.models import build_model
    from tinygrad_edu.optim import SGD

    mlp = _bench_module("mlp")
    names = list(build_model("mlp", rng=1).state_dict())  # layers.i.weight, layers.i.bias...
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 784)).astype(np.float32)
    y = rng.integers(0, 10, 32)
    model = build_model("mlp", rng=1)
    floor = mlp.NumpyMLP(seed=0)
    start = [p.copy() for p in floor.params]
    model.load_state_dict({k: (p.T if k.endswith("weight") else p)
                           for k, p in zip(names, floor.params)})
    optimizer = SGD(model.parameters(), lr=mlp.LR, momentum=mlp.MOMENTUM)
    for _ in range(2):  # the second step uses the momentum buffer
        floor.step(x, y)
        _one_step(model, optimizer, x, y)
    ours = model.state_dict()
    for k, p, p0 in zip(names, floor.params, start):
        moved = p - p0  # compare the updates themselves, not the (much larger) weights
        assert np.abs(moved).max() > 1e-6, k
        ours_moved = ours[k] - (p0.T if k.endswith("weight") else p0)
        np.testing.assert_allclose(ours_moved, moved.T if k.endswith("weight") else moved,
                                   rtol=1e-3, atol=1e-3 * np.abs(moved).max(), err_msg=k)


def test_cnn_floor_computes_the_same_step_as_the_library() -> None:
    """The numpy floor of benchmarks/cnn.py (NHWC, its own Adam) and our CNN + Adam take the
    same training step from the same weights."""
    import numpy as np

    from tinygrad_edu.models import build_model
    from tinygrad_edu.optim import Adam

    cnn = _bench_module("cnn")
    floor = cnn.NumpyCNN(seed=0)
    k = cnn.K
    (c1, c2) = floor.blocks

    def ours_from_floor() -> dict:
        return {
            "0.weight": c1.w.reshape(k, k, 1, 16).transpose(3, 2, 0, 1), "0.bias": c1.b,
            "3.weight": c2.w.reshape(k, k, 16, 32).transpose(3, 2, 0, 1), "3.bias": c2.b,
            # the floor flattens (h, w, c), our Flatten (c, h, w)
            "7.weight": floor.w.reshape(7, 7, 32, 10).transpose(3, 2, 0, 1).reshape(10, 1568),
            "7.bias": floor.b,
        }

    model = build_model("cnn", rng=1, **cnn.FLOOR_CONFIG)  # the floor's net, whatever the default
    model.load_state_dict(ours_from_floor())
    start = {name: a.copy() for name, a in ours_from_floor().items()}
    optimizer = Adam(model.parameters(), lr=cnn.LR)
    rng = np.random.default_rng(0)
    x = rng.random((8, 784), dtype=np.float32)
    y = rng.integers(0, 10, 8)
    for _ in range(2):
        floor.step(x, y)
        _one_step(model, optimizer, x.reshape(8, 1, 28, 28), y)
    expected = ours_from_floor()
    for name, value in model.state_dict().items():
        moved = expected[name] - start[name]  # compare the updates, not the weights
        assert np.abs(moved).max() > 1e-5, name
        np.testing.assert_allclose(value - start[name], moved, rtol=1e-3,
                                   atol=1e-3 * np.abs(moved).max(), err_msg=name)


def test_profile_step_gemm_bound_counts_the_step_flops() -> None:
    """``profile_step.py --gemm`` prints the BLAS kernel, GEMM FLOP/s per dtype and thread
    count, and each step's GEMM FLOP count: 2·128·242,304 for the MLP's forward products,
    as much for ∂W and ∂x of the three upper layers (134.7 M in all)."""
    profile = _bench_module("profile_step")
    mlp_flops = 2 * 128 * 242_304 * 2 + 2 * 128 * (256 * 128 + 128 * 64 + 64 * 10)
    assert profile.step_gemm_flops("mlp", 128) == mlp_flops
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "profile_step.py"), "--gemm",
                           "--quick"], check=False, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "kernel" in proc.stdout and "| float64 |" in proc.stdout
    assert "CNN training step (2,099 MFLOP of GEMMs" in proc.stdout
    assert "BOUND:" in proc.stdout


def test_profile_step_ops_times_each_op_with_its_threads() -> None:
    """``profile_step.py --ops`` times the CNN's tensor ops by the wall clock (the conv and
    pooling ops' worker threads included): a row per op, the rest, the total."""
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "profile_step.py"), "--model",
                           "cnn", "--ops", "--quick"], check=False, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for row in ("conv2d backward |", "conv2d forward |", "max_pool2d forward |",
                "the rest: elementwise ops, optimizer, engine |"):
        assert row in out, out
    assert "OPS total" in out


def test_the_header_warns_when_openblas_runs_avx2_kernels_on_an_avx512_cpu() -> None:
    """The benchmarks' BLAS line names the kernel and warns only for a non-AVX-512 kernel on
    an AVX-512 CPU (the two sides of a ratio against PyTorch then run different ISAs)."""
    common = _bench_module("_common")
    warned = common.kernel_note("Haswell", True)
    assert warned.startswith(", kernel Haswell on a CPU with AVX-512")
    assert "OPENBLAS_CORETYPE=SkylakeX" in warned
    for kernel in ("SkylakeX", "Cooperlake", "SapphireRapids"):
        assert common.kernel_note(kernel, True) == f", kernel {kernel}"
    assert common.kernel_note("Haswell", False) == ", kernel Haswell"
    assert common.kernel_note("Haswell", None) == ", kernel Haswell"  # no /proc/cpuinfo
    assert common.kernel_note(None, True) == ""  # no BLAS threadpoolctl knows
