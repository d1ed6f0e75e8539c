"""Shared entry-point wrapper: a UserError becomes one line on stderr and exit code 2."""

from __future__ import annotations

import sys
from typing import Callable

from pipeline.errors import EXIT_USER_ERROR, UserError


def run(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    try:
        main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
