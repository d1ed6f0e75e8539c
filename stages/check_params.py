"""Stage check_params: validate the whole params.yaml before any other stage runs.

    python -m stages.check_params

Every stage depends (through download@<corpus>, the root of the DAG) on the stamp this stage
writes, and this stage depends on params.yaml itself, so any edit of the file is checked on
the next `dvc repro`, even when no stage would otherwise run, with the schema's message naming
the key and exit code 2. The stamp's content never changes, so a valid edit re-runs nothing
else: DVC re-runs what depends on the keys that changed, as ever.
"""

from __future__ import annotations

import argparse

from pipeline import paths
from pipeline.config import load_params
from pipeline.io import write_text
from stages._cli import run

PARAMS: list[str] = []  # reads params.yaml as a file dep: every key


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    load_params()
    write_text(paths.PARAMS_CHECKED, "params.yaml is valid\n")


if __name__ == "__main__":
    run(main)
