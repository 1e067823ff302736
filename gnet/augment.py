"""Seeded training-time augmentation of image batches (random translations and horizontal flips).

Every draw comes from the generator passed in, so a training run (and its resumption) is reproducible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["AUGMENTATIONS", "augment_batch"]

AUGMENTATIONS = (None, "flip", "shift", "flip+shift")
MAX_SHIFT = 2  # pixels; a 28x28 item moved by up to 2 pixels keeps its whole object in view


def augment_batch(x: torch.Tensor, policy: str | None, generator: torch.Generator) -> torch.Tensor:
    """A randomly augmented copy of an image batch x float (B, C, H, W); ``policy=None`` returns x itself.

    "flip": each item is mirrored left-right with probability 1/2 (for classes that are mirror-symmetric, such as
    clothing; not for digits or text).
    "shift": each item is translated by (dy, dx), uniform in [-2, 2]^2, its border pixels extended into the gap.
    "flip+shift": both.
    """
    if policy not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {policy!r}; valid: {', '.join(str(a) for a in AUGMENTATIONS)}")
    if policy is None:
        return x
    if x.ndim != 4:
        raise ValueError(f"augmentation {policy!r} needs image batches (B, C, H, W), got shape {tuple(x.shape)}")
    b, _, h, w = x.shape
    if policy in ("flip", "flip+shift"):
        flip = torch.rand(b, generator=generator) < 0.5
        x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
    if policy == "flip":
        return x
    s = MAX_SHIFT
    shifts = torch.randint(0, 2 * s + 1, (2, b), generator=generator).to(x.device)
    padded = F.pad(x, (s, s, s, s), mode="replicate")
    rows = torch.arange(h, device=x.device)[None, :] + shifts[0][:, None]  # (B, H) rows of the padded image
    cols = torch.arange(w, device=x.device)[None, :] + shifts[1][:, None]  # (B, W)
    items = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[items, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()
