"""Stage report: render reports/{README.md, index.html, figures/} from metrics/ and curves/.

    python -m stages.report

Reports exactly the runs params.yaml's `grid` and `ngram.orders` name: DVC never deletes the
outputs of matrix members dropped from the grid, so metrics/ may hold stale runs.
"""

from __future__ import annotations

import argparse

from pipeline import paths
from pipeline.config import load_params
from pipeline.io import check_writable
from pipeline.reporting import expected_runs, render
from stages._cli import run

PARAMS = ["grid", "ngram.orders"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args(argv)
    params = load_params().scoped(PARAMS)
    check_writable(paths.FIGURES)
    render(expected_runs(params.grid, params.ngram.orders))


if __name__ == "__main__":
    run(main)
