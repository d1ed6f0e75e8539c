"""Stage check_params: validate the whole params.yaml before any other stage runs, and write the
digests of the train params per LM type.

    python -m stages.check_params

Every stage depends (through sources@<corpus>, the root of the DAG) on the stamp this stage
writes, and this stage depends on params.yaml itself, so any edit of the file is checked on
the next `dvc repro`, even when no stage would otherwise run, with the schema's message naming
the key and exit code 2. The stamp's content never changes, so a valid edit re-runs nothing
else: DVC re-runs what depends on the keys that changed, as ever.

The stages that train depend on data/params/train-<lm>.json rather than on DVC params (why:
config.TRAIN_PARAMS); each digest changes only when a value it holds does.

With tracking on, it also starts the tracking agent on its way (`tracking.warm`), so that the
runs after it find the store open rather than wait for it.
"""

from __future__ import annotations

import argparse

from pipeline import paths
from pipeline.config import LM_TYPES, load_raw, parse_params, train_params_digest
from pipeline.io import write_text
from pipeline.tracking import warm
from stages._cli import run

PARAMS: list[str] = []  # reads params.yaml as a file dep: every key


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    raw = load_raw()
    params = parse_params(raw)
    for lm in LM_TYPES:
        write_text(paths.train_params_file(lm), train_params_digest(raw, lm))
    write_text(paths.PARAMS_CHECKED, "params.yaml is valid\n")
    warm(params.tracking)


if __name__ == "__main__":
    run(main)
