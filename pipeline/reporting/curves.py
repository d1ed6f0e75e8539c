"""The per-epoch curve file, curves/<run>.csv: written by the train stage, read by the report
and by `dvc plots` (dvc.yaml plots `epoch` against `valid_bits_per_char`).

One row per epoch, one column per numeric key of the trainer's epoch records.
"""

from __future__ import annotations

import csv
import io
import os

from pipeline.io import write_text


def write_curve(path: str | os.PathLike, records: list[dict]) -> None:
    """Per-epoch scalars as CSV (one column per numeric key seen in any epoch)."""
    keys = list(dict.fromkeys(k for r in records for k, v in r.items() if isinstance(v, (int, float))))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(records)
    write_text(path, buf.getvalue())


def read_curve(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a curve file, values as written (strings)."""
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))
