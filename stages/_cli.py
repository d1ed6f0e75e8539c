"""What every stage entry point shares: argument parsing with the corpus first, logging,
params validated before any work, and a UserError turned into one line and exit code 2."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from pipeline.config import Params, load_params
from pipeline.errors import EXIT_USER_ERROR, UserError


def corpus_stage(doc: str, argv: list[str] | None,
                 add_args: Callable[[argparse.ArgumentParser], object] = lambda ap: None,
                 ) -> tuple[argparse.Namespace, Params]:
    """Parse `<corpus> [more args]`, set up logging, load and check params and the corpus name."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("corpus", help="a key of params.yaml `corpora`")
    add_args(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    params = load_params()
    params.corpus(args.corpus)  # an unknown corpus is a params error, not a missing directory
    return args, params


def run(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    try:
        main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
