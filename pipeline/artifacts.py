"""The one writer of a run's artifacts, and the curve file format.

`train_run` and `ngram_run` compute; they return a `RunResult` and write nothing final (the
trainer's checkpoints are its own business). `write_run` writes a result into its `RunDir`:
the model files first, then the curve, then the metrics file, last, so that a metrics file
means a complete run. Whatever else must see a finished run (the MLflow logger, DDP's rank 0)
hooks in here, once.

curves/<run>.csv: one row per epoch, one column per numeric key of the trainer's epoch records;
read by the report and by `dvc plots` (dvc.yaml plots `epoch` against `valid_bits_per_char`).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.io import write_json, write_text
from pipeline.paths import RunDir
from pipeline.tracking import Tracker


@dataclass
class RunResult:
    metrics: dict  # what metrics/<run>.json holds
    records: list[dict] = field(default_factory=list)  # per-epoch rows of curves/<run>.csv (RNN runs)
    # model files by name (paths.WEIGHTS, ...): each writes its artifact, atomically, to the path given
    files: dict[str, Callable[[Path], None]] = field(default_factory=dict)
    obsolete: tuple[str, ...] = ()  # names of model files a run of other params may have left
    tracker: Tracker | None = None  # the run's MLflow side, finished once the files are written
    logged: list[Path] = field(default_factory=list)  # inputs worth keeping with the MLflow run (tokenizer)


def write_run(rd: RunDir, result: RunResult) -> None:
    for name, write in result.files.items():
        write(rd.file(name))
    for name in result.obsolete:
        rd.file(name).unlink(missing_ok=True)
    if result.records:
        write_curve(rd.curve, result.records)
    write_json(rd.metrics, result.metrics)
    if result.tracker is not None:
        result.tracker.finish(result.metrics, [rd.file(n) for n in result.files] + result.logged,
                              rd.curve if result.records else None)


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
