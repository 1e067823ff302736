"""Offline dataset loading: hdc.datasets (numpy) and gnet.data (torch). No network; MNIST / aeon tests skip."""

from __future__ import annotations

import gzip
import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gnet import data as gd
from hdc import datasets as hd
from hdc.datasets import places

# ------------------------------------------------------------------------------------------- helpers


def write_idx(path: Path, array: np.ndarray, *, magic: bytes | None = None, cut: int = 0) -> Path:
    """Write a uint8 IDX file by hand (independent of the reader); `cut` drops trailing payload bytes."""
    header = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    payload = array.astype(np.uint8).tobytes()
    blob = header + (payload[:-cut] if cut else payload)
    path.write_bytes(gzip.compress(blob) if path.suffix == ".gz" else blob)
    return path


def write_fake_mnist(directory: Path, n_train: int = 12, n_test: int = 5, gz: bool = True, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for key, stem in hd.IDX_FILES.items():
        write_idx(directory / (stem + (".gz" if gz else "")), arrays[key])
    return arrays


def real_mnist_dir() -> Path | None:
    for place in hd.search_places("mnist"):
        if all((place / s).is_file() or (place / f"{s}.gz").is_file() for s in hd.IDX_FILES.values()):
            return place
    return None


HAS_AEON = importlib.util.find_spec("aeon") is not None


# ------------------------------------------------------------------------------------------- sklearn sets


@pytest.mark.parametrize(
    "name, kind, shape, n_classes, n_total",
    [
        ("digits", "image", (1, 8, 8), 10, 1797),
        ("iris", "tabular", (4,), 3, 150),
        ("wine", "tabular", (13,), 3, 178),
        ("breast_cancer", "tabular", (30,), 2, 569),
    ],
)
def test_sklearn_sets_shapes_split_and_determinism(name, kind, shape, n_classes, n_total):
    ds = hd.load(name)
    assert (ds.name, ds.kind, ds.shape, ds.n_classes) == (name, kind, shape, n_classes)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.shape[1:] == shape and ds.x_test.shape[1:] == shape
    assert len(ds.y_train) + len(ds.y_test) == n_total
    # sklearn's stratified split rounds the test size up: ceil(0.3 * n).
    assert len(ds.y_test) == int(np.ceil(hd.SKLEARN_TEST_FRACTION * n_total))
    # Stratified: every class in both splits, class shares within one sample of each other.
    train_counts = np.bincount(ds.y_train, minlength=n_classes)
    test_counts = np.bincount(ds.y_test, minlength=n_classes)
    expected_test = (train_counts + test_counts) * len(ds.y_test) / n_total
    assert np.all(np.abs(test_counts - expected_test) <= 1.0)
    again = hd.load(name)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(ds, field), getattr(again, field))
    # Raw scale is kept: digits pixels are 0..16 integers.
    if name == "digits":
        assert ds.value_range == (0.0, 16.0)
        assert ds.x_train.min() == 0 and ds.x_train.max() == 16
        np.testing.assert_array_equal(ds.x_train, np.round(ds.x_train))


def test_name_is_case_insensitive_and_unknown_name_lists_all_valid():
    assert hd.load("IRIS").name == "iris"
    with pytest.raises(ValueError) as info:
        hd.load("cifar-100")
    message = str(info.value)
    assert "cifar-100" in message
    for name in hd.BUILTIN_NAMES:
        assert name in message
    assert "ucr:" in message
    for bundled in hd.bundled_ucr_names():
        assert f"ucr:{bundled}" in message
    with pytest.raises(ValueError, match="name must be a string"):
        hd.load(None)  # type: ignore[arg-type]


def test_dataset_rejects_nan_and_inconsistent_fields():
    good = hd.load("iris")
    x_bad = good.x_train.copy()
    x_bad[3, 1] = np.nan
    fields = dict(
        name="iris-nan",
        kind="tabular",
        shape=good.shape,
        n_classes=3,
        x_train=x_bad,
        y_train=good.y_train,
        x_test=good.x_test,
        y_test=good.y_test,
        class_names=good.class_names,
    )
    with pytest.raises(ValueError, match="iris-nan.*NaN"):
        hd.Dataset(**fields)
    with pytest.raises(ValueError, match="labels outside"):
        hd.Dataset(**{**fields, "x_train": good.x_train, "y_train": good.y_train + 3})
    with pytest.raises(ValueError, match="kind"):
        hd.Dataset(**{**fields, "x_train": good.x_train, "kind": "video"})


# ------------------------------------------------------------------------------------------- train/val split


def test_train_val_split_deterministic_disjoint_and_complete():
    tr, va = hd.train_val_split(1000, 0.2, seed=7)
    tr2, va2 = hd.train_val_split(1000, 0.2, seed=7)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(va, va2)
    assert len(va) == 200 and len(tr) == 800
    assert np.intersect1d(tr, va).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, va])), np.arange(1000))
    assert tr.dtype == np.int64 and va.dtype == np.int64
    _, va_other = hd.train_val_split(1000, 0.2, seed=8)
    assert not np.array_equal(va, va_other)
    # The paper's MNIST protocol: 2,000 of 60,000.
    assert len(hd.train_val_split(60000, 2000 / 60000, seed=0)[1]) == 2000
    # A tiny positive fraction still yields one validation item; zero yields none.
    assert len(hd.train_val_split(5, 0.01, seed=0)[1]) == 1
    tr0, va0 = hd.train_val_split(5, 0.0, seed=0)
    assert len(va0) == 0 and len(tr0) == 5


@pytest.mark.parametrize(
    "args, match",
    [
        ((0, 0.1, 0), "n_items must"),
        ((10, 1.0, 0), "val_fraction"),
        ((10, -0.1, 0), "val_fraction"),
        ((10, float("nan"), 0), "val_fraction"),
        ((10, 0.1, -1), "seed"),
        ((10, 0.1, 1.5), "seed"),
        ((1, 0.5, 0), "no training items"),
    ],
)
def test_train_val_split_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        hd.train_val_split(*args)


# ------------------------------------------------------------------------------------------- IDX files


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_round_trip(tmp_path, suffix):
    array = np.random.default_rng(1).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    path = write_idx(tmp_path / f"a-idx3-ubyte{suffix}", array)
    back = hd.read_idx(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, array)
    back.flags.writeable or pytest.fail("read_idx must return a writable array")
    labels = np.arange(9, dtype=np.uint8)
    np.testing.assert_array_equal(hd.read_idx(write_idx(tmp_path / f"l-idx1-ubyte{suffix}", labels)), labels)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "magic, cut, match",
    [
        (b"\x01\x00\x08\x03", 0, "bad magic"),
        (b"\x00\x00\x0d\x03", 0, "unsupported float32"),
        (b"\x00\x00\x42\x03", 0, "not a valid IDX code"),
        (None, 1, "truncated"),
        (None, 100, "truncated"),
    ],
)
def test_read_idx_rejects_corrupt_files(tmp_path, suffix, magic, cut, match):
    path = write_idx(tmp_path / f"bad-idx3-ubyte{suffix}", np.zeros((4, 6, 6), np.uint8), magic=magic, cut=cut)
    with pytest.raises(ValueError, match=match) as info:
        hd.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_trailing_bytes_truncated_header_and_broken_gzip(tmp_path):
    path = tmp_path / "extra-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="trailing bytes"):
        hd.read_idx(path)
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">I", 3))
    with pytest.raises(ValueError, match="truncated header"):
        hd.read_idx(path)
    gz = tmp_path / "broken-idx1-ubyte.gz"
    gz.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 100) + bytes(100))[:-20])
    with pytest.raises(ValueError, match="gzip") as info:
        hd.read_idx(gz)
    assert str(gz) in str(info.value)


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_explicit_root(tmp_path, gz):
    arrays = write_fake_mnist(tmp_path / "m", gz=gz)
    ds = hd.load("mnist", root=tmp_path / "m", download=False)
    assert (ds.kind, ds.shape, ds.n_classes, ds.value_range) == ("image", (1, 28, 28), 10, (0.0, 255.0))
    np.testing.assert_array_equal(ds.x_train[:, 0], arrays["x_train"].astype(np.float32))
    np.testing.assert_array_equal(ds.y_test, arrays["y_test"].astype(np.int64))
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64


def test_load_mnist_label_count_mismatch(tmp_path):
    write_fake_mnist(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(labels, np.zeros(11, np.uint8))  # 12 images
    with pytest.raises(ValueError, match="11 labels but .* 12 images") as info:
        hd.load("mnist", root=tmp_path, download=False)
    assert str(labels) in str(info.value)


def test_env_var_is_searched(tmp_path, monkeypatch):
    write_fake_mnist(tmp_path / "fm", n_train=3, n_test=2, gz=False)
    monkeypatch.setenv("GNET_FASHION_MNIST_DIR", str(tmp_path / "fm"))
    ds = hd.load("fashion-mnist", download=False)
    assert len(ds.y_train) == 3 and ds.class_names[0] == "T-shirt/top"
    monkeypatch.delenv("GNET_FASHION_MNIST_DIR")
    write_fake_mnist(tmp_path / "data" / "mnist", n_train=4, n_test=2)
    monkeypatch.setenv("GNET_DATA_DIR", str(tmp_path / "data"))
    assert len(hd.load("mnist", download=False).y_train) == 4


@pytest.fixture
def isolated_places(tmp_path, monkeypatch):
    """Every default place under tmp_path: a fake source checkout tmp/repo (so ../shared is tmp/shared), an OS
    package folder tmp/os/<name>, the cache under tmp/cache, and no data environment variables."""
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "pyproject.toml").write_text("[project]\nname = 'fake'\n")
    monkeypatch.setattr(places, "_SOURCE_ROOT", tmp_path / "repo")
    for name in hd.IDX_NAMES:
        monkeypatch.setitem(places.OS_PACKAGE_DIRS, name, (tmp_path / "os" / name,))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in [hd.DATA_DIR_ENV_VAR, *hd.DATASET_ENV_VARS.values()]:
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_search_order_is_env_dataset_dir_env_data_dir_shared_os_package_cache(isolated_places, monkeypatch):
    tmp = isolated_places
    monkeypatch.setenv("GNET_MNIST_DIR", str(tmp / "env"))
    monkeypatch.setenv("GNET_DATA_DIR", str(tmp / "data"))
    order = [
        tmp / "env",
        tmp / "data" / "mnist",
        tmp / "shared" / "datasets" / "mnist",
        tmp / "os" / "mnist",
        tmp / "cache" / "gnet-hdc" / "datasets" / "mnist",
    ]
    assert hd.search_places("mnist") == order
    # Each place holds a different fake set (told apart by its number of training images); load takes the first
    # place that has all four files, and falls through to the next when it is emptied.
    for count, place in enumerate(order, start=3):
        write_fake_mnist(place, n_train=count, n_test=2)
    for count, place in enumerate(order, start=3):
        assert len(hd.load("mnist", download=False).y_train) == count, place
        for path in place.iterdir():
            path.unlink()
    # An explicit root is the only place looked, whatever else is set.
    write_fake_mnist(tmp / "explicit", n_train=9, n_test=2)
    write_fake_mnist(tmp / "env", n_train=3, n_test=2)
    assert hd.search_places("mnist", root=tmp / "explicit") == [tmp / "explicit"]
    assert len(hd.load("mnist", root=tmp / "explicit", download=False).y_train) == 9


def test_missing_mnist_names_every_place_looked(isolated_places, monkeypatch):
    tmp = isolated_places
    monkeypatch.setenv("GNET_MNIST_DIR", str(tmp / "env"))
    (tmp / "shared" / "datasets" / "mnist").mkdir(parents=True)
    write_idx(tmp / "shared" / "datasets" / "mnist" / "train-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(hd.DatasetNotFoundError) as info:
        hd.load("mnist", download=False)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)
    message = str(info.value)
    for place in hd.search_places("mnist"):
        assert f"- {place} (" in message
    assert "train-labels-idx1-ubyte[.gz]" in message  # what the partly filled place lacks
    assert "download=False" in message and "GNET_MNIST_DIR" in message and "GNET_DATA_DIR" in message
    assert not (tmp / "cache").exists()  # nothing downloaded or created
    with pytest.raises(hd.DatasetNotFoundError) as info:
        hd.load("mnist", root=tmp / "nowhere", download=False)
    assert str(tmp / "nowhere") in str(info.value) and str(tmp / "env") not in str(info.value)
    with pytest.raises(hd.DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        hd.load("fashion-mnist", download=False)


def test_download_goes_into_the_user_cache(isolated_places, monkeypatch):
    """With no files anywhere and download=True, the four files are fetched into the cache and loaded from there
    (the network is replaced by a local fake serving small IDX files)."""
    import io
    import urllib.request

    from hdc.datasets import idx

    served = write_fake_mnist(isolated_places / "served", n_train=4, n_test=3, gz=True)
    requested = []

    def fake_urlopen(url, timeout):
        requested.append(url)
        return io.BytesIO((isolated_places / "served" / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr(idx, "_IDX_EXPECTED_SHAPES", {k: v.shape for k, v in served.items()})
    ds = hd.load("mnist")
    assert len(requested) == 4 and all(url.startswith(hd.IDX_DOWNLOAD_URLS["mnist"]) for url in requested)
    cache = isolated_places / "cache" / "gnet-hdc" / "datasets" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{stem}.gz" for stem in hd.IDX_FILES.values())
    np.testing.assert_array_equal(ds.y_train, served["y_train"].astype(np.int64))
    hd.load("mnist")  # the second load finds the cache and fetches nothing
    assert len(requested) == 4


def test_shared_folder_of_a_worktree_and_of_its_main_checkout(tmp_path, monkeypatch):
    main, worktree = tmp_path / "main", tmp_path / "worktrees" / "h1"
    (main / ".git" / "worktrees" / "h1").mkdir(parents=True)
    (main / ".git" / "worktrees" / "h1" / "commondir").write_text("../..\n")
    worktree.mkdir(parents=True)
    (worktree / ".git").write_text(f"gitdir: {main / '.git' / 'worktrees' / 'h1'}\n")
    monkeypatch.setattr(places, "_SOURCE_ROOT", worktree)
    assert places.checkout_roots() == [worktree, main.resolve()]
    shared = [p for p in hd.search_places("mnist") if "shared" in p.parts]
    assert shared == [
        tmp_path / "worktrees" / "shared" / "datasets" / "mnist",
        tmp_path.resolve() / "shared" / "datasets" / "mnist",
    ]
    # An installed package (no .git or pyproject.toml beside it) has no checkout and no shared folder.
    monkeypatch.setattr(places, "_SOURCE_ROOT", tmp_path / "site-packages")
    assert places.checkout_roots() == []
    assert not any("shared" in p.parts for p in hd.search_places("mnist"))


def test_no_absolute_machine_path_in_hdc():
    """String literals in hdc/ (f-string pieces included) that look like an absolute path may only name standard
    system folders (/usr, /proc, /dev, /etc, /sys); data folders come from root=, environment variables, the
    checkout, or the user cache."""
    import ast
    import re

    path_like = re.compile(r"^/[\w.~-]+(/[\w.~-]*)*$")  # "/work/shared", "/home/", not "/sqrt(d)" or "/ y"
    allowed = ("/usr/", "/proc/", "/dev/", "/etc/", "/sys/")
    package = Path(hd.__file__).resolve().parents[1]
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value.strip()
                if path_like.match(text) and not (text + "/").startswith(allowed):
                    found.append(f"{path.relative_to(package.parent)}:{node.lineno}: {text!r}")
    assert not found, "absolute paths in hdc/:\n" + "\n".join(found)


@pytest.mark.skipif(real_mnist_dir() is None, reason="MNIST IDX files not found in any hdc.datasets.search_places")
def test_real_mnist():
    ds = hd.load("mnist", download=False)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.x_train.min() == 0 and ds.x_train.max() == 255
    np.testing.assert_array_equal(np.unique(ds.y_train), np.arange(10))
    # Known class counts of the MNIST training set (e.g. 5923 zeros, 6742 ones).
    assert np.bincount(ds.y_train)[:2].tolist() == [5923, 6742]
    splits = gd.split_dataset(ds, val_fraction=2000 / 60000, seed=0)  # reuse: a second load costs seconds
    assert (len(splits.train), len(splits.val), len(splits.test)) == (58000, 2000, 10000)
    x = splits.train.tensors[0]
    assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.float32
    assert x.min().item() == -1.0 and x.max().item() == 1.0


# ------------------------------------------------------------------------------------------- UCR via aeon


def test_ucr_without_aeon_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "aeon", None)
    monkeypatch.setitem(sys.modules, "aeon.datasets", None)
    with pytest.raises(ImportError, match=r"pip install gnet-hdc\[timeseries\]"):
        hd.load("ucr:GunPoint")
    assert hd.bundled_ucr_names() == []
    with pytest.raises(ValueError, match=r"gnet-hdc\[timeseries\]"):
        hd.load("no-such-set")


@pytest.mark.skipif(not HAS_AEON, reason="aeon not installed (pip install gnet-hdc[timeseries])")
def test_ucr_gunpoint_univariate_and_basicmotions_multivariate():
    ds = hd.load("ucr:GunPoint", download=False)
    assert (ds.name, ds.kind, ds.shape, ds.n_classes) == ("ucr:GunPoint", "timeseries", (1, 150), 2)
    assert (len(ds.y_train), len(ds.y_test)) == (50, 150)
    assert ds.class_names == ("1", "2") and set(np.unique(ds.y_train)) == {0, 1}
    assert "GunPoint" in hd.bundled_ucr_names() and "Covid3Month" not in hd.bundled_ucr_names()  # regression
    mv = hd.load("ucr:BasicMotions", download=False)
    assert mv.shape == (6, 100) and mv.n_classes == 4
    assert mv.class_names == tuple(sorted(mv.class_names))  # non-numeric labels ordered alphabetically

    splits = gd.load_dataset("ucr:GunPoint", val_fraction=0.2, seed=0, download=False)
    x = splits.train.tensors[0]
    assert x.shape == (40, 1, 150) and splits.input_shape == (1, 150)
    # z-scored with the training part's own statistics: mean 0, std 1 up to float32 rounding.
    assert abs(x.double().mean().item()) < 1e-5 and abs(x.double().std(unbiased=False).item() - 1) < 1e-5


@pytest.mark.skipif(not HAS_AEON, reason="aeon not installed (pip install gnet-hdc[timeseries])")
def test_ucr_errors():
    with pytest.raises(ValueError, match="unequal length.*JapaneseVowels_eq"):
        hd.load("ucr:JapaneseVowels", download=False)
    with pytest.raises(hd.DatasetNotFoundError, match="FordA.*download=False"):
        hd.load("ucr:FordA", download=False)
    with pytest.raises(ValueError, match="needs a problem name"):
        hd.load("ucr:")


# ------------------------------------------------------------------------------------------- gnet.data


def test_gnet_digits_images_scaled_to_minus_one_one_and_deterministic():
    a = gd.load_dataset("digits", val_fraction=0.1, seed=3)
    b = gd.load_dataset("digits", val_fraction=0.1, seed=3)
    raw = hd.load("digits")
    assert (a.input_shape, a.n_classes, a.kind, a.name) == ((1, 8, 8), 10, "image", "digits")
    n_val = round(0.1 * len(raw.y_train))
    assert (len(a.train), len(a.val), len(a.test)) == (len(raw.y_train) - n_val, n_val, len(raw.y_test))
    for split in ("train", "val", "test"):
        for ta, tb in zip(getattr(a, split).tensors, getattr(b, split).tensors, strict=True):
            assert torch.equal(ta, tb)
    x, y = a.train.tensors
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[1:] == (1, 8, 8)
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    # (pixel / 16 - 0.5) / 0.5, the image counterpart of Normalize(0.5, 0.5)
    np.testing.assert_allclose(a.test.tensors[0].numpy(), raw.x_test / 8.0 - 1.0, atol=1e-6)
    np.testing.assert_allclose(a.scale(raw.x_test).numpy(), a.test.tensors[0].numpy())
    # Train and val partition the original training set.
    seen = np.concatenate([a.train.tensors[0].numpy(), a.val.tensors[0].numpy()]).reshape(len(raw.y_train), -1)
    original = (raw.x_train / 8.0 - 1.0).reshape(len(raw.y_train), -1)
    assert np.array_equal(np.unique(seen, axis=0), np.unique(original, axis=0))
    c = gd.load_dataset("digits", val_fraction=0.1, seed=4)
    assert not torch.equal(a.val.tensors[0], c.val.tensors[0])


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_gnet_tabular_standardised_with_train_statistics(name):
    splits = gd.load_dataset(name, val_fraction=0.2, seed=0)
    x = splits.train.tensors[0].double()
    assert x.shape[1:] == splits.input_shape and splits.kind == "tabular"
    np.testing.assert_allclose(x.mean(0).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(0, unbiased=False).numpy(), 1.0, atol=1e-5)
    # Val/test use the train statistics, so they are not exactly standardised themselves.
    raw = hd.load(name)
    np.testing.assert_allclose(
        splits.test.tensors[0].numpy(), (raw.x_test - splits.mean) / splits.std, rtol=1e-6, atol=1e-6
    )


def test_gnet_split_rejects_nan_and_keeps_constant_features_finite():
    raw = hd.load("iris")
    raw.x_train[:, 2] = 5.0  # constant feature: std 0 must not produce NaN
    splits = gd.split_dataset(raw, val_fraction=0.0)
    assert len(splits.val) == 0
    assert torch.isfinite(splits.train.tensors[0]).all() and (splits.train.tensors[0][:, 2] == 0).all()
    raw.x_test[0, 0] = np.inf
    with pytest.raises(ValueError, match="'iris'.*NaN or inf"):
        gd.split_dataset(raw)


def test_make_loader_seeded_and_leaves_global_rng_alone():
    data = (torch.arange(50, dtype=torch.float32)[:, None], torch.arange(50))
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()

    def order(seed):
        return torch.cat([y for _, y in gd.make_loader(data, 8, shuffle=True, seed=seed)]).tolist()

    first = order(5)
    assert first == order(5) and first != order(6)
    assert sorted(first) == list(range(50)) and first != list(range(50))
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(
        np.array_equal(u, v) if isinstance(u, np.ndarray) else u == v
        for u, v in zip(np.random.get_state(), np_state, strict=True)
    )
    plain = gd.make_loader(data, 8)
    assert torch.cat([y for _, y in plain]).tolist() == list(range(50))
    assert [len(y) for _, y in plain] == [8] * 6 + [2]
    with pytest.raises(ValueError, match="batch_size"):
        gd.make_loader(data, 0)
    with pytest.raises(ValueError, match="2 items but y has 3"):
        gd.make_loader((torch.zeros(2), torch.zeros(3)), 1)
