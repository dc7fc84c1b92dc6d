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

import itertools
import json
import math
import os
import tokenize
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .fileio import atomic_writer
from .models import architecture_of, build_model, default_config, model_names

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
#
# A checkpoint may come from anywhere, so it is read as hostile: the zip directory and every
# member's .npy header are checked first (type, shape, declared size against the stored
# size), the JSON record is size-capped and its every field type-checked, the model the
# record asks for must be no larger than the weights the file really holds, and every weight
# must fit the model (name, shape, kind of number) -- all before any array is read or any
# parameter changed.  Each refusal is a CheckpointError naming the file and the field.

#: What a damaged .npz can raise while being opened or read.
#: (NotImplementedError: zipfile's word for a zip feature it cannot read; zlib.error: a
#: deflated member whose stream cannot be decompressed, which zipfile passes on as it is.)
_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, KeyError, UnicodeDecodeError,
                RecursionError, NotImplementedError, zlib.error)
#: What numpy's .npy header parser can raise on a damaged header: besides ValueError, a stray
#: NUL byte or an unclosed bracket escapes as SyntaxError or tokenize.TokenError.
_HEADER_ERRORS = (*_READ_ERRORS, SyntaxError, tokenize.TokenError, TypeError)
#: Largest JSON record read (a real one is under 1 KiB).
MAX_RECORD_BYTES = 1 << 20
#: Most array members and most bytes a checkpoint's arrays may declare in total.
MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 4 << 30
#: Bounds of the integers in an architecture config (widths, channels, kernel).
MAX_WIDTH = 1 << 16
MAX_LAYERS = 64
_NPY_MAGIC = b"\x93NUMPY"
#: The zip compression methods numpy's savez and savez_compressed write.
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
#: The general-purpose flag bits a plain zip member may carry: deflate's speed options (1, 2),
#: a data descriptor after the data (3), UTF-8 names (11).  Any other (encryption 0 or 6,
#: patched data 5...) is a feature this loader does not read.
_FLAGS = 0x0002 | 0x0004 | 0x0008 | 0x0800
#: The start of numpy's warning for a header it had to repair (see _member_header).
_PY2_HEADER = r"Reading `\.npy` or `\.npz` file required additional header parsing"


def _fail(path: Path, message: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path}: {message}")


def _member_header(path: Path, archive: zipfile.ZipFile,
                   info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the .npy member ``info``, checked against its stored size."""
    key = info.filename[:-4]
    with archive.open(info) as handle:
        try:
            with warnings.catch_warnings():
                # numpy warns, and repairs, a header it can parse only as Python 2 wrote it
                # ("16L"); no checkpoint has one, so such a header is damage, not a warning.
                # (Only that warning: other threads' warnings pass as before.)
                warnings.filterwarnings("error", message=_PY2_HEADER, category=UserWarning)
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        except UserWarning as exc:
            raise _fail(path, f"{key} has a damaged .npy header (numpy could read it only as "
                              "a Python 2 header)") from exc
        except _HEADER_ERRORS as exc:
            raise _fail(path, f"{key} has an unreadable .npy header "
                              f"({type(exc).__name__}: {exc})") from exc
        header_size = handle.tell()
    if any(d < 0 for d in shape):
        raise _fail(path, f"{key} declares a negative dimension {shape}")
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
        raise _fail(path, f"{key} has dtype {dtype} (only real numbers are read)")
    declared = math.prod(shape) * dtype.itemsize
    if declared != info.file_size - header_size:
        raise _fail(path, f"{key} declares shape {shape} of {dtype} ({declared:,} bytes) but "
                          f"stores {info.file_size - header_size:,} bytes")
    return tuple(shape), dtype


def _scan_archive(path: Path) -> tuple[zipfile.ZipFile, dict[str, tuple]]:
    """Open ``path`` as a zip and check every member's header; nothing large is read."""
    if not path.is_file():
        raise _fail(path, "no such file")
    with open(path, "rb") as handle:
        magic = handle.read(len(_NPY_MAGIC))
    if magic == _NPY_MAGIC:
        raise _fail(path, "a plain .npy array, not a .npz checkpoint")
    if not zipfile.is_zipfile(path):
        raise _fail(path, "not a .npz archive (corrupt or truncated file)")
    archive = zipfile.ZipFile(path)
    try:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise _fail(path, f"{len(infos)} members (at most {MAX_MEMBERS})")
        headers: dict[str, tuple] = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise _fail(path, f"unexpected member {info.filename!r}")
            if info.compress_type not in _METHODS:  # numpy writes only these two
                raise _fail(path, f"{info.filename} uses zip compression method "
                                  f"{info.compress_type} (only stored or deflated are read)")
            if info.flag_bits & ~_FLAGS:
                raise _fail(path, f"{info.filename} has zip flags {info.flag_bits:#06x}: "
                                  "encrypted or another zip feature this loader does not read")
            headers[info.filename[:-4]] = (*_member_header(path, archive, info), info)
        total = sum(math.prod(shape) * dtype.itemsize for shape, dtype, _ in headers.values())
        if total > MAX_TOTAL_BYTES:
            raise _fail(path, f"arrays declare {total:,} bytes (at most {MAX_TOTAL_BYTES:,})")
    except BaseException:
        archive.close()
        raise
    return archive, headers


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with archive.open(info) as handle:
        return np.lib.format.read_array(handle, allow_pickle=False)


def _read_record(path: Path, archive: zipfile.ZipFile, headers: dict[str, tuple]) -> dict:
    """The checked JSON record of the archive."""
    if RECORD_KEY not in headers:
        raise _fail(path, f"not a tinygrad_edu checkpoint (no {RECORD_KEY} record)")
    shape, dtype, info = headers[RECORD_KEY]
    if dtype != np.uint8 or len(shape) != 1:
        raise _fail(path, f"{RECORD_KEY} must be 1-D uint8, got {shape} of {dtype}")
    if shape[0] > MAX_RECORD_BYTES:
        raise _fail(path, f"{RECORD_KEY} is {shape[0]:,} bytes (at most {MAX_RECORD_BYTES:,})")
    return _decode_record(path, _read_member(archive, info))


def _read_archive(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON record and the state dict of the checkpoint at ``path``."""
    try:
        archive, headers = _scan_archive(path)
        with archive:
            record = _read_record(path, archive, headers)
            state = {key[len(PARAM_PREFIX):]: _read_member(archive, info)
                     for key, (_, _, info) in headers.items() if key.startswith(PARAM_PREFIX)}
    except CheckpointError:
        raise
    except _READ_ERRORS as exc:
        raise _fail(path, f"corrupt or truncated file ({type(exc).__name__}: {exc})") from exc
    return record, state


def _decode_record(path: Path, raw: np.ndarray) -> dict[str, Any]:
    """Parse and check the JSON record stored in the archive."""
    try:
        record = json.loads(np.asarray(raw, dtype=np.uint8).tobytes().decode("utf-8"))
    except RecursionError:
        raise _fail(path, f"unreadable {RECORD_KEY} record (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _fail(path, f"unreadable {RECORD_KEY} record ({exc})") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise _fail(path, "not a tinygrad_edu checkpoint (wrong format)")
    version = record.get("version")
    if type(version) is not int or version != VERSION:
        raise _fail(path, f"format version {version!r} is not supported "
                          f"(this tinygrad_edu reads version {VERSION})")
    arch = record.get("architecture")
    if not isinstance(arch, dict) or not isinstance(arch.get("name"), str):
        raise _fail(path, "no architecture recorded")
    if arch["name"] not in model_names():
        raise _fail(path, f"architecture.name: unknown model {arch['name'][:40]!r}; "
                          f"choose from {model_names()}")
    config = arch.get("config", {})
    if not isinstance(config, dict):
        raise _fail(path, f"architecture.config must be an object, got {type(config).__name__}")
    _check_config(path, arch["name"], config)
    meta = record.get("meta", {})
    if not isinstance(meta, dict):
        raise _fail(path, f"meta must be an object, got {type(meta).__name__}")
    return record


def _check_config(path: Path, name: str, config: dict[str, Any]) -> None:
    """Each config field has its default's type and a sane size."""
    defaults = default_config(name)
    for key, value in config.items():
        field = f"architecture.config.{key}"
        if key not in defaults:
            raise _fail(path, f"{field} is not a field of {name!r} (fields: {sorted(defaults)})")
        default = defaults[key]
        if isinstance(default, list):
            if (not isinstance(value, list) or not 1 <= len(value) <= MAX_LAYERS
                    or not all(type(v) is int and 1 <= v <= MAX_WIDTH for v in value)):
                raise _fail(path, f"{field} must be a list of 1 to {MAX_LAYERS} integers in "
                                  f"1..{MAX_WIDTH}, got {_short(value)}")
        elif isinstance(default, bool):
            if type(value) is not bool:
                raise _fail(path, f"{field} must be true or false, got {_short(value)}")
        elif isinstance(default, int):
            if type(value) is not int or not 0 <= value <= MAX_WIDTH:
                raise _fail(path, f"{field} must be an integer in 0..{MAX_WIDTH}, "
                                  f"got {_short(value)}")
        elif isinstance(default, float):
            if type(value) not in (int, float) or not math.isfinite(value):
                raise _fail(path, f"{field} must be a finite number, got {_short(value)}")
        elif (default is None or isinstance(default, str)) and not (
                value is None or isinstance(value, str)):
            raise _fail(path, f"{field} must be a name, got {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:50]}... ({type(value).__name__})"


def _config_weights(name: str, config: dict[str, Any]) -> int:
    """How many weights ``build_model(name, **config)`` would allocate (an upper bound)."""
    full = {**default_config(name), **config}
    if name == "mlp":
        sizes = full["sizes"]
        return sum(a * b + b for a, b in itertools.pairwise(sizes))
    channels = [1, *full["channels"]]
    k = full["kernel_size"]
    total = sum(k * k * a * b + 5 * b for a, b in itertools.pairwise(channels))
    features = channels[-1] * max(1, 28 // 2 ** (len(channels) - 1)) ** 2
    hidden = full["hidden"]
    total += features * hidden + hidden + (hidden or features) * 10 + 10
    return total


def _check_fits(path: Path, model: Any, state: dict[str, tuple]) -> None:
    """Every weight of ``state`` (name -> (shape, dtype)) fits ``model``; raise otherwise."""
    targets = model.state_dict()
    missing = sorted(set(targets) - set(state))
    unexpected = sorted(set(state) - set(targets))
    if missing or unexpected:
        raise _fail(path, f"weights do not fit the model: missing {missing}, "
                          f"unexpected {unexpected}")
    for key, target in targets.items():
        shape, dtype = state[key]
        if shape != target.shape:
            raise _fail(path, f"{PARAM_PREFIX}{key} has shape {shape}, the model's has "
                              f"{target.shape} (weights do not fit the model)")
        if (dtype.kind == "f") != (target.dtype.kind == "f"):
            raise _fail(path, f"{PARAM_PREFIX}{key} has dtype {dtype}, the model's is "
                              f"{target.dtype}")


def read_checkpoint(
    path: str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
    """The raw contents of a checkpoint: ``(state_dict, architecture, meta)``."""
    record, state = _read_archive(Path(path))
    return state, record["architecture"], record.get("meta", {})


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """Rebuild the model recorded in the checkpoint at ``path``; return ``(model, meta)``.

    ``meta`` also carries the ``architecture`` entry.  Raises :class:`CheckpointError`
    (naming the file and the field) when the file is missing, corrupt or truncated, is not a
    .npz, declares arrays larger than it stores, records an unknown architecture or a config
    of the wrong types or sizes, or holds weights that do not fit it (the message names the
    parameter and both shapes).  Everything is checked before any weight is read, so a bad
    file never leaves a half-loaded model, and nothing large is allocated for a crafted one.
    """
    path = Path(path)
    try:
        archive, headers = _scan_archive(path)
        with archive:
            record = _read_record(path, archive, headers)
            architecture, meta = record["architecture"], record.get("meta", {})
            config = architecture.get("config", {})
            params = {k[len(PARAM_PREFIX):]: v for k, v in headers.items()
                      if k.startswith(PARAM_PREFIX)}
            held = sum(math.prod(shape) for shape, _, _ in params.values())
            needed = _config_weights(architecture["name"], config)
            if needed > 2 * held + 1024:
                raise _fail(path, f"architecture.config needs about {needed:,} weights but the "
                                  f"file holds {held:,}")
            try:
                model = build_model(architecture["name"], **config)
            except (ValueError, TypeError, KeyError) as exc:
                raise _fail(path, f"cannot rebuild the model: {exc}") from exc
            _check_fits(path, model, {k: v[:2] for k, v in params.items()})
            state = {k: _read_member(archive, v[2]) for k, v in params.items()}
    except CheckpointError:
        raise
    except _READ_ERRORS as exc:
        raise _fail(path, f"corrupt or truncated file ({type(exc).__name__}: {exc})") from exc
    try:
        model.load_state_dict(state)
    except (ValueError, KeyError, TypeError) as exc:  # pragma: no cover - checked above
        detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise _fail(path, f"weights do not fit the model: {detail}") from exc
    return model, {**meta, "architecture": architecture}
