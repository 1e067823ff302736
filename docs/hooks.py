"""MkDocs hook: publish the committed figures and result files of ``results/`` with the site.

The figures stay where the scripts write them (``results/**``); nothing is copied into ``docs/``. Each PNG and
JSON file is added to the build as a generated file at ``results/<path>``, so a page under ``docs/`` links
``results/ehd_mnist/results.json`` (``../../results/...`` from ``docs/api/hdc/``) and ``mkdocs build --strict``
checks every such link like any other. Markdown files under ``results/`` are left out: they are reports, not
pages of the site.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

RESULTS = "results"
PUBLISHED_SUFFIXES = (".png", ".json")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add ``results/**/*.png`` and ``results/**/*.json`` of the repository to the site's files."""
    root = Path(config.config_file_path).resolve().parent
    for path in sorted((root / RESULTS).rglob("*")):
        if not path.is_file() or path.suffix not in PUBLISHED_SUFFIXES:
            continue
        uri = path.relative_to(root).as_posix()
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
