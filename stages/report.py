"""Stage report: render reports/{README.md, index.html, figures/} from metrics/ and curves/.

    python -m stages.report

Reports exactly the runs params.yaml's `grid` and `ngram.orders` name: DVC never deletes the
outputs of matrix members dropped from the grid, so metrics/ may hold stale runs. The grid's
order also fixes the reference level of each factor's main effect (its first value).
"""

from __future__ import annotations

import argparse

from pipeline import paths
from pipeline.config import load_params
from pipeline.io import check_writable
from pipeline.reporting import collect, expected_runs, render
from pipeline.tracking.sync import sync
from stages._cli import run

PARAMS = ["grid", "ngram.orders"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args(argv)
    params = load_params().scoped(PARAMS)
    check_writable(paths.FIGURES)
    runs = expected_runs(params.grid, params.ngram.orders)
    # MLflow holds every run shown, also those DVC restored instead of running; rows link to them
    links = sync(params.tracking, collect(runs)) if params.tracking.enabled else {}
    render(runs, params, links)


if __name__ == "__main__":
    run(main)
