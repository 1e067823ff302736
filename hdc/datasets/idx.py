"""MNIST-style IDX files: the reader, the search for the four files of ``mnist`` / ``fashion-mnist``, and the
download into the user cache."""

from __future__ import annotations

import gzip
import io
import math
import os
import shutil
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hdc.datasets.base import Dataset, DatasetNotFoundError
from hdc.datasets.places import cache_dir, how_to_provide, search_places
from hdc.io import MAX_BYTES_ENV, max_load_bytes

__all__ = ["IDX_DOWNLOAD_URLS", "IDX_FILES", "IDX_NAMES", "load_idx_dataset", "read_idx"]

IDX_NAMES = ("mnist", "fashion-mnist")
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IDX_DOWNLOAD_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
DOWNLOAD_TIMEOUT_S = 5.0
_IDX_EXPECTED_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_READ_CHUNK = 2**20
_IDX_UBYTE = 0x08
_IDX_KNOWN_CODES = {0x08: "ubyte", 0x09: "byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}


def read_idx(path: str | os.PathLike, *, max_bytes: int | None = None) -> NDArray[np.uint8]:
    """Read an IDX file of unsigned bytes (gzip-compressed or raw, detected from the content) -> uint8 array.

    The file is streamed into an array of the size its header declares, so memory never exceeds that size (a gzip
    stream that inflates past it is stopped at the first extra byte), and the declared size may not exceed
    ``max_bytes`` (None: ``$HDC_MAX_LOAD_BYTES``, else 2 GiB; see :func:`hdc.io.max_load_bytes`).

    Raises ValueError naming the file on a bad magic number, an unsupported dtype code, a zero dimension
    count, a declared size above ``max_bytes``, or a payload whose length differs from the product of the
    dimensions (truncated or padded).
    """
    path = Path(path)
    bound = max_load_bytes(max_bytes)
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    if not compressed:
        with open(path, "rb") as f:
            return _read_idx_stream(f, path, bound)
    try:
        with gzip.open(path, "rb") as f:
            return _read_idx_stream(f, path, bound)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"IDX file {path}: corrupt or truncated gzip stream ({e})") from e


def _read_idx_stream(f: io.BufferedIOBase, path: Path, bound: int) -> NDArray[np.uint8]:
    head = f.read(4)
    if len(head) < 4:
        raise ValueError(f"IDX file {path}: {len(head)} bytes is too short for the 4-byte magic number")
    if head[0] != 0 or head[1] != 0:
        raise ValueError(f"IDX file {path}: bad magic number 0x{head.hex()} (must start with two zero bytes)")
    code, ndim = head[2], head[3]
    if code != _IDX_UBYTE:
        what = _IDX_KNOWN_CODES.get(code)
        raise ValueError(
            f"IDX file {path}: dtype code 0x{code:02x} "
            f"({'unsupported ' + what if what else 'not a valid IDX code'}); only unsigned bytes "
            f"(0x08) are supported"
        )
    if ndim == 0:
        raise ValueError(f"IDX file {path}: header declares 0 dimensions")
    raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError(
            f"IDX file {path}: truncated header ({4 + len(raw_dims)} bytes, need {4 + 4 * ndim} for {ndim} dims)"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    expected = math.prod(dims)
    if expected > bound:
        raise ValueError(
            f"IDX file {path}: dims {dims} declare {expected} bytes, above max_bytes={bound} (raise it with "
            f"max_bytes= or ${MAX_BYTES_ENV} if the file is trusted)"
        )
    out = np.empty(expected, dtype=np.uint8)
    view = out.data
    got = 0
    while got < expected:
        n = f.readinto(view[got : got + _READ_CHUNK])
        if not n:
            break
        got += n
    if got < expected:
        raise ValueError(f"IDX file {path}: payload is {got} bytes but dims {dims} need {expected} (truncated)")
    extra = len(f.read(_READ_CHUNK))
    if extra:
        more = "" if extra < _READ_CHUNK else " or more"
        raise ValueError(
            f"IDX file {path}: payload is {expected + extra}{more} bytes but dims {dims} need {expected} "
            f"(trailing bytes)"
        )
    return out.reshape(dims)


def _idx_paths(directory: Path) -> dict[str, Path] | None:
    """The four files in directory (raw preferred over .gz), or None if any is missing."""
    found = {}
    for key, stem in IDX_FILES.items():
        for candidate in (directory / stem, directory / f"{stem}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            return None
    return found


def _describe_missing(directory: Path) -> str:
    if not directory.is_dir():
        return "does not exist"
    missing = [s for s in IDX_FILES.values() if not (directory / s).is_file() and not (directory / f"{s}.gz").is_file()]
    return "missing " + ", ".join(f"{s}[.gz]" for s in missing)


def _download_idx(name: str, target: Path) -> None:
    """Fetch the four gzipped files into target, each checked by parsing before it is renamed into place."""
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        _fetch_idx_files(name, target)
    except BaseException:
        if created and not any(target.iterdir()):
            target.rmdir()
        raise


def _fetch_idx_files(name: str, target: Path) -> None:
    for key, stem in IDX_FILES.items():
        final = target / f"{stem}.gz"
        if final.is_file():
            continue
        part = target / f"{stem}.gz.part"
        try:
            with (
                urllib.request.urlopen(IDX_DOWNLOAD_URLS[name] + f"{stem}.gz", timeout=DOWNLOAD_TIMEOUT_S) as r,
                open(part, "wb") as f,
            ):
                shutil.copyfileobj(r, f)
            got = read_idx(part).shape
            if got != _IDX_EXPECTED_SHAPES[key]:
                raise ValueError(f"downloaded {stem}.gz has shape {got}, expected {_IDX_EXPECTED_SHAPES[key]}")
            part.replace(final)
        finally:
            part.unlink(missing_ok=True)


def _find_idx_files(name: str, root: str | os.PathLike | None, download: bool) -> dict[str, Path]:
    places = search_places(name, root)
    files = next((f for f in map(_idx_paths, places) if f is not None), None)
    if files is not None:
        return files
    outcome = "  (download=False, so nothing was downloaded)"
    target = places[0] if root is not None else cache_dir() / name
    if download:
        try:
            _download_idx(name, target)
            files = _idx_paths(target)
        except (OSError, ValueError) as e:  # URLError and socket timeouts are OSErrors
            outcome = f"download from {IDX_DOWNLOAD_URLS[name]} into {target} failed: {e}"
        if files is not None:
            return files
    lines = [f"{name}: the IDX files ({', '.join(f'{s}[.gz]' for s in IDX_FILES.values())}) were not found. Looked in:"]
    lines += [f"  - {p} ({_describe_missing(p)})" for p in places]
    lines.append(outcome)
    lines.append(
        f"{how_to_provide(name, cache_dir() / name)}; with network, download=True fetches them from "
        f"{IDX_DOWNLOAD_URLS[name]}."
    )
    raise DatasetNotFoundError("\n".join(lines))


def load_idx_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """``mnist`` or ``fashion-mnist`` from the first place of :func:`hdc.datasets.places.search_places` that holds
    the four files; fetched into ``root`` (or the user cache) when none does and ``download`` is True.

    Raises:
        DatasetNotFoundError: the files are nowhere (and could not be downloaded); the message lists every place
            looked, what each lacked, and how to provide the files.
    """
    files = _find_idx_files(name, root, download)
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1:
            raise ValueError(
                f"{name}: {files[f'x_{split}']} must be 3-D images and {files[f'y_{split}']} 1-D "
                f"labels, got shapes {x.shape} and {y.shape}"
            )
        if len(x) != len(y):
            raise ValueError(
                f"{name}: {files[f'y_{split}']} has {len(y)} labels but {files[f'x_{split}']} has {len(x)} images"
            )
        if y.size and y.max() > 9:
            raise ValueError(f"{name}: {files[f'y_{split}']} has label {int(y.max())}, expected 0..9")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise ValueError(
            f"{name}: train images {arrays['x_train'].shape[1:]} and test images "
            f"{arrays['x_test'].shape[1:]} differ in size"
        )
    h, w = arrays["x_train"].shape[1:]
    names = FASHION_MNIST_CLASSES if name == "fashion-mnist" else tuple(str(d) for d in range(10))
    return Dataset(
        name=name,
        kind="image",
        shape=(1, h, w),
        n_classes=10,
        class_names=names,
        value_range=(0.0, 255.0),
        x_train=arrays["x_train"].astype(np.float32)[:, None],
        y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"].astype(np.float32)[:, None],
        y_test=arrays["y_test"].astype(np.int64),
    )
