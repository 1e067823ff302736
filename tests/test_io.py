"""hdc.io: atomic writes with unique temporary names, the checksummed container, and refusals."""

from __future__ import annotations

import io
import threading
import zipfile

import numpy as np
import pytest

from hdc.io import ContainerError, atomic_write, atomic_write_text, load_container, save_container


def test_roundtrip_and_no_temporary_left(tmp_path):
    arrays = {"codes": np.arange(12, dtype=np.uint64).reshape(3, 4), "b": np.ones(2, dtype=np.float32)}
    path = save_container(tmp_path / "sub" / "x.bin", "demo", 3, {"meta": {"k": 1}}, arrays)
    header, back = load_container(path, "demo", (3,))
    assert header == {"format": "demo", "version": 3, "meta": {"k": 1}}
    assert set(back) == {"codes", "b"} and np.array_equal(back["codes"], arrays["codes"])
    assert [p.name for p in path.parent.iterdir()] == ["x.bin"]
    with zipfile.ZipFile(path) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())


def test_refusals_name_the_problem(tmp_path):
    path = save_container(tmp_path / "x.bin", "demo", 1, {}, {"a": np.zeros(3)})
    with pytest.raises(ContainerError, match="format 'demo' is not 'other'"):
        load_container(path, "other", (1,))
    with pytest.raises(ContainerError, match="version 1 is not supported"):
        load_container(path, "demo", (2,))
    raw = bytearray(path.read_bytes())
    raw[-200] ^= 0x01
    (tmp_path / "flip.bin").write_bytes(bytes(raw))
    with pytest.raises(ContainerError):
        load_container(tmp_path / "flip.bin", "demo", (1,))
    with pytest.raises(FileNotFoundError):
        load_container(tmp_path / "missing.bin", "demo", (1,))


def test_compressed_members_are_refused_before_inflating(tmp_path):
    buf = io.BytesIO()
    np.savez_compressed(buf, header=np.frombuffer(b"{}", dtype=np.uint8), a=np.zeros(1 << 20))
    (tmp_path / "z.bin").write_bytes(buf.getvalue())
    with pytest.raises(ContainerError, match="compressed members are refused"):
        load_container(tmp_path / "z.bin", "demo", (1,))


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "f.json", "old")

    def broken(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_concurrent_writers_never_collide(tmp_path):
    path = tmp_path / "shared.bin"
    errors = []

    def writer(k: int) -> None:
        try:
            for _ in range(20):
                save_container(path, "demo", 1, {"k": k}, {"a": np.full(1000, k)})
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    header, arrays = load_container(path, "demo", (1,))  # one writer's complete file, never a mix
    assert np.all(arrays["a"] == header["k"])
    assert [p.name for p in tmp_path.iterdir()] == ["shared.bin"]
