"""Stage code: the code each stage runs, as one fingerprint file per stage module.

    python -m stages.code

Writes data/code/<module>.txt for every module of stages/ (md5sum's format: one `<md5>  <path>`
line per project file the module imports, pipeline/imports.py). Each stage depends on its
module's file rather than on those files one by one: a code change still re-runs exactly the
stages whose files changed (an unchanged fingerprint keeps its hash), while dvc.lock holds one
entry per stage instead of twenty. That matters because DVC parses and rewrites the whole of
dvc.lock after every stage it runs: its size is a cost every stage pays.
"""

from __future__ import annotations

import argparse

from pipeline import paths
from pipeline.imports import ROOT, fingerprint, project_files
from pipeline.io import write_text
from stages._cli import run

PARAMS: list[str] = []


def stage_modules() -> list[str]:
    """The modules of stages/ that a dvc.yaml stage runs: all but this one and the helpers."""
    return sorted(f"stages.{p.stem}" for p in (ROOT / "stages").glob("*.py")
                  if not p.stem.startswith("_") and p.stem != "code")


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    for module in stage_modules():
        write_text(paths.code_file(module), fingerprint(project_files(module)))


if __name__ == "__main__":
    run(main)
