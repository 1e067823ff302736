"""Assemble README.md from docs/README.head.md and docs/sections/*.md (in file-name order).

    python3 docs/build_readme.py
"""

from pathlib import Path

DOCS = Path(__file__).resolve().parent
parts = [(DOCS / "README.head.md").read_text().rstrip() + "\n"]
parts += [p.read_text().rstrip() + "\n" for p in sorted((DOCS / "sections").glob("*.md"))]
(DOCS.parent / "README.md").write_text("\n".join(parts))
print(f"README.md from {len(parts)} parts")
