"""Killing a training run while it writes checkpoints: the target is always a complete,
loadable checkpoint or absent; the temporary files of killed writes do not survive the next
write; SIGTERM and Ctrl-C during a write exit 143 / 130 with one line and no traceback.

The runs are the real ``python -m tinygrad_edu train`` on a 256-image slice of MNIST (one step
and one checkpoint per epoch), so checkpoints are written every fraction of a second.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals")

TRAIN = ["train", "--model", "mlp", "--limit", "256", "--batch-size", "256", "--epochs", "500",
         "--no-progress", "--lr", "0.01"]

#: In the child: make every fsync of a checkpoint after the first announce itself and last long
#: enough to be interrupted, then run the command (the write path itself is unchanged).
SLOW_WRITES = textwrap.dedent("""
    import os, signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in background
    real_fsync = os.fsync
    calls = []
    def slow_fsync(fd):
        calls.append(fd)
        if len(calls) > 1:
            print("WRITING", flush=True)
            time.sleep(float(os.environ["SLOW_FSYNC"]))
        real_fsync(fd)
    if os.environ.get("SLOW_FSYNC"):
        os.fsync = slow_fsync
    from tinygrad_edu.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _start(out: Path, data: Path, slow: float = 0.0) -> subprocess.Popen[str]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if slow:
        env["SLOW_FSYNC"] = str(slow)
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITES, *TRAIN, "--data", str(data), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True)


def _wait_for(process: subprocess.Popen[str], marker: str, count: int = 1) -> None:
    """Read the child's stdout until ``marker`` has started ``count`` lines."""
    seen = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            pytest.fail(f"child ended before {marker!r}: {process.stderr.read()}")
        if line.startswith(marker):
            seen += 1
            if seen == count:
                return
    pytest.fail(f"no {marker!r} within 120 s")


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _loadable_or_absent(target: Path) -> int | None:
    if not target.exists():
        return None
    model, meta = load_checkpoint(target)
    assert all(np.isfinite(p.data).all() for p in model.parameters())
    return int(meta["epoch"])


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGTERM, 143, "terminated"),
                                                   (signal.SIGINT, 130, "interrupted")])
def test_signal_during_a_write_exits_cleanly_and_keeps_the_previous_checkpoint(
    real_mnist_dir: Path, tmp_path: Path, sig: signal.Signals, code: int, word: str
) -> None:
    target = tmp_path / "ck.npz"
    child = _start(target, real_mnist_dir, slow=30.0)
    try:
        _wait_for(child, "WRITING")  # epoch 1 is saved; epoch 2 is being written
        assert _temporaries(tmp_path)  # the write is really under way
        child.send_signal(sig)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == code
    assert err.strip().splitlines()[-1] == f"tinygrad-edu train: {word}"
    assert "Traceback" not in err
    assert _loadable_or_absent(target) == 1
    assert _temporaries(tmp_path) == []


def test_kill_9_and_signals_during_writes_never_leave_a_bad_checkpoint(
    real_mnist_dir: Path, tmp_path: Path
) -> None:
    """Seven runs into one folder, each killed: kill -9 three times in the middle of a write
    (it leaves its temporary file), SIGTERM and Ctrl-C in a write and between writes.  After
    every kill the target is a complete checkpoint; every run's first write removes what the
    killed runs before it left."""
    target = tmp_path / "ck.npz"
    rng = random.Random(13)
    plan = [(signal.SIGKILL, True), (signal.SIGKILL, True), (signal.SIGTERM, False),
            (signal.SIGKILL, True), (signal.SIGINT, True), (signal.SIGTERM, True),
            (signal.SIGINT, False)]
    for sig, during_write in plan:
        child = _start(target, real_mnist_dir, slow=1.0 if during_write else 0.0)
        try:
            _wait_for(child, "epoch", count=2)  # epoch 1's checkpoint is written
            # ... and that write removed the temporary files earlier killed runs left
            assert [n for n in _temporaries(tmp_path) if f".{child.pid}-" not in n] == []
            if during_write:
                _wait_for(child, "WRITING")
                time.sleep(rng.uniform(0.0, 0.5))
                assert _temporaries(tmp_path)  # the write is under way
            else:
                time.sleep(rng.uniform(0.0, 0.3))
            child.send_signal(sig)
            _, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        if sig == signal.SIGKILL:
            assert child.returncode == -signal.SIGKILL
            assert len(_temporaries(tmp_path)) == 1  # what kill -9 cannot clean up
        else:
            assert child.returncode == {signal.SIGTERM: 143, signal.SIGINT: 130}[sig], err
            assert err.strip().splitlines()[-1].startswith("tinygrad-edu train: ")
            assert "Traceback" not in err and _temporaries(tmp_path) == []
        assert _loadable_or_absent(target) is not None  # a complete checkpoint, never a part
