"""Peak memory over several epochs of MLP training stays flat: the graph is freed each step.

Trains ``build_model("mlp")`` with ``optim.SGD`` (momentum 0.9, batch 128) for several
epochs on a subset of the images and prints, after each epoch, the resident set size
(VmRSS), its peak so far (VmHWM, from /proc/self/status, or ``ru_maxrss``), and how many
``Tensor`` objects are alive.  Flat means: the peak after the last epoch is within a few MB
of the peak after the first one, and the live-tensor count does not grow.

    python benchmarks/memory.py            # 6 epochs of 20,000 images
    python benchmarks/memory.py --quick    # 3 epochs of 1,024 images
"""

from __future__ import annotations

import gc
import resource
import sys
from pathlib import Path

import numpy as np
from _common import mnist_or_synthetic, parse_args, print_header, print_table

from tinygrad_edu import Tensor, cross_entropy

BATCH, LR, MOMENTUM = 128, 0.01, 0.9
FLAT_MB = 8.0  # growth of the peak (after epoch 1) that still counts as flat


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB."""
    status = Path("/proc/self/status")
    if status.exists():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines()
                      if ":" in line)
        return _kb(fields["VmRSS"]) / 1024, _kb(fields["VmHWM"]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes vs kB
    return peak_mb, peak_mb


def _kb(field: str) -> float:
    return float(field.split()[0])


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux: ``/proc/self/clear_refs``),
    so that loading the data set does not hide what training does.  False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def live_tensors() -> int:
    """How many Tensor objects (parameters included) the garbage collector can see."""
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, Tensor))


def train_epoch(model, optimizer, x: np.ndarray, y: np.ndarray) -> float:
    """One epoch of training; returns the last loss."""
    loss = None
    for start in range(0, len(x), BATCH):
        loss = cross_entropy(model(Tensor(x[start:start + BATCH])), y[start:start + BATCH])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.item())


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeats=1)
    print_header("Memory: peak RSS over MLP training epochs", args.quick)
    from tinygrad_edu.models import build_model
    from tinygrad_edu.optim import SGD

    n, epochs = (1024, 3) if args.quick else (20000, 6)
    images, labels, source = mnist_or_synthetic(n)
    x = images.reshape(len(images), -1).copy()  # a copy: the full data set can be freed
    labels = labels.copy()
    del images
    gc.collect()
    print(f"    data: {source}; {epochs} epochs of {len(x)} images, batch {BATCH}")
    print("    peak: " + ("reset after loading the data" if reset_peak() else
                          "since process start (includes loading the data)"))
    model = build_model("mlp", rng=0)
    optimizer = SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    rows, peaks, counts = [], [], []
    for epoch in range(1, epochs + 1):
        loss = train_epoch(model, optimizer, x, labels)
        current, peak = rss_mb()
        count = live_tensors()
        peaks.append(peak)
        counts.append(count)
        rows.append([epoch, f"{loss:.4f}", f"{current:.1f}", f"{peak:.1f}",
                     f"{peak - peaks[0]:+.1f}", count])
    print_table(["epoch", "last loss", "RSS MB", "peak RSS MB", "peak growth MB",
                 "live Tensors"], rows)
    growth = peaks[-1] - peaks[0]
    flat = growth <= FLAT_MB and counts[-1] <= counts[0]
    print(f"GROWTH peak RSS epoch 1 → {epochs}: {growth:+.1f} MB; live Tensors "
          f"{counts[0]} → {counts[-1]}: {'flat' if flat else 'NOT flat'} "
          f"(flat = growth <= {FLAT_MB:.0f} MB and no new live Tensors)")


if __name__ == "__main__":
    main()
