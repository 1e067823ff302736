"""What keeps a training run from losing or silently mixing results (used by :func:`gnet.train.train` and
``gnet train``).

- :func:`check_run_dir`: an output directory that already holds a run (any of :data:`RUN_FILES`) is only written
  into to continue that run (its ``last.pt`` resumed) or when asked to overwrite it.
- :func:`setting_changes` / :func:`check_resume_settings`: a resumed run must use the settings its checkpoint
  records (everything in the config and its ``train`` entry except ``epochs``); a change is refused, naming each
  setting and both values, unless allowed, and then it is recorded (``changes``, with the epoch it applies from).
- :func:`stop_on_sigint`: the first Ctrl-C (SIGINT) only asks the loop to stop after the current step; the loop
  then raises :class:`TrainingInterrupted` with the ``last.pt`` of the last complete epoch. A second Ctrl-C
  raises ``KeyboardInterrupt`` at once.
- :func:`check_pair`: the training and validation data at the boundary: tensors, matching lengths, integer labels
  in ``0 .. n_classes - 1``, finite floating-point inputs. Inputs of another floating dtype (float64, float16,
  bfloat16) are cast to the model's parameter dtype (float32), rounding to nearest, which is the precision the
  model computes in anyway; integer or bool inputs are refused (they need scaling, see :mod:`gnet.data`).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "RUN_FILES",
    "StopFlag",
    "TrainingInterrupted",
    "check_pair",
    "check_resume_settings",
    "check_run_dir",
    "clear_run",
    "continues_run",
    "setting_changes",
    "stop_on_sigint",
]

RUN_FILES = ("best.pt", "last.pt", "history.json", "summary.json")
# Settings a resume may change: the length of the run is what resuming is for.
RESUMABLE = ("epochs",)


def continues_run(out_dir: str | Path, resume: str | Path | None) -> bool:
    """Whether ``resume`` is the ``last.pt`` of the run in ``out_dir`` (same directory)."""
    return resume is not None and Path(resume).resolve().parent == Path(out_dir).resolve()


def check_run_dir(out_dir: str | Path, resume: str | Path | None = None, overwrite: bool = False) -> Path:
    """``out_dir`` as a Path, if a run may write there: it holds none of :data:`RUN_FILES`, or ``resume`` continues
    the run it holds, or ``overwrite`` is set. Else ``ValueError`` saying how to continue or replace the run."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    present = [name for name in RUN_FILES if (out / name).exists()]
    if not present or overwrite or continues_run(out, resume):
        return out
    held = f"{out} already holds a run ({', '.join(present)})"
    if resume is not None:
        raise ValueError(
            f"{held}; --resume {resume} continues the run in {Path(resume).parent}: give --out "
            f"{Path(resume).parent}, or add --overwrite to replace the run in {out}"
        )
    raise ValueError(f"{held}; continue it with --resume {out / 'last.pt'}, or replace it with --overwrite")


def clear_run(out_dir: str | Path) -> None:
    """Remove the :data:`RUN_FILES` of an overwritten run, so that none of them outlives it (a stale summary or a
    best.pt of the old run)."""
    for name in RUN_FILES:
        (Path(out_dir) / name).unlink(missing_ok=True)


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists), so a recorded and a new config compare as equal."""
    return json.loads(json.dumps(value, default=str))


def _horizon(train: dict[str, Any]) -> Any:
    return train.get("anneal_epochs") or train.get("epochs")


def setting_changes(old: dict[str, Any], new: dict[str, Any], annealing: bool = False) -> list[dict[str, Any]]:
    """The settings of ``new`` (a run's config with its ``train`` entry) that differ from ``old`` (a checkpoint's):
    ``[{"setting": name, "old": value, "new": value}, ...]``.

    Keys present in only one of them are not compared (older checkpoints record fewer); ``epochs`` may differ. The
    annealing horizon (``anneal_epochs``, else ``epochs``) counts only for a model that anneals (``annealing``) or a
    cosine learning rate: their schedules depend on it.
    """
    changes = []
    old_train, new_train = old.get("train") or {}, new.get("train") or {}
    for part, a, b in (("model", old, new), ("train", old_train, new_train)):
        for key in sorted(set(a) & set(b) - {"train", "changes", "anneal_epochs", *RESUMABLE}):
            if _plain(a[key]) != _plain(b[key]):
                name = f"model {key}" if part == "model" and key in new_train else key  # a BNN's seed: both
                changes.append({"setting": name, "old": _plain(a[key]), "new": _plain(b[key])})
    horizon_counts = annealing or new_train.get("lr_schedule") == "cosine"  # a cosine rate decays over the horizon
    if horizon_counts and old_train and new_train and _horizon(old_train) != _horizon(new_train):
        changes.append({"setting": "anneal horizon", "old": _horizon(old_train), "new": _horizon(new_train)})
    return changes


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_resume_settings(
    resume: str | Path, old: dict[str, Any], new: dict[str, Any], annealing: bool, allow: bool
) -> list[dict[str, Any]]:
    """:func:`setting_changes` of a resume; raises ``ValueError`` naming them unless ``allow`` (then returns them)."""
    changes = setting_changes(old, new, annealing)
    if changes and not allow:
        listed = "; ".join(f"{c['setting']} {_short(c['old'])} -> {_short(c['new'])}" for c in changes)
        raise ValueError(
            f"{resume} was trained with other settings ({listed}); resume with the recorded settings, or pass "
            "--allow-changed-settings (allow_changed_settings=True) to continue with these and record the change"
        )
    return changes


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C at a step boundary. ``checkpoint``: the ``last.pt`` of the last complete epoch
    (None when none was written), ``epochs_done``: complete epochs, counting those of a resumed run."""

    def __init__(self, checkpoint: Path | None, epochs_done: int) -> None:
        super().__init__(f"training interrupted after {epochs_done} complete epochs")
        self.checkpoint = checkpoint
        self.epochs_done = epochs_done


class StopFlag:
    """Set by the first SIGINT while :func:`stop_on_sigint` is active; the loop checks it after every step."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def stop_on_sigint(enabled: bool = True) -> Iterator[StopFlag]:
    """Within the block the first SIGINT sets the yielded flag (and restores the previous handler, so a second one
    interrupts at once). Only in the main thread and while Python's default handler is installed (a caller's own
    handler is left alone), and only when ``enabled`` (data-parallel ranks must stop together, so they keep the
    plain KeyboardInterrupt)."""
    flag = StopFlag()
    install = (
        enabled
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if not install:
        yield flag
        return

    def on_sigint(signum: int, frame: Any) -> None:
        flag.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _model_dtype(model: torch.nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def check_pair(name: str, pair: Any, n_classes: Any, model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of a training or validation set, checked (module docstring): x cast to the model's dtype, y int64.

    Args:
        name: "training" or "validation", for the messages.
        pair: (x float (N, *input_shape), y integer (N,)).
        n_classes: labels must be below it (None: only non-negative).
    """
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"{name} data must be a pair (x, y) of tensors")
    x, y = pair
    if not torch.is_tensor(x) or not torch.is_tensor(y):
        raise ValueError(f"{name} set: x and y must be torch tensors, got {type(x).__name__}, {type(y).__name__}")
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"{name} set is empty")
    if y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{name} set: {len(x)} inputs but {len(y) if y.ndim else 'no'} labels (y must be 1-D)")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        hint = ""
        if y.is_floating_point() and bool(torch.isfinite(y).all()) and bool((y == y.round()).all()):
            hint = "; they are whole numbers: cast them with y.long()"
        raise ValueError(f"{name} labels must be an integer tensor, got {y.dtype}{hint}")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or (n_classes is not None and hi >= n_classes):
        valid = f"0..{n_classes - 1}" if n_classes is not None else "0 or more"
        raise ValueError(f"{name} labels must lie in {valid}, got values from {lo} to {hi}")
    if not x.is_floating_point():
        raise ValueError(f"{name} inputs must be floating point, got {x.dtype}; convert and scale them first")
    x = x.to(_model_dtype(model))  # float64 and the 16-bit types: rounded to the dtype the model computes in
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} set contains NaN or inf inputs (after the cast to {x.dtype})")
    return x, y.long()
