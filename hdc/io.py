"""A shared container for saved files: atomic writes, a format name and version, and a SHA-256 of the contents.

:func:`atomic_write` writes any file through a unique temporary name in the target's directory and ``os.replace``,
so a crash never leaves a half file under the real name, concurrent writers never collide on a temporary name, and
a reader sees the old or the new file, never a mix.

:func:`save_container` / :func:`load_container` store a JSON header and named numpy arrays as one *uncompressed*
``.npz`` (no pickle): the header carries ``format``, ``version`` and a ``sha256`` over the header and every array
(name, dtype, shape, bytes). Loading refuses a compressed member before inflating it, a file of another format or
version, and any altered byte, with :class:`ContainerError` naming the problem.

A loaded file is untrusted input: every member's shape and dtype are read from its ``.npy`` header (no data) and the
caller's schema check runs on them before any array is read, and the arrays together may not exceed ``max_bytes``
(default :data:`DEFAULT_MAX_BYTES` = 2 GiB, overridden by the argument or the ``HDC_MAX_LOAD_BYTES`` environment
variable).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from hdc._validate import check_int

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_BYTES_ENV",
    "ArraySpec",
    "ContainerError",
    "atomic_write",
    "atomic_write_text",
    "digest",
    "load_container",
    "max_load_bytes",
    "peek_format",
    "save_container",
]

HEADER = "header"  # the array holding the JSON header as uint8 bytes
# What a file may make a loader allocate, unless the caller or the environment says otherwise.
DEFAULT_MAX_BYTES = 2 * 2**30
MAX_BYTES_ENV = "HDC_MAX_LOAD_BYTES"
_MAX_HEADER_BYTES = 16 * 2**20  # the JSON header


def _file_mode() -> int:
    """0o666 minus the process umask: the mode ``open()`` would give a new file (mkstemp's files are 0o600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


class ContainerError(ValueError):
    """A saved file is unreadable, truncated, altered, compressed, or of another format or version."""


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a unique temporary file next to ``path``, then ``os.replace`` it onto ``path``.

    The parent directory is created if needed; the temporary file is removed if ``write`` raises (or on Ctrl-C).
    Returns ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.chmod(tmp, _FILE_MODE)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of ``text`` in UTF-8; returns the path."""
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def digest(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 hex digest over the JSON header (keys sorted) and every array's name, dtype, shape and bytes."""
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_container(
    path: str | os.PathLike, fmt: str, version: int, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> Path:
    """Write ``header`` (JSON-serialisable, without ``format``/``version``/``sha256``) and ``arrays`` atomically.

    The stored header is ``{"format": fmt, "version": version, **header, "sha256": digest}``; returns the path.
    """
    if HEADER in arrays:
        raise ValueError(f"an array may not be named {HEADER!r}")
    full = {"format": fmt, "version": int(version), **header}
    text = json.dumps({**full, "sha256": digest(full, arrays)})
    header_bytes = np.frombuffer(text.encode(), dtype=np.uint8)
    members: dict[str, Any] = {HEADER: header_bytes, **arrays}
    return atomic_write(path, lambda fh: np.savez(fh, **members))


def max_load_bytes(max_bytes: int | None = None) -> int:
    """The allocation bound of a load: ``max_bytes`` if given, else ``$HDC_MAX_LOAD_BYTES``, else 2 GiB."""
    if max_bytes is None:
        env = os.environ.get(MAX_BYTES_ENV)
        if env is None:
            return DEFAULT_MAX_BYTES
        try:
            max_bytes = int(env)
        except ValueError:
            raise ValueError(f"{MAX_BYTES_ENV} must be an integer number of bytes, got {env!r}") from None
    return check_int(max_bytes, "max_bytes", minimum=1)


@dataclass(frozen=True)
class ArraySpec:
    """What an ``.npy`` member declares in its header, read before any of its data: shape and dtype."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _member_spec(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> tuple[ArraySpec, int]:
    """Shape and dtype from a member's ``.npy`` header, plus the header's length; nothing else is read."""
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        offset = fh.tell()
    if dtype.hasobject:
        raise ContainerError(f"{path}: member {info.filename!r} holds Python objects (dtype {dtype}); refused")
    return ArraySpec(tuple(int(d) for d in shape), dtype), offset


def _inspect(zf: zipfile.ZipFile, path: Path, max_bytes: int) -> dict[str, ArraySpec]:
    """Every member's declared shape and dtype, checked against its stored size and the load's bound."""
    infos = zf.infolist()
    packed = [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise ContainerError(f"{path}: compressed members are refused ({', '.join(packed[:3])})")
    specs: dict[str, ArraySpec] = {}
    total = 0
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise ContainerError(f"{path}: unexpected member {info.filename!r}")
        name = info.filename[: -len(".npy")]
        if name in specs:
            raise ContainerError(f"{path}: duplicate member {info.filename!r}")
        spec, offset = _member_spec(zf, info, path)
        # A stored member holds exactly its data: a header that declares more than the file holds is corrupt.
        if info.file_size != offset + spec.nbytes:
            raise ContainerError(
                f"{path}: member {info.filename!r} declares {spec.shape} {spec.dtype} ({spec.nbytes} bytes) but "
                f"stores {info.file_size - offset}"
            )
        total += spec.nbytes
        if total > max_bytes:
            raise ContainerError(
                f"{path}: the arrays need more than {max_bytes} bytes (max_bytes; raise it with the argument or "
                f"${MAX_BYTES_ENV} if the file is trusted)"
            )
        specs[name] = spec
    return specs


def _read_header(zf: zipfile.ZipFile, path: Path, specs: Mapping[str, ArraySpec]) -> dict[str, Any]:
    spec = specs.get(HEADER)
    if spec is None:
        raise ContainerError(f"{path}: no header")
    if spec.dtype != np.uint8 or len(spec.shape) != 1 or spec.nbytes > _MAX_HEADER_BYTES:
        raise ContainerError(f"{path}: the header must be at most {_MAX_HEADER_BYTES} bytes of uint8")
    with zf.open(HEADER + ".npy") as fh:
        raw = np.lib.format.read_array(fh, allow_pickle=False)
    try:
        header = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ContainerError(f"{path}: corrupt header ({err})") from err
    if not isinstance(header, dict):
        raise ContainerError(f"{path}: the header is not a JSON object")
    return header


def _check_format(path: Path, header: Mapping[str, Any], fmt: str, versions: Collection[int]) -> None:
    if header.get("format") != fmt:
        raise ContainerError(f"{path}: format {header.get('format')!r} is not {fmt!r}")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version not in versions:
        supported = ", ".join(map(str, sorted(versions)))
        raise ContainerError(f"{path}: file version {version!r} is not supported (this reader: {supported})")


def peek_format(path: str | os.PathLike, max_bytes: int | None = None) -> tuple[str, int]:
    """The ``(format, version)`` a container declares, read from its header alone (no array data, no checksum).

    Lets a caller pick the right loader for a file; the loader then checks everything. Raises
    :class:`ContainerError` for a file that is not a readable container and FileNotFoundError for a missing one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            header = _read_header(zf, path, _inspect(zf, path, max_load_bytes(max_bytes)))
    except ContainerError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, NotImplementedError) as err:
        raise ContainerError(f"{path}: not a readable file (truncated or corrupt: {err})") from err
    fmt, version = header.get("format"), header.get("version")
    if not isinstance(fmt, str) or not isinstance(version, int) or isinstance(version, bool):
        raise ContainerError(f"{path}: the header names no format and integer version")
    return fmt, version


def load_container(
    path: str | os.PathLike,
    fmt: str,
    versions: Collection[int],
    *,
    check: Callable[[dict[str, Any], dict[str, ArraySpec]], None] | None = None,
    max_bytes: int | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a file written by :func:`save_container`; returns (header without ``sha256``, arrays).

    Nothing is allocated from the file's say-so before it is checked: the members' ``.npy`` headers are read first
    (compressed members refused, declared sizes matched with the stored ones, their total bounded by
    ``max_bytes``), then the JSON header (format, version, and ``check(header, specs)``, the caller's schema check,
    which sees every array's declared :class:`ArraySpec` and raises :class:`ContainerError`), and only then the
    array data and the checksum.

    Args:
        path: the file.
        fmt: the expected ``format``.
        versions: the readable versions.
        check: optional schema check of the header against the arrays' shapes and dtypes, before any data is read.
        max_bytes: bound on the bytes of all arrays together (None: ``$HDC_MAX_LOAD_BYTES`` or 2 GiB).

    Raises:
        FileNotFoundError: no file at ``path``.
        ContainerError: unreadable, compressed, too large, of a format other than ``fmt`` or a version not in
            ``versions``, refused by ``check``, or a checksum mismatch.
    """
    path = Path(path)
    bound = max_load_bytes(max_bytes)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            specs = _inspect(zf, path, bound)
            header = _read_header(zf, path, specs)
            _check_format(path, header, fmt, versions)
            if check is not None:
                check(header, {k: v for k, v in specs.items() if k != HEADER})
            arrays = {}
            for name in specs:
                if name != HEADER:
                    with zf.open(name + ".npy") as fh:
                        arrays[name] = np.lib.format.read_array(fh, allow_pickle=False)
    except ContainerError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, NotImplementedError) as err:
        raise ContainerError(f"{path}: not a readable file (truncated or corrupt: {err})") from err
    stored = header.pop("sha256", None)
    if stored != digest(header, arrays):
        raise ContainerError(f"{path}: checksum mismatch; the file was altered or damaged")
    return header, arrays
