"""Golden values: the codes, predictions and trained weights that the refactors must leave bit-identical.

``python3 tests/golden/compute.py --write`` records them in ``tests/golden/golden.json`` (run on the code whose
behaviour is the reference); ``tests/test_golden.py`` recomputes them and compares. Each entry is computed by a
function here that uses only public entry points, so a rename changes this file, never the stored values.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden.json")
MNIST_CHECKPOINT = ROOT / "results" / "models" / "mnist_rasu.pt"


def sha(array) -> str:
    arr = np.ascontiguousarray(np.asarray(array))
    return hashlib.sha256(arr.dtype.str.encode() + str(arr.shape).encode() + arr.tobytes()).hexdigest()[:24]


def hdc_core() -> dict[str, str]:
    import hdc
    from hdc.encoders import RecordEncoder, ngrams

    dim = 1000
    vectors = hdc.random(5, dim, seed=0)
    out = {
        "random": sha(vectors),
        "bundle": sha(hdc.bundle(vectors, dim, seed=1)),
        "permute": sha(hdc.permute(vectors[0], 7, dim)),
        "hamming": sha(hdc.hamming_distance(vectors, hdc.random(4, dim, seed=2))),
    }
    rng = np.random.default_rng(3)
    enc = RecordEncoder(4, dim, levels=16, low=0.0, high=1.0, seed=4)
    out["record"] = sha(enc.encode(rng.random((6, 4))))
    out["ngram"] = sha(ngrams(np.array([0, 1, 2, 3, 1, 2, 0]), hdc.random(4, dim, seed=5), dim, n=3))
    return out


def projections() -> dict[str, str]:
    from hdc.projection import make_projection

    x = torch.from_numpy(np.random.default_rng(6).standard_normal((9, 40)).astype(np.float32))
    out = {}
    for kind in ("gaussian", "rademacher", "orthogonal", "hadamard"):
        proj = make_projection(kind, 40, 700, 11, (2,))
        out[kind] = sha(proj.encode(x))
    return out


def classifiers() -> dict[str, str]:
    from sklearn.datasets import load_digits

    from hdc.classifiers import AdaptHD, CentroidHD, OnlineHD

    x, y = load_digits(return_X_y=True)
    out = {}
    for cls in (CentroidHD, AdaptHD, OnlineHD):
        clf = cls(dim=1024, seed=0).fit(x[:1200], y[:1200])
        out[cls.__name__] = sha(clf.predict(x[1200:]))
    return out


def mnist_images(count: int = 64):
    from gnet.checkpoint import load_model
    from gnet.data import load_dataset

    model, config = load_model(MNIST_CHECKPOINT)
    data = load_dataset("mnist", val_fraction=config.get("val_fraction", 0.0333333), seed=config.get("data_seed", 0))
    return model, data.test.tensors[0][:count]


def mnist_models() -> dict[str, object]:
    from gnet import ehd

    model, x = mnist_images()
    with torch.no_grad():
        logits = model(x)
    out: dict[str, object] = {
        "float_predictions": logits.argmax(1).tolist(),
        "float_logits": logits.numpy().round(4).tolist(),
    }
    settings = {
        "paper_fast": dict(dim=[6000, 15000, 15000, 14000], embedding=["gaussian", "hadamard", "hadamard", "hadamard"]),
        "gaussian_1024": dict(dim=1024, embedding="gaussian"),
        "rademacher_1024": dict(dim=1024, embedding="rademacher"),
        "orthogonal_1024": dict(dim=1024, embedding="orthogonal"),
        "per_channel_512": dict(dim=512, embedding="gaussian", conv_projection="per_channel"),
    }
    for name, kwargs in settings.items():
        ehd_model = ehd.convert(model, seed=3, precision="float32", **kwargs)
        codes = [layer.codes for layer in ehd_model.layers]
        out[f"{name}_codes"] = sha(np.concatenate([c.ravel() for c in codes]))
        out[f"{name}_predictions"] = ehd_model.predict(x).tolist()
    return out


TRAIN_SNIPPET = """
import hashlib, torch
torch.set_num_threads(1)
from gnet.data import load_dataset
from gnet.models import architecture, build_model
from gnet.train import TrainConfig, train
data = load_dataset("digits", val_fraction=0.1, seed=0)
specs = architecture("digits", activation="rasu")
model = build_model(specs, seed=0)
cfg = {"architecture": specs, "input_shape": list(data.input_shape), "n_classes": data.n_classes}
train(model, data.train.tensors, data.val.tensors, TrainConfig(epochs=2, batch_size=64, lr=3e-3, seed=0), cfg,
      progress=False)
h = hashlib.sha256()
for k, v in model.state_dict().items():
    h.update(k.encode()); h.update(v.detach().contiguous().numpy().tobytes())
print(h.hexdigest()[:24])
"""


def trained_weights() -> dict[str, str]:
    """Two digits epochs in a fresh single-threaded process: the hash of the trained state_dict."""
    # torch and oneDNN pick float kernels by the CPU's ISA: the same run on an AVX-512 CPU sums in another order and
    # ends with other weights (measured on a Zen 4 EPYC: another hash). Capping both at AVX2, which every x86-64 CPU
    # this project runs on has, makes the hash one value on every such machine.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.update(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2")
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_SNIPPET], env=env, capture_output=True, text=True, check=True, cwd=ROOT
    )
    return {"digits_2_epochs_state_dict": done.stdout.strip().splitlines()[-1]}


SECTIONS = {
    "hdc_core": hdc_core,
    "projections": projections,
    "classifiers": classifiers,
    "mnist": mnist_models,
    "training": trained_weights,
}


if __name__ == "__main__":
    values = {name: fn() for name, fn in SECTIONS.items()}
    text = "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in values.items()) + "\n}"
    if "--write" in sys.argv:
        GOLDEN.write_text(text + "\n")
    else:
        print(text)
