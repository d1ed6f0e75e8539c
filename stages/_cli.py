"""What every stage entry point shares: argument parsing with the corpus first, logging,
params validated before any work, and a UserError turned into one line and exit code 2.

Each stage declares PARAMS, the params keys it reads, exactly as its `params:` in dvc.yaml
lists them ("{name}" for an argument, where dvc.yaml has "${item.name}"); it sees its params
through `Params.scoped`, so reading any other key fails, and tests/test_deps.py checks that
dvc.yaml lists the same keys."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Callable, Sequence

from pipeline.config import Params, load_params
from pipeline.errors import EXIT_USER_ERROR, Interrupted, UserError


def corpus_stage(doc: str, argv: list[str] | None, params_keys: Sequence[str],
                 add_args: Callable[[argparse.ArgumentParser], object] = lambda ap: None,
                 ) -> tuple[argparse.Namespace, Params]:
    """Parse `<corpus> [more args]`, set up logging, load and check params and the corpus name;
    returns the params scoped to `params_keys` (formatted with the arguments)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("corpus", help="a key of params.yaml `corpora`")
    add_args(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    params = load_params()
    params.corpus(args.corpus)  # an unknown corpus is a params error, not a missing directory
    return args, params.scoped(k.format(**vars(args)) for k in params_keys)


def _raise_interrupted(signum: int, frame) -> None:
    raise Interrupted(signum)


def run(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Run a stage: a UserError is one line and exit 2; SIGINT (Ctrl-C) or SIGTERM one line
    saying what was kept and exit 130 / 143 (the trainer defers them to a batch boundary and
    checkpoints there; anything else loses at most a write in progress, which is atomic)."""
    signal.signal(signal.SIGTERM, _raise_interrupted)  # by default SIGTERM kills without a word
    try:
        main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except (KeyboardInterrupt, Interrupted) as e:
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        kept = getattr(e, "kept", "") or "nothing half-written was kept (every write is atomic)"
        print(f"interrupted ({signal.Signals(signum).name}): {kept}; `dvc repro` carries on from there",
              file=sys.stderr)
        sys.exit(128 + signum)
