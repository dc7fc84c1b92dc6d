"""MNIST: find the four files, verify them, load them as arrays, and cut them into batches.

The files are looked up, in order, in the directory passed as ``path``, the directory
named by ``$TINYGRAD_EDU_DATA`` (:data:`DATA_ENV_VAR`), then the per-user cache
(:func:`default_cache_dir`); each may be raw or gzipped (when both are there and one is
bad, the good one is used), and its decompressed SHA-256 is always checked, after its header
and size.  Only the cache is ever written to (:mod:`.fetch` fills it), and only files the
loader wrote itself are ever deleted: a bad file anywhere else -- in ``--data``, in
``$TINYGRAD_EDU_DATA``, or in a cache folder that is a link to someone's own folder -- is
refused by name and kept.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fileio import remove_quietly
from .fetch import download_into_cache, log
from .idx import MNIST_FILES, DatasetError, check_mnist_file, parse_idx, read_decompressed

__all__ = [
    "DATA_ENV_VAR",
    "MNIST_MEAN",
    "MNIST_STD",
    "Located",
    "batches",
    "default_cache_dir",
    "find_mnist",
    "load_mnist",
    "locate",
]

#: Environment variable naming a directory that holds the MNIST files.
DATA_ENV_VAR = "TINYGRAD_EDU_DATA"

#: Standard statistics of the MNIST training pixels scaled to [0, 1].  The
#: values computed from the 60000 training images are 0.13066 and 0.30811,
#: which these well-known constants match to four decimals.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

#: The canonical file names, in the order files are searched, fetched and reported.
_NAMES = tuple(MNIST_FILES.values())


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
class Located:
    """A directory whose four MNIST files were found and verified."""

    directory: Path
    files: dict[str, Path]  # canonical name -> file actually read (raw or .gz)
    data: dict[str, bytes]  # canonical name -> verified decompressed bytes


def _candidates(directory: Path, name: str) -> list[Path]:
    """The raw and ``.gz`` files of ``name`` in ``directory`` (raw first)."""
    return [c for c in (directory / name, directory / f"{name}.gz") if c.is_file()]


def _present_files(directory: Path) -> dict[str, Path]:
    """Map each canonical name to its raw or ``.gz`` file in ``directory``, if any."""
    found: dict[str, Path] = {}
    for name in _NAMES:
        candidates = _candidates(directory, name)
        if candidates:
            found[name] = candidates[0]
    return found


def _read_verified(name: str, path: Path) -> bytes:
    """The decompressed bytes of ``path`` once header, size and digest match ``name``'s."""
    data = read_decompressed(path)
    check_mnist_file(name, data, str(path))
    return data


def _read_first_good(name: str, directory: Path) -> tuple[Path, bytes]:
    """The first of ``name``'s raw/``.gz`` files in ``directory`` that verifies; the first
    file's error when none does."""
    errors: list[DatasetError] = []
    for path in _candidates(directory, name):
        try:
            return path, _read_verified(name, path)
        except DatasetError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    raise DatasetError(f"{directory}: no {name} file")


def _verify_dir(directory: Path) -> tuple[dict[str, Path], dict[str, bytes]]:
    """Read and check each canonical file of a user's directory (nothing is deleted)."""
    files: dict[str, Path] = {}
    data: dict[str, bytes] = {}
    for name in _NAMES:
        files[name], data[name] = _read_first_good(name, directory)
    return files, data


def _loader_owns(path: Path, cache: Path) -> bool:
    """True when ``path`` can only be a file this loader wrote: a canonical raw name (the
    loader never writes ``.gz``), a regular file with one link, in the cache folder whose own
    two levels (``tinygrad_edu/mnist``, which the loader creates) are real folders, not links
    (links higher up, such as a home folder on another disk, are the system's layout)."""
    try:
        info = path.lstat()
    except OSError:
        return False
    own_folders = (cache, cache.parent)
    return (path.name in _NAMES and path.parent == cache and stat.S_ISREG(info.st_mode)
            and info.st_nlink == 1 and not any(os.path.islink(d) for d in own_folders))


def _verified_or_removed(cache: Path) -> dict[str, tuple[Path, bytes]]:
    """Verify the cached files.  A corrupt one the loader wrote itself (damaged since) is
    deleted, so it is fetched again, and the deletion is reported on stderr; any other
    corrupt file is refused by name and kept."""
    verified: dict[str, tuple[Path, bytes]] = {}
    for name in _NAMES:
        for path in _candidates(cache, name):
            try:
                verified[name] = path, _read_verified(name, path)
                break
            except DatasetError as exc:
                if not _loader_owns(path, cache):
                    raise DatasetError(f"{exc} (kept: {path} was not written by this loader, "
                                       "so it is not deleted; fix or remove it)") from exc
                log(True, f"removing corrupt cached file ({exc})")
                remove_quietly(path)
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
    missing = [name for name in _NAMES if name not in present]
    return f"{directory} (missing {', '.join(missing)})"


def locate(path: str | os.PathLike[str] | None, download: bool, verbose: bool) -> Located:
    """Search the explicit dir, the env dir and the cache; download into the cache if allowed.

    What :func:`find_mnist` and :func:`load_mnist` do, returning the files found and their
    verified bytes as a :class:`Located`.
    """
    searched: list[str] = []
    cache = default_cache_dir()
    for label, directory in _candidate_dirs(path):
        if path is not None and directory == Path(path) and not directory.is_dir():
            raise DatasetError(f"{directory}: no such directory (given as the data path)")
        present = _present_files(directory)
        if len(present) == len(_NAMES):
            log(verbose, f"verifying MNIST in {directory} ({label})")
            return Located(directory, *_verify_dir(directory))
        searched.append(_missing_text(directory, present))
        log(verbose, f"{label} {searched[-1]}: falling through to the cache {cache}")
    log(verbose, f"verifying MNIST in {cache} (cache)")
    found = _verified_or_removed(cache)
    files = {name: path for name, (path, _) in found.items()}
    verified = {name: data for name, (_, data) in found.items()}
    missing = [name for name in _NAMES if name not in verified]
    if missing and download:
        download_into_cache(cache, missing, verbose)
        for name in missing:
            files[name], verified[name] = _read_first_good(name, cache)
    if len(verified) != len(_NAMES):
        searched.append(_missing_text(cache, files))
        hint = "" if download else "; download disabled"
        raise DatasetError(f"MNIST not found: searched {'; '.join(searched)}{hint}")
    return Located(cache, {n: files[n] for n in _NAMES}, {n: verified[n] for n in _NAMES})


def find_mnist(
    path: str | os.PathLike[str] | None = None,
    download: bool = True,
    verbose: bool = False,
) -> Path:
    """Return the directory holding the four verified MNIST files.

    Searches ``path``, then ``$TINYGRAD_EDU_DATA``, then :func:`default_cache_dir`.
    A directory lacking any of the files is skipped (reported when
    ``verbose``); a file whose decompressed SHA-256 differs from
    :data:`~tinygrad_edu.datasets.idx.MNIST_SHA256` raises :class:`DatasetError`.  With
    ``download=True`` missing files are fetched into the cache directory only.
    """
    return locate(path, download, verbose).directory


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
    located = locate(path, download, verbose)
    arrays = {
        key: parse_idx(located.data[name], str(located.files[name]))
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


# --------------------------------------------------------------------------- batches


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
