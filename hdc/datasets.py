"""Offline dataset loading as numpy arrays (no torch): sklearn toys, MNIST-style IDX files, UCR/UEA via aeon.

``load(name)`` returns a :class:`Dataset` with raw-scale float32 inputs and int64 labels; scaling to the
network's input range is the caller's job (``gnet.data`` does it for G-Nets). Names:

- ``"digits"`` (1, 8, 8) images, ``"iris"``, ``"wine"``, ``"breast_cancer"`` tabular: shipped with
  scikit-learn, split once into a stratified 70/30 train/test split with seed 0.
- ``"mnist"``, ``"fashion-mnist"``: the four standard IDX files (gzipped or raw), searched in the places
  :func:`search_places` lists; downloaded into the user cache only when ``download=True``.
- ``"ucr:NAME"``: a UCR/UEA problem through ``aeon.datasets.load_classification`` (optional extra
  ``gnet-hdc[timeseries]``); the ones bundled inside the aeon wheel load offline (:func:`bundled_ucr_names`).
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import shutil
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KINDS = ("image", "tabular", "timeseries")
SKLEARN_NAMES = ("digits", "iris", "wine", "breast_cancer")
IDX_NAMES = ("mnist", "fashion-mnist")
BUILTIN_NAMES = SKLEARN_NAMES + IDX_NAMES
UCR_PREFIX = "ucr:"

# 70/30 stratified with seed 0: the split the torchhd baseline table in the reference notes was measured on,
# so our numbers on these sets compare with it directly.
SKLEARN_TEST_FRACTION = 0.3
SKLEARN_SPLIT_SEED = 0

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
IDX_ENV_VARS = {"mnist": "GNET_MNIST_DIR", "fashion-mnist": "GNET_FASHION_MNIST_DIR"}
DATA_DIR_ENV_VAR = "GNET_DATA_DIR"
DOWNLOAD_TIMEOUT_S = 5.0
_IDX_EXPECTED_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# Module attributes (not inlined) so tests can point the search somewhere empty.
_REPO_ROOT = Path(__file__).resolve().parent.parent
_FIXED_PLACES = (Path("/work/shared/datasets"), Path("/usr/share/datasets"))


class DatasetNotFoundError(FileNotFoundError, ValueError):
    """The data files were found nowhere; the message names every place looked and how to provide them."""


@dataclass(frozen=True)
class Dataset:
    """A fixed train/test split.

    x_train: float32 (N_train, *shape) at raw scale (pixels 0..255, digits 0..16, measured units otherwise).
    y_train: int64 (N_train,) in [0, n_classes). Same for x_test / y_test.
    shape: per-sample shape, (C, H, W) for images, (F,) for tabular, (C, L) for time series.
    value_range: (low, high) of the raw pixel scale for images, None otherwise.
    class_names: one string per class index.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    n_classes: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    value_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Dataset {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if len(self.class_names) != self.n_classes:
            raise ValueError(f"Dataset {self.name!r}: {len(self.class_names)} class_names for {self.n_classes} classes")
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != np.float32 or y.dtype != np.int64:
                raise ValueError(f"Dataset {self.name!r}: x_{split} must be float32 and y_{split} int64, "
                                 f"got {x.dtype} and {y.dtype}")
            if x.shape[1:] != tuple(self.shape) or y.shape != x.shape[:1]:
                raise ValueError(f"Dataset {self.name!r}: x_{split} {x.shape} / y_{split} {y.shape} do not match "
                                 f"per-sample shape {self.shape}")
            if len(x) == 0:
                raise ValueError(f"Dataset {self.name!r}: the {split} split is empty")
            if not np.isfinite(x).all():
                raise ValueError(f"Dataset {self.name!r}: x_{split} contains NaN or inf "
                                 f"({int((~np.isfinite(x)).sum())} values)")
            if y.min() < 0 or y.max() >= self.n_classes:
                raise ValueError(f"Dataset {self.name!r}: y_{split} has labels outside [0, {self.n_classes})")


def load(name: str, root: str | os.PathLike | None = None, *, download: bool = True) -> Dataset:
    """Load dataset ``name`` (see the module docstring for the names).

    root: for mnist / fashion-mnist the directory holding the IDX files (then the only place looked, and the
    download target); for ucr:NAME a directory holding NAME/NAME_TRAIN.ts and NAME/NAME_TEST.ts; ignored for
    the sklearn sets. download: whether a missing MNIST-style or UCR set may be fetched from the network.
    """
    if not isinstance(name, str):
        raise ValueError(f"name must be a string, got {type(name).__name__}")
    if name.lower().startswith(UCR_PREFIX):
        return _load_ucr(name[len(UCR_PREFIX):].strip(), root, download)
    key = name.strip().lower()
    if key in SKLEARN_NAMES:
        return _load_sklearn(key)
    if key in IDX_NAMES:
        return _load_idx_dataset(key, root, download)
    raise ValueError(f"unknown dataset name {name!r}; valid names: {', '.join(valid_names())}")


def valid_names() -> list[str]:
    """Every accepted name: the built-in ones, then 'ucr:NAME' for each UCR/UEA set bundled with aeon."""
    ucr = bundled_ucr_names()
    if ucr:
        tail = [f"{UCR_PREFIX}{n}" for n in ucr] + [f"{UCR_PREFIX}NAME (any UCR/UEA problem; non-bundled ones "
                                                    f"need download=True and network)"]
    else:
        tail = [f"{UCR_PREFIX}NAME (needs aeon: pip install gnet-hdc[timeseries])"]
    return list(BUILTIN_NAMES) + tail


def train_val_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices 0..n-1 into (train_idx, val_idx), int64, each sorted ascending.

    The validation set has round(n * val_fraction) items (at least 1 when val_fraction > 0), drawn without
    replacement by ``numpy.random.default_rng(seed)``; the training set keeps at least one item.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float, np.floating)) \
            or not math.isfinite(val_fraction) or not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be a number in [0, 1), got {val_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    n_val = round(n * float(val_fraction))
    if val_fraction > 0:
        n_val = max(n_val, 1)
    if n_val >= n:
        raise ValueError(f"val_fraction={val_fraction} of n={n} leaves no training items")
    perm = np.random.default_rng(int(seed)).permutation(int(n))
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)


# ---------------------------------------------------------------------------------------------- IDX files

_IDX_UBYTE = 0x08
_IDX_KNOWN_CODES = {0x08: "ubyte", 0x09: "byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip-compressed or raw, detected from the content) -> uint8 array.

    Raises ValueError naming the file on a bad magic number, an unsupported dtype code, a zero dimension
    count, or a payload whose length differs from the product of the dimensions (truncated or padded).
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"IDX file {path}: corrupt or truncated gzip stream ({e})") from e
    if len(raw) < 4:
        raise ValueError(f"IDX file {path}: {len(raw)} bytes is too short for the 4-byte magic number")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"IDX file {path}: bad magic number 0x{raw[:4].hex()} (must start with two zero bytes)")
    code, ndim = raw[2], raw[3]
    if code != _IDX_UBYTE:
        what = _IDX_KNOWN_CODES.get(code)
        raise ValueError(f"IDX file {path}: dtype code 0x{code:02x} "
                         f"({'unsupported ' + what if what else 'not a valid IDX code'}); only unsigned bytes "
                         f"(0x08) are supported")
    if ndim == 0:
        raise ValueError(f"IDX file {path}: header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX file {path}: truncated header ({len(raw)} bytes, need {header} for {ndim} dims)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(dims)
    if len(raw) - header != expected:
        raise ValueError(f"IDX file {path}: payload is {len(raw) - header} bytes but dims {dims} need {expected} "
                         f"({'truncated' if len(raw) - header < expected else 'trailing bytes'})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def search_places(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The directories ``load(name)`` looks in for the IDX files of mnist / fashion-mnist, in order.

    With ``root`` only root. Otherwise: $GNET_MNIST_DIR (or $GNET_FASHION_MNIST_DIR), $GNET_DATA_DIR/<name>,
    ../shared/datasets/<name> from the current directory and from the repository root,
    /work/shared/datasets/<name>, /usr/share/datasets/<name>, and the cache <user cache>/gnet-hdc/<name>.
    """
    if name not in IDX_NAMES:
        raise ValueError(f"name must be one of {IDX_NAMES} for an IDX search, got {name!r}")
    if root is not None:
        return [Path(root).expanduser()]
    places = []
    if os.environ.get(IDX_ENV_VARS[name]):
        places.append(Path(os.environ[IDX_ENV_VARS[name]]).expanduser())
    if os.environ.get(DATA_DIR_ENV_VAR):
        places.append(Path(os.environ[DATA_DIR_ENV_VAR]).expanduser() / name)
    places.append(Path.cwd().parent / "shared" / "datasets" / name)
    places.append(_REPO_ROOT.parent / "shared" / "datasets" / name)
    places.extend(p / name for p in _FIXED_PLACES)
    places.append(cache_dir() / name)
    unique: dict[str, Path] = {}
    for p in places:
        unique.setdefault(os.path.abspath(p), p)
    return list(unique.values())


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/gnet-hdc, else ~/.cache/gnet-hdc: where downloads go."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gnet-hdc"


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
            with urllib.request.urlopen(IDX_DOWNLOAD_URLS[name] + f"{stem}.gz", timeout=DOWNLOAD_TIMEOUT_S) as r, \
                    open(part, "wb") as f:
                shutil.copyfileobj(r, f)
            got = read_idx(part).shape
            if got != _IDX_EXPECTED_SHAPES[key]:
                raise ValueError(f"downloaded {stem}.gz has shape {got}, expected {_IDX_EXPECTED_SHAPES[key]}")
            part.replace(final)
        finally:
            part.unlink(missing_ok=True)


def _load_idx_dataset(name: str, root: str | os.PathLike | None, download: bool) -> Dataset:
    places = search_places(name, root)
    files = next((f for f in map(_idx_paths, places) if f is not None), None)
    download_error = None
    if files is None and download:
        target = places[0] if root is not None else cache_dir() / name
        try:
            _download_idx(name, target)
            files = _idx_paths(target)
        except (OSError, ValueError) as e:  # URLError and socket timeouts are OSErrors
            download_error = f"download from {IDX_DOWNLOAD_URLS[name]} into {target} failed: {e}"
    if files is None:
        lines = [f"{name}: the IDX files ({', '.join(f'{s}[.gz]' for s in IDX_FILES.values())}) were not found. "
                 f"Looked in:"]
        lines += [f"  - {p} ({_describe_missing(p)})" for p in places]
        lines.append(download_error or "  (download=False, so nothing was downloaded)")
        lines.append(f"Provide them with load({name!r}, root=DIR), ${IDX_ENV_VARS[name]}=DIR or "
                     f"${DATA_DIR_ENV_VAR}=PARENT (files in PARENT/{name}), or copy them into {cache_dir() / name}; "
                     f"with network, download=True fetches them from {IDX_DOWNLOAD_URLS[name]}"
                     + (" (Debian/Ubuntu: apt-get install dataset-fashion-mnist)" if name == "fashion-mnist" else ""))
        raise DatasetNotFoundError("\n".join(lines))

    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1:
            raise ValueError(f"{name}: {files[f'x_{split}']} must be 3-D images and {files[f'y_{split}']} 1-D "
                             f"labels, got shapes {x.shape} and {y.shape}")
        if len(x) != len(y):
            raise ValueError(f"{name}: {files[f'y_{split}']} has {len(y)} labels but {files[f'x_{split}']} has "
                             f"{len(x)} images")
        if y.size and y.max() > 9:
            raise ValueError(f"{name}: {files[f'y_{split}']} has label {int(y.max())}, expected 0..9")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise ValueError(f"{name}: train images {arrays['x_train'].shape[1:]} and test images "
                         f"{arrays['x_test'].shape[1:]} differ in size")
    h, w = arrays["x_train"].shape[1:]
    names = FASHION_MNIST_CLASSES if name == "fashion-mnist" else tuple(str(d) for d in range(10))
    return Dataset(
        name=name, kind="image", shape=(1, h, w), n_classes=10, class_names=names, value_range=(0.0, 255.0),
        x_train=arrays["x_train"].astype(np.float32)[:, None], y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"].astype(np.float32)[:, None], y_test=arrays["y_test"].astype(np.int64),
    )


# ---------------------------------------------------------------------------------------------- sklearn

def _load_sklearn(name: str) -> Dataset:
    from sklearn import datasets as skd
    from sklearn.model_selection import train_test_split

    bunch = getattr(skd, f"load_{name}")()
    x, y = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    if name == "digits":
        kind, shape, value_range = "image", (1, 8, 8), (0.0, 16.0)
    else:
        kind, shape, value_range = "tabular", (x.shape[1],), None
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=SKLEARN_TEST_FRACTION, stratify=y,
                                              random_state=SKLEARN_SPLIT_SEED)
    return Dataset(
        name=name, kind=kind, shape=shape, n_classes=len(bunch.target_names),
        class_names=tuple(str(c) for c in bunch.target_names), value_range=value_range,
        x_train=np.ascontiguousarray(x_tr.reshape(-1, *shape)), y_train=y_tr,
        x_test=np.ascontiguousarray(x_te.reshape(-1, *shape)), y_test=y_te,
    )


# ---------------------------------------------------------------------------------------------- UCR / UEA

_AEON_HINT = "pip install gnet-hdc[timeseries]"


def bundled_ucr_names() -> list[str]:
    """Classification problems shipped inside the installed aeon wheel (load offline); [] without aeon.

    A problem counts when aeon/datasets/data/<dir> holds <name>_TRAIN.ts and <name>_TEST.ts whose header says
    ``@classLabel true``; ``<dir>_eq`` entries are aeon's equal-length versions of unequal-length sets.
    """
    data_dir = _aeon_data_dir()
    if data_dir is None or not data_dir.is_dir():
        return []
    names = []
    for sub in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        for stem in (sub.name, f"{sub.name}_eq"):
            train, test = sub / f"{stem}_TRAIN.ts", sub / f"{stem}_TEST.ts"
            if train.is_file() and test.is_file() and _ts_is_classification(train):
                names.append(stem)
    return names


def _aeon_data_dir() -> Path | None:
    # find_spec locates aeon without importing it (importing aeon costs seconds).
    try:
        spec = importlib.util.find_spec("aeon")
    except (ImportError, ValueError):  # ValueError: sys.modules["aeon"] is None or has no spec
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def _ucr_available(base: str, root: str | os.PathLike | None) -> bool:
    """Whether aeon would load problem `base` without downloading."""
    if root is not None:
        folder = Path(root).expanduser() / base
        return (folder / f"{base}_TRAIN.ts").is_file() and (folder / f"{base}_TEST.ts").is_file()
    try:  # also sees aeon's download cache; absent from older aeon releases
        from aeon.datasets.dataset_collections import get_downloaded_tsc_tsr_datasets
    except ImportError:
        return base in {n.removesuffix("_eq") for n in bundled_ucr_names()}
    return base in get_downloaded_tsc_tsr_datasets()


def _ts_is_classification(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            low = line.strip().lower()
            if low.startswith("@data"):
                return False
            if low.startswith("@classlabel"):
                return low.split()[1:2] == ["true"]
    return False


def _class_order(labels: np.ndarray) -> list[str]:
    """Distinct labels, numerically ordered when all are numbers ('2' before '10'), else alphabetically."""
    distinct = sorted({str(v) for v in labels})
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def _load_ucr(problem: str, root: str | os.PathLike | None, download: bool) -> Dataset:
    if not problem:
        raise ValueError("ucr: needs a problem name, e.g. 'ucr:GunPoint'; bundled: " + ", ".join(bundled_ucr_names()))
    try:
        from aeon.datasets import load_classification
    except ImportError as e:
        raise ImportError(f"loading 'ucr:{problem}' needs the optional dependency aeon: {_AEON_HINT}") from e
    name = f"{UCR_PREFIX}{problem}"
    base = problem[:-3] if problem.endswith("_eq") else problem
    if not download and not _ucr_available(base, root):
        where = f"{Path(root) / base}" if root is not None else "aeon's bundled data or its download cache"
        raise DatasetNotFoundError(
            f"{name}: {base}_TRAIN.ts / {base}_TEST.ts not found in {where} and download=False. Bundled problems: "
            f"{', '.join(bundled_ucr_names())}. Pass root=DIR holding {base}/{base}_TRAIN.ts and "
            f"{base}/{base}_TEST.ts, or download=True to fetch it from Zenodo.")
    extract_path = None if root is None else os.fspath(root)
    try:
        x_tr, y_tr = load_classification(problem, split="train", extract_path=extract_path)
        x_te, y_te = load_classification(problem, split="test", extract_path=extract_path)
    except ValueError as e:
        raise ValueError(f"{name}: aeon could not load it: {e}") from e
    if isinstance(x_tr, list) or isinstance(x_te, list):
        eq = f"'ucr:{problem}_eq'" if f"{problem}_eq" in bundled_ucr_names() else "an equal-length version"
        raise ValueError(f"{name} has series of unequal length; a fixed (C, L) input is needed. Use {eq} "
                         f"(aeon truncates the series to one length) or pad them yourself")
    classes = _class_order(np.concatenate([y_tr, y_te]))
    index = {c: i for i, c in enumerate(classes)}
    return Dataset(
        name=name, kind="timeseries", shape=tuple(x_tr.shape[1:]), n_classes=len(classes),
        class_names=tuple(classes),
        x_train=np.ascontiguousarray(x_tr, dtype=np.float32), y_train=np.array([index[str(v)] for v in y_tr], np.int64),
        x_test=np.ascontiguousarray(x_te, dtype=np.float32), y_test=np.array([index[str(v)] for v in y_te], np.int64),
    )


# ---------------------------------------------------------------------------------------------- summary

def _summary(names: list[str]) -> None:
    """Print one markdown row per dataset: kind, shape, classes, train/test sizes, raw range, load time."""
    print("| name | kind | shape | classes | train | test | raw x range | load s |")
    print("|---|---|---|---|---|---|---|---|")
    for n in names:
        t0 = time.perf_counter()
        ds = load(n, download=False)
        dt = time.perf_counter() - t0
        lo, hi = float(ds.x_train.min()), float(ds.x_train.max())
        print(f"| {ds.name} | {ds.kind} | {ds.shape} | {ds.n_classes} | {len(ds.y_train)} | {len(ds.y_test)} "
              f"| {lo:.3g} .. {hi:.3g} | {dt:.2f} |")


if __name__ == "__main__":
    _summary(sys.argv[1:] or list(SKLEARN_NAMES))
