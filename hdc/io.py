"""A shared container for saved files: atomic writes, a format name and version, and a SHA-256 of the contents.

:func:`atomic_write` writes any file through a unique temporary name in the target's directory and ``os.replace``,
so a crash never leaves a half file under the real name, concurrent writers never collide on a temporary name, and
a reader sees the old or the new file, never a mix.

:func:`save_container` / :func:`load_container` store a JSON header and named numpy arrays as one *uncompressed*
``.npz`` (no pickle): the header carries ``format``, ``version`` and a ``sha256`` over the header and every array
(name, dtype, shape, bytes). Loading refuses a compressed member before inflating it, a file of another format or
version, and any altered byte, with :class:`ContainerError` naming the problem.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = ["ContainerError", "atomic_write", "atomic_write_text", "digest", "load_container", "save_container"]

HEADER = "header"  # the array holding the JSON header as uint8 bytes


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


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        data = path.read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            packed = [i.filename for i in zf.infolist() if i.compress_type != zipfile.ZIP_STORED]
        if packed:
            raise ContainerError(f"{path}: compressed members are refused ({', '.join(packed[:3])})")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ContainerError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as err:
        raise ContainerError(f"{path}: not a readable file (truncated or corrupt: {err})") from err
    if HEADER not in arrays:
        raise ContainerError(f"{path}: no header")
    try:
        header = json.loads(arrays.pop(HEADER).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ContainerError(f"{path}: corrupt header ({err})") from err
    if not isinstance(header, dict):
        raise ContainerError(f"{path}: the header is not a JSON object")
    return header, arrays


def load_container(
    path: str | os.PathLike, fmt: str, versions: Collection[int]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a file written by :func:`save_container`; returns (header without ``sha256``, arrays).

    Raises:
        FileNotFoundError: no file at ``path``.
        ContainerError: unreadable, compressed, of a format other than ``fmt`` or a version not in ``versions``,
            or a checksum mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    header, arrays = _read(path)
    if header.get("format") != fmt:
        raise ContainerError(f"{path}: format {header.get('format')!r} is not {fmt!r}")
    if header.get("version") not in versions:
        supported = ", ".join(map(str, sorted(versions)))
        raise ContainerError(
            f"{path}: file version {header.get('version')} is not supported (this reader: {supported})"
        )
    stored = header.pop("sha256", None)
    if stored != digest(header, arrays):
        raise ContainerError(f"{path}: checksum mismatch; the file was altered or damaged")
    return header, arrays
