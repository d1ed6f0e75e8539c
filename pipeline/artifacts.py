"""The one writer of a run's artifacts, and the curve file format.

`train_run` and `ngram_run` compute; they return a `RunResult` and write nothing final (the
trainer's checkpoints are its own business). `write_run` writes a result into its `RunDir`:
the model files and cost first, then the curve, the result and, last, the metrics file, so
that a metrics file means a complete run. Whatever else must see a finished run (the MLflow
logger, DDP's rank 0) hooks in here, once. Which file holds what: pipeline/paths.py.

curves/<run>.csv: one row per epoch, one column per numeric key of the trainer's epoch records
but the clock's (CLOCK: those go to the cost file); read by the report and by `dvc plots`
(dvc.yaml plots `epoch` against `valid_bits_per_char`).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pipeline.evaluation import Segments
from pipeline.io import write_bytes, write_json, write_text
from pipeline.paths import COST, RunDir
from pipeline.tracking import Tracker


CLOCK = ("wall_s", "tokens_per_s")  # per-epoch record keys that time a run rather than describe it
HEADLINE = ("bits_per_char", "word_ppl")  # the evaluator's figures metrics/<run>.json shows per split


@dataclass
class RunResult:
    result: dict  # results/<run>.json: deterministic (same params, seed and machine: same bytes)
    cost: dict = field(default_factory=dict)  # models/<run>/cost.json: wall times and speeds
    # per-epoch rows of curves/<run>.csv: None for a run without a curve (n-gram); an RNN run that
    # diverged within its first epoch has none, but its curve file (a DVC out) is written all the same
    records: list[dict] | None = None
    # model files by name (paths.WEIGHTS, ...): each writes its artifact, atomically, to the path given
    files: dict[str, Callable[[Path], None]] = field(default_factory=dict)
    obsolete: tuple[str, ...] = ()  # names of model files a run of other params may have left
    segments: Segments | None = None  # results/<run>.segments.npy: the test segments (None: no test score)
    tracker: Tracker | None = None  # the run's MLflow side, finished once the files are written
    logged: list[Path] = field(default_factory=list)  # inputs worth keeping with the MLflow run (tokenizer)


def write_run(rd: RunDir, result: RunResult) -> None:
    for name, write in result.files.items():
        write(rd.file(name))
    for name in result.obsolete:
        rd.file(name).unlink(missing_ok=True)
    epochs = [{k: r[k] for k in ("epoch", *CLOCK) if k in r} for r in result.records or []]
    write_json(rd.file(COST), {**result.cost, **({"per_epoch": epochs} if epochs else {})})
    if result.records is not None:
        write_curve(rd.curve, result.records)
    write_segments(rd.segments, result.segments)
    write_json(rd.result, result.result)
    write_json(rd.metrics, headline(result.result))
    if result.tracker is not None:
        result.tracker.finish({**result.result, **result.cost},
                              [rd.file(n) for n in (*result.files, COST)] + result.logged,
                              rd.curve if result.records is not None else None)


def headline(result: dict) -> dict:
    """What `dvc metrics show/diff` compare: a few numbers per run, no names, paths or clocks."""
    out = {f"{split}_{k}": result[split][k] for split in ("test", "valid") if result.get(split) for k in HEADLINE}
    if result.get("test"):
        out["open_vocab"] = result["test"]["open_vocab"]
    out["n_params"] = result["n_params"]
    if "diverged" in result:
        out["diverged"] = result["diverged"]
    return out


SEGMENT_DTYPE = np.dtype([("nll", "<f8"), ("n_chars", "<i8")])


def write_segments(path: Path, segments: Segments | None) -> None:
    """One row per test segment (NLL in nats, characters) as .npy, which, unlike .npz, has no
    timestamp: the same scores give the same bytes. No rows for a run without a test score."""
    table = np.zeros(0 if segments is None else len(segments.nll), SEGMENT_DTYPE)
    if segments is not None:
        table["nll"], table["n_chars"] = segments.nll, segments.n_chars
    buf = io.BytesIO()
    np.save(buf, table, allow_pickle=False)
    write_bytes(path, buf.getvalue())


def read_segments(path: Path) -> Segments | None:
    """What write_segments wrote; None for a missing file or a run without a test score."""
    if not path.is_file():
        return None
    table = np.load(path, allow_pickle=False)
    return Segments(table["nll"].copy(), table["n_chars"].copy()) if len(table) else None


def write_curve(path: str | os.PathLike, records: list[dict]) -> None:
    """Per-epoch scalars as CSV (one column per numeric key seen in any epoch, the clock's aside)."""
    keys = list(dict.fromkeys(["epoch", *(k for r in records for k, v in r.items()
                                          if isinstance(v, (int, float)) and k not in CLOCK)]))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(records)
    write_text(path, buf.getvalue())
