"""Stage report: render reports/{README.md, index.html, figures/} from metrics/ and curves/.

    python -m stages.report
"""

from __future__ import annotations

import argparse

from pipeline import paths
from pipeline.config import load_params
from pipeline.reporting import render
from stages._cli import run


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args(argv)
    load_params()  # a broken params.yaml stops here too, before any work
    render(paths.METRICS, paths.CURVES, paths.REPORTS)


if __name__ == "__main__":
    run(main)
