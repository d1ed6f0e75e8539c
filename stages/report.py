"""Stage report: render reports/{README.md, index.html, figures/} from results/ and curves/.

    python -m stages.report

Reports exactly the runs params.yaml's `grid`, `ngram.orders` and `tune.targets` name: DVC never deletes the
outputs of matrix members dropped from the grid, so results/ may hold stale runs. The grid's
order also fixes the reference level of each factor's main effect (its first value).
"""

from __future__ import annotations

import argparse

from pipeline import paths
from pipeline.config import load_params
from pipeline.io import check_writable
from pipeline.reporting import collect, collect_tuned, expected_runs, render
from pipeline.tracking.sync import sync
from stages._cli import run

PARAMS = ["grid", "ngram.orders", "tune.targets"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args(argv)
    params = load_params().scoped(PARAMS)
    check_writable(paths.FIGURES)
    runs = expected_runs(params.grid, params.ngram.orders)
    tuned = collect_tuned(params.tune.targets)
    # MLflow holds every run shown, also those DVC restored instead of running; rows link to them
    shown = collect(runs) + [t.tuned for t in tuned]
    links = sync(params.tracking, shown)  # none with tracking off
    render(runs, params, links, tuned)


if __name__ == "__main__":
    run(main)
