"""The architecture rules: hdc/ is the general core and never imports gnet/; no library module imports a CLI
module; the benchmarks use only public names of hdc and gnet; library files and functions stay small; the README stays a
front page with the two set-up commands."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HDC = ROOT / "hdc"
GNET = ROOT / "gnet"


def imports(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(module, imported names) for every import in ``path``; relative imports are resolved against the package."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            yield module, [alias.name for alias in node.names]


def test_hdc_never_imports_gnet():
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in HDC.rglob("*.py")
        for module, _ in imports(path)
        if module == "gnet" or module.startswith("gnet.")
    ]
    assert not offenders, offenders


def test_no_library_module_imports_the_cli():
    """The CLI parses flags and calls the library; the library never reaches back into it."""
    library = [
        p
        for p in [*HDC.rglob("*.py"), *GNET.rglob("*.py")]
        if "cli" not in p.relative_to(ROOT).parts and p.name != "cli.py" and p.name != "__main__.py"
    ]
    offenders = []
    for path in library:
        for module, names in imports(path):
            parts = module.split(".")
            if "cli" in parts or (module in ("hdc", "gnet") and "cli" in names):
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert not offenders, offenders


# Micro-benchmarks of one private kernel against its plain predecessor: the kernel itself is what they measure.
KERNEL_BENCHMARKS = {"bench_signpack.py"}


def test_kernel_benchmarks_are_the_only_exceptions():
    """The exception list names existing files only, so a renamed benchmark cannot hide behind it."""
    assert all((ROOT / "benchmarks" / name).exists() for name in KERNEL_BENCHMARKS)


def test_benchmarks_use_only_public_names():
    """A benchmark is a user of the toolkit: no private module (``hdc._x``) or private name (``_x``) of hdc/gnet."""
    offenders = []
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        if path.name in KERNEL_BENCHMARKS:
            continue
        for module, names in imports(path):
            parts = module.split(".")
            if parts[0] not in ("hdc", "gnet"):
                continue
            private = [p for p in parts if p.startswith("_")] + [n for n in names if n.startswith("_")]
            if private:
                offenders.append(f"{path.name}: from {module} import {', '.join(names) or '*'}")
    assert not offenders, offenders


# "About 500 lines a file, about 80 a function": the guard allows a small margin over the style guide's numbers.
MAX_FILE_LINES = 520
MAX_FUNCTION_LINES = 85


def library_files() -> list[Path]:
    return sorted([*HDC.rglob("*.py"), *GNET.rglob("*.py")])


def test_library_files_and_functions_stay_small():
    too_long = []
    for path in library_files():
        text = path.read_text()
        if text.count("\n") > MAX_FILE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, too_long


def test_readme_is_a_front_page_with_the_two_setup_commands():
    readme = (ROOT / "README.md").read_text()
    assert readme.count("\n") <= 150
    install = (
        'python3 -m pip install torch==2.13.0 && python3 -m pip install -e ".[test,timeseries]" && gnet quickstart'
    )
    assert install in readme
    assert "python3 -m pytest tests -q -p no:cacheprovider" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m pytest tests -q -p no:cacheprovider" in ci


def _headline_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_headline", ROOT / "benchmarks" / "compare_headline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_comparison_table_is_the_committed_results(tmp_path, monkeypatch, capsys):
    """The README's MNIST comparison is what benchmarks/compare_headline.py makes of the committed compare.json,
    and the check notices a table that drifted from it."""
    script = _headline_script()
    monkeypatch.chdir(ROOT)
    source = "results/compare/mnist/compare.json"
    assert script.main([source, "--check", "README.md"]) == 0, capsys.readouterr().err
    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "README.md").read_text().replace("| `bnn` |", "| `bnn` | 1 |", 1))
    assert script.main([source, "--check", str(readme)]) == 1
    assert "stale" in capsys.readouterr().err
    assert script.main([source, "--write", str(readme)]) == 0
    assert readme.read_text() == (ROOT / "README.md").read_text()
