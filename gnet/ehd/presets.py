"""Named per-layer dim allocations for known networks: ``convert(model, dim="mnist-fast")``.

A preset fixes the dims of every code-carrying layer (classifier included) and the embedding they were chosen for.
Each one names the result file that measured it (accuracy over seeds on the full test set), so a preset is a
recorded measurement, not a guess; ``benchmarks/ehd_dim_search.py`` makes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from hdc._validate import check_choice

__all__ = ["DIM_PRESETS", "DimPreset", "dim_preset"]


@dataclass(frozen=True)
class DimPreset:
    """A named allocation.

    Attributes:
        name: the preset's name.
        dims: the dim of each code-carrying layer, in order (classifier last).
        embedding: the embedding of each of those layers, as the preset was measured with.
        network: the network it fits (an architecture name of :func:`gnet.models.architecture`).
        accuracy: mean test accuracy over ``seeds`` seeds (0..seeds-1), float accuracy aside.
        seeds: how many seeds ``accuracy`` averages.
        source: the committed result file (and the command inside it) that measured it.
    """

    name: str
    dims: tuple[int, ...]
    embedding: tuple[str, ...]
    network: str
    accuracy: float
    seeds: int
    source: str


# The README's fast G on the MNIST net: a Gaussian first layer, Hadamard after it.
_FAST_G_MNIST = ("gaussian", "hadamard", "hadamard", "hadamard")

DIM_PRESETS: dict[str, DimPreset] = {
    preset.name: preset
    for preset in (
        DimPreset(
            "mnist-paper",
            (6000, 15000, 15000, 14000),
            ("rademacher",) * 4,
            "mnist",
            0.99154,
            5,
            'results/ehd_mnist/results.json (the paper\'s dims and G, measured with precision="int8")',
        ),
        # 2.33x fewer bit operations and 2.30x fewer float multiply-adds per image than the paper's dims with
        # the same fast G (99.29 %): the conv layers carry the cost, the dense ones the accuracy.
        DimPreset(
            "mnist-fast",
            (3008, 5248, 15000, 9792),
            _FAST_G_MNIST,
            "mnist",
            0.99208,
            5,
            "results/ehd_mnist/dim_search_fast.json (benchmarks/ehd_dim_search.py --embedding fast)",
        ),
        # The fewest bits found at >= 99.1 % (the floor is 99.0): both conv layers at about a third of the
        # paper's dims, the dense layers as in mnist-fast. 1536/2624 went below (98.97 % on seed 0).
        DimPreset(
            "mnist-lean",
            (2112, 3648, 15000, 9792),
            _FAST_G_MNIST,
            "mnist",
            0.99106,
            5,
            "results/ehd_mnist/dim_search_lean.json (benchmarks/ehd_dim_search.py --embedding fast --floor 0.991)",
        ),
        # Against (3000, 51000, 6000) with the same fast G (91.76 %): 1.28x fewer bit operations, 1.37x fewer
        # float multiply-adds; the dense layer's 51,000 could not shrink by 0.7 without losing 0.14 points.
        DimPreset(
            "fashion-mnist-fast",
            (2112, 51000, 4224),
            ("gaussian", "hadamard", "hadamard"),
            "fashion-mnist",
            0.91730,
            5,
            "results/ehd_fmnist/dim_search_fast.json (benchmarks/ehd_dim_search.py --checkpoint "
            "results/models/fmnist_rasu.pt --reference-dims 3000,51000,6000 --floor 0)",
        ),
    )
}


def dim_preset(name: str) -> DimPreset:
    """The preset called ``name``; an unknown name raises ``ValueError`` listing the known ones.

    Example:
        >>> dim_preset("mnist-paper").dims
        (6000, 15000, 15000, 14000)
    """
    check_choice(name, tuple(DIM_PRESETS), "dim preset")
    return DIM_PRESETS[name]
