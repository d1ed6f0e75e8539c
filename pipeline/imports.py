"""The project files a module needs: its transitive imports of `pipeline` and `stages` modules,
found by reading the source (no import runs), package `__init__.py` files included.

A stage's code dep (stage `code` writes each stage module's `fingerprint`), and what a
checkpoint's or a study's code hash covers, derive from this, so none is a hand-kept list that drifts.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "stages")


def module_file(name: str) -> Path | None:
    """The source file of a project module or package, or None if `name` is not one."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported(path: Path) -> frozenset[str]:
    """Project modules named by the import statements of one file (function-level ones too)."""
    return _imported_as_of(path, path.stat().st_mtime_ns)


@functools.cache  # each file parsed once per version: stage `code` walks twelve closures that share most files
def _imported_as_of(path: Path, mtime_ns: int) -> frozenset[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)  # `from pkg import module`
    return frozenset(n for n in names if n.split(".")[0] in PACKAGES and module_file(n))


def project_files(module: str) -> set[Path]:
    """Every project file that importing `module` executes (absolute paths)."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # a module runs its packages' __init__ first
            path = module_file(".".join(parts[:i]))
            if path is not None and path not in seen:
                seen.add(path)
                todo.extend(_imported(path))
    return seen


def fingerprint(files: Iterable[Path]) -> str:
    """One `<md5>  <path>` line per file (md5sum's format, paths from the project root), sorted
    by path: what data/code/<stage>.txt holds, and what a code hash hashes."""
    paths = sorted((p.relative_to(ROOT).as_posix(), p) for p in files)
    return "".join(f"{hashlib.md5(p.read_bytes()).hexdigest()}  {rel}\n" for rel, p in paths)


def files_hash(files: Iterable[Path]) -> str:
    """A sha256 of the files' fingerprint: a code hash inside a params hash."""
    return hashlib.sha256(fingerprint(files).encode()).hexdigest()
