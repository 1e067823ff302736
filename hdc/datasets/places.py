"""Where :func:`hdc.datasets.load` looks for dataset files, in order, and where downloads go.

No path of a particular machine is named here. The places are, for dataset ``name``:

1. ``root=`` when given (then the only place, and the download target);
2. the dataset's own environment variable (:data:`DATASET_ENV_VARS`, e.g. ``$GNET_MNIST_DIR``), then
   ``$GNET_DATA_DIR/<name>`` (:data:`DATA_DIR_ENV_VAR`);
3. ``../shared/datasets/<name>`` next to the source checkout this package was imported from (and, in a linked git
   worktree, next to its main checkout), so a checkout placed beside a shared data folder needs no set-up;
4. the directories where the operating system's dataset packages install the files (:data:`OS_PACKAGE_DIRS`);
5. the user cache, ``$XDG_CACHE_HOME/gnet-hdc/datasets/<name>`` (``~/.cache/gnet-hdc/datasets/<name>``), where
   downloads go.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DATASET_ENV_VARS",
    "DATA_DIR_ENV_VAR",
    "OS_PACKAGES",
    "OS_PACKAGE_DIRS",
    "cache_dir",
    "checkout_roots",
    "how_to_provide",
    "search_places",
]

DATA_DIR_ENV_VAR = "GNET_DATA_DIR"  # a folder holding one sub-folder per dataset, named as load() names it
DATASET_ENV_VARS = {"mnist": "GNET_MNIST_DIR", "fashion-mnist": "GNET_FASHION_MNIST_DIR"}  # one dataset's folder

# Operating-system packages that ship a dataset, and where they install its files. Debian and Ubuntu:
# `apt-get install dataset-fashion-mnist` installs the four gzipped IDX files into /usr/share/datasets/fashion-mnist
# (the package's file list, `dpkg --contents`, version 0.0~git20200523.55506a9-1). No distribution packages MNIST.
OS_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}
OS_PACKAGE_DIRS: dict[str, tuple[Path, ...]] = {"fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),)}

# Module attribute (not inlined) so tests can point the search at a fake checkout.
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/gnet-hdc/datasets`` (``~/.cache/gnet-hdc/datasets`` by default): where downloads go."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gnet-hdc" / "datasets"


def _main_checkout(root: Path) -> Path | None:
    """The main checkout of a linked git worktree at ``root`` (whose ``.git`` is a file naming its git dir)."""
    try:
        text = (root / ".git").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    git_dir = (root / text.removeprefix("gitdir:").strip()).resolve()
    try:
        common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    except OSError:
        return None
    return common.parent if common.name == ".git" else None


def checkout_roots() -> list[Path]:
    """The source checkout this package was imported from, then its main checkout when it is a linked git
    worktree; empty for an installed package (no ``.git`` or ``pyproject.toml`` next to the package)."""
    root = _SOURCE_ROOT
    if not ((root / ".git").exists() or (root / "pyproject.toml").is_file()):
        return []
    main = _main_checkout(root)
    return [root] if main is None or main == root else [root, main]


def search_places(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The folders :func:`hdc.datasets.load` looks in for dataset ``name``'s files, in order (see the module
    docstring); with ``root`` only ``[root]``. Duplicates are dropped; folders need not exist."""
    if root is not None:
        return [Path(root).expanduser()]
    places = []
    env_var = DATASET_ENV_VARS.get(name)
    if env_var and os.environ.get(env_var):
        places.append(Path(os.environ[env_var]).expanduser())
    if os.environ.get(DATA_DIR_ENV_VAR):
        places.append(Path(os.environ[DATA_DIR_ENV_VAR]).expanduser() / name)
    places.extend(checkout.parent / "shared" / "datasets" / name for checkout in checkout_roots())
    places.extend(OS_PACKAGE_DIRS.get(name, ()))
    places.append(cache_dir() / name)
    unique: dict[str, Path] = {}
    for place in places:
        unique.setdefault(os.path.abspath(place), place)
    return list(unique.values())


def how_to_provide(name: str, target: Path) -> str:
    """One sentence on the ways to provide dataset ``name``'s files (for error messages)."""
    ways = [f"load({name!r}, root=DIR)"]
    if name in DATASET_ENV_VARS:
        ways.append(f"${DATASET_ENV_VARS[name]}=DIR")
    ways.append(f"${DATA_DIR_ENV_VAR}=PARENT (files in PARENT/{name})")
    ways.append(f"a copy in {target}")
    if name in OS_PACKAGES:
        ways.append(f"the OS package (Debian/Ubuntu: apt-get install {OS_PACKAGES[name]})")
    return "Provide them with " + ", ".join(ways[:-1]) + " or " + ways[-1]
