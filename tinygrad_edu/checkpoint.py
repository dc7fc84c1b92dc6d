"""Checkpoints: a model's weights, its architecture and some notes, in one ``.npz`` file.

The file is a plain numpy ``.npz`` archive with no pickles in it, so it can be opened with
``np.load(path, allow_pickle=False)`` by anyone:

* ``param/<name>`` -- one array per entry of ``model.state_dict()``;
* ``__checkpoint__`` -- a uint8 array holding UTF-8 JSON::

      {"format": "tinygrad_edu.checkpoint", "version": 1,
       "architecture": {"name": "mlp", "config": {...}},
       "meta": {"epoch": 3, "test_accuracy": 0.981, "seed": 0, ...}}

The architecture is what :func:`tinygrad_edu.models.build_model` needs to rebuild the model,
so :func:`load_checkpoint` returns a ready-to-use model.

Writes are atomic: the archive goes to a temporary file in the same directory, is flushed to
disk, and only then renamed over the target (``os.replace``).  A crash or Ctrl-C while saving
leaves the previous checkpoint untouched and no temporary file behind.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .fileio import atomic_writer
from .models import architecture_of, build_model

__all__ = ["CheckpointError", "load_checkpoint", "read_checkpoint", "save_checkpoint"]

FORMAT = "tinygrad_edu.checkpoint"
VERSION = 1
RECORD_KEY = "__checkpoint__"
PARAM_PREFIX = "param/"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, truncated, or does not fit its model."""


# --------------------------------------------------------------------------- saving


def _encode_record(architecture: dict[str, Any], meta: dict[str, Any]) -> np.ndarray:
    """The JSON record as a uint8 array (no pickles needed to store or read it)."""
    record = {"format": FORMAT, "version": VERSION, "architecture": architecture, "meta": meta}
    try:
        text = json.dumps(record, sort_keys=True, allow_nan=True)
    except TypeError as exc:
        raise TypeError(f"save_checkpoint: meta must be JSON-serialisable: {exc}") from None
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _arrays_to_save(model: Any, architecture: dict[str, Any], meta: dict[str, Any]) -> dict:
    """Every state_dict array under ``param/<name>``, plus the JSON record."""
    arrays = {PARAM_PREFIX + name: np.asarray(value) for name, value in model.state_dict().items()}
    for key, value in arrays.items():
        if value.dtype == object:
            raise TypeError(f"save_checkpoint: {key} is an object array (would need a pickle)")
    arrays[RECORD_KEY] = _encode_record(architecture, meta)
    return arrays


def _write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an .npz to ``path`` via a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as handle:
        np.savez(handle, **arrays)


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Any,
    meta: dict[str, Any] | None = None,
    architecture: dict[str, Any] | None = None,
) -> Path:
    """Save ``model``'s weights, architecture and ``meta`` (a JSON-able dict) to ``path``.

    ``architecture`` (``{"name": ..., "config": {...}}``) defaults to the one recorded by
    :func:`tinygrad_edu.models.build_model` on the model.  The file appears atomically: it
    is either the complete new checkpoint or, after a crash, the previous one.  Returns the
    path written.
    """
    path = Path(path)
    architecture = architecture if architecture is not None else architecture_of(model)
    arrays = _arrays_to_save(model, architecture, dict(meta or {}))
    _write_atomically(path, arrays)
    return path


# --------------------------------------------------------------------------- loading

#: What a damaged .npz can raise while being opened or read.
_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, KeyError, UnicodeDecodeError)


def _read_archive(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON record and the state dict of the checkpoint at ``path``."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if RECORD_KEY not in archive.files:
                raise CheckpointError(
                    f"checkpoint {path}: not a tinygrad_edu checkpoint (no {RECORD_KEY} record)"
                )
            raw = archive[RECORD_KEY]
            state = {
                key[len(PARAM_PREFIX):]: archive[key]
                for key in archive.files
                if key.startswith(PARAM_PREFIX)
            }
    except CheckpointError:
        raise
    except _READ_ERRORS as exc:
        raise CheckpointError(
            f"checkpoint {path}: corrupt or truncated file ({type(exc).__name__}: {exc})"
        ) from exc
    return _decode_record(path, raw), state


def _decode_record(path: Path, raw: np.ndarray) -> dict[str, Any]:
    """Parse and check the JSON record stored in the archive."""
    try:
        record = json.loads(np.asarray(raw, dtype=np.uint8).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path}: unreadable {RECORD_KEY} record ({exc})") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: not a tinygrad_edu checkpoint (wrong format)")
    if record.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path}: format version {record.get('version')!r} is not supported "
            f"(this tinygrad_edu reads version {VERSION})"
        )
    arch = record.get("architecture")
    if not isinstance(arch, dict) or not isinstance(arch.get("name"), str):
        raise CheckpointError(f"checkpoint {path}: no architecture recorded")
    return record


def read_checkpoint(
    path: str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
    """The raw contents of a checkpoint: ``(state_dict, architecture, meta)``."""
    record, state = _read_archive(Path(path))
    return state, record["architecture"], record.get("meta", {})


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """Rebuild the model recorded in the checkpoint at ``path``; return ``(model, meta)``.

    ``meta`` also carries the ``architecture`` entry.  Raises :class:`CheckpointError`
    (naming the file) when the file is missing, corrupt or truncated, records an unknown
    architecture, or holds weights that do not fit it (the message names the parameter
    and both shapes).
    """
    path = Path(path)
    state, architecture, meta = read_checkpoint(path)
    try:
        model = build_model(architecture["name"], **architecture.get("config", {}))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path}: cannot rebuild the model: {exc}") from exc
    try:
        model.load_state_dict(state)
    except (ValueError, KeyError, TypeError) as exc:
        detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise CheckpointError(f"checkpoint {path}: weights do not fit the model: {detail}") from exc
    return model, {**meta, "architecture": architecture}
