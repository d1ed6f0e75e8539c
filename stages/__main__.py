"""Run a stage in a child of the fork server (pipeline/forkserver.py): dvc.yaml's commands.

    python -m stages train shakespeare shakespeare-word-lstm-0.0-5 --lm word ...

does what `python -m stages.train shakespeare ...` does, without importing torch and the rest
again for every stage: 1.7 s of each train stage's start in a 60-stage repro.
"""

import sys
from pathlib import Path

from pipeline.errors import EXIT_USER_ERROR
from pipeline.forkserver import client


def main() -> None:
    names = sorted(p.stem for p in Path(__file__).parent.glob("*.py") if not p.stem.startswith("_"))
    if len(sys.argv) < 2 or sys.argv[1] not in names:
        print(f"usage: python -m stages STAGE [ARGS...]; STAGE is one of {', '.join(names)}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    client(f"stages.{sys.argv[1]}", sys.argv[2:])


if __name__ == "__main__":
    main()
