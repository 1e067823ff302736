"""hdc.memory: named storage, nearest/top-k lookup, chance threshold, clean-up."""

import math

import numpy as np
import pytest

from hdc.memory import ItemMemory, chance_threshold
from hdc.ops import bind, bundle, random
from hdc.packed import PackedHV, pack_bits, unpack_bits


def flip(words, dim, n_flips, seed):
    """Flip n_flips distinct random bits of each row."""
    rng = np.random.default_rng(seed)
    bits = unpack_bits(words, dim).copy()
    for row in bits.reshape(-1, dim):
        row[rng.choice(dim, n_flips, replace=False)] ^= True
    return pack_bits(bits)


def test_chance_threshold_formula():
    assert chance_threshold(10_000) == pytest.approx(0.5 + 4.4 * 0.5 / 100)
    assert chance_threshold(100, k=2, p=0.2) == pytest.approx(0.2 + 2 * math.sqrt(0.16 / 100))
    for bad in (dict(dim=0), dict(dim=10, k=-1), dict(dim=10, p=1.0)):
        with pytest.raises(ValueError):
            chance_threshold(**bad)


def test_storage_grows_and_keeps_order():
    dim = 300
    mem = ItemMemory(dim)
    vecs = random(40, dim, 0)
    for i in range(40):  # one at a time: exercises the geometric growth
        mem.add(f"item{i}", vecs[i])
    assert len(mem) == 40 and mem.names[:2] == ["item0", "item1"]
    assert np.array_equal(mem.words, vecs)
    assert np.array_equal(mem.get("item7"), vecs[7]) and mem.index("item7") == 7
    assert "item3" in mem and "nope" not in mem
    mem2 = ItemMemory(dim, names=["a", "b"], words=vecs[:2])
    mem2.add("c", PackedHV(vecs[2], dim))
    assert mem2.names == ["a", "b", "c"]
    with pytest.raises(ValueError):
        mem.words[0, 0] = 1  # read-only view


def test_nearest_recovers_noisy_items_and_rejects_random_queries():
    dim = 10_000
    names = [f"s{i}" for i in range(100)]
    vecs = random(100, dim, 1)
    mem = ItemMemory(dim, names, vecs)
    # 30 % of bits flipped: similarity 0.7 >> chance threshold 0.522
    noisy = flip(vecs[[3, 50, 99]], dim, 3000, seed=2)
    got, sim = mem.nearest(noisy, threshold="chance")
    assert got == ["s3", "s50", "s99"]
    assert np.allclose(sim, 0.7)
    name, s = mem.nearest(noisy[0])
    assert name == "s3" and s == pytest.approx(0.7)
    # Random queries: similarity to the best of 100 items ~ 0.5 + 0.005 * (max of 100 normals,
    # ~2.5 sd) < threshold 0.5 + 4.4 * 0.005; P(any of 20 queries x 100 items above 4.4 sd) ~ 1e-2
    # at most by the union bound (5.4e-6 each) and fixed by the seed.
    got, _ = mem.nearest(random(20, dim, 3), threshold="chance")
    assert got == [None] * 20
    got, _ = mem.nearest(random(2, dim, 3), threshold=0.0)
    assert None not in got


def test_topk_and_cleanup_of_a_bundle():
    dim = 10_000
    names = list("abcdefghij")
    vecs = random(10, dim, 4)
    mem = ItemMemory(dim, names, vecs)
    s = bundle(vecs[[1, 4, 7]], dim)
    idx, sim = mem.topk(s, 3)
    # members sit at similarity ~0.75, the others at ~0.5 +- 0.005
    assert sorted(mem.names[i] for i in idx) == ["b", "e", "h"]
    assert np.all(np.diff(sim) <= 0)
    idx2, sim2 = mem.topk(np.stack([s, vecs[0]]), 2)
    assert idx2.shape == (2, 2) and idx2[1, 0] == 0 and sim2[1, 0] == 1.0
    # unbinding a record and cleaning up
    key = random(1, dim, 5)[0]
    record = bind(key, vecs[6])
    assert np.array_equal(mem.cleanup(bind(record, key)), vecs[6])
    with pytest.raises(ValueError, match="better than chance"):
        mem.cleanup(random(1, dim, 6))


def test_ties_go_to_the_earlier_item():
    dim = 64
    v = random(1, dim, 0)
    mem = ItemMemory(dim, ["first", "second"], np.concatenate([v, v]))
    assert mem.nearest(v[0])[0] == "first"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m, v: m.add("a", v[0]), "already"),
        (lambda m, v: m.extend(["x", "x"], v[:2]), "already"),
        (lambda m, v: m.extend(["x"], v[:2]), "names for"),
        (lambda m, v: m.add("z", v[0].astype(np.int64)), "uint64"),
        (lambda m, v: m.add("z", np.zeros(3, np.uint64)), "words"),
        (lambda m, v: m.add(["unhashable"], v[0]), "hashable"),
        (lambda m, v: m.get("missing"), "not in the memory"),
        (lambda m, v: m.nearest(v, threshold="maybe"), "threshold"),
        (lambda m, v: m.nearest(v, threshold=2.0), "threshold"),
        (lambda m, v: m.topk(v, 5), "k must be between"),
        (lambda m, v: m.nearest(v[None]), r"\(W,\) or \(Q, W\)"),
        (lambda m, v: ItemMemory(100).nearest(v), "empty"),
        (lambda m, v: ItemMemory(100, names=["a"]), "words is required"),
    ],
)
def test_bad_input(call, match):
    v = random(3, 100, 0)
    mem = ItemMemory(100, ["a", "b"], v[:2])
    with pytest.raises(ValueError, match=match):
        call(mem, v)
