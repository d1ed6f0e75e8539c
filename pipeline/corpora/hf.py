"""`source: hf`: a dataset through `datasets.load_dataset`, rows of `text_column` as lines.

`dataset` is a hub id (`Salesforce/wikitext` + `config`, pinned by `revision`), a local
dataset directory, or a packaged builder such as `parquet` / `text` / `json` with local
`data_files`. `splits` maps our split names to the dataset's: all of train/valid/test ->
the corpus' own splits; `{train: ...}` alone -> corpus.txt, which `prepare` splits (documents
are then separated by empty rows, as in `text` datasets). Each row is one line: a row's own
final newline ends it (WikiText rows keep theirs), else one is added; a row that is a paragraph
(containing newlines) stays whole. So `Salesforce/wikitext` gives the lines of the raw WikiText
files, except that its blank rows are empty where the files have a single space.

The hub is probed once, without retries, before loading: `load_dataset` itself retries an
unreachable hub for half a minute or more, and an offline machine should fail at once with
a clear message. With `HF_HUB_OFFLINE=1` the probe is skipped and `datasets` answers from its
cache (or fails fast). source.json records the hub commit (when probed) and each split's rows.

`datasets` and `huggingface_hub` are imported inside the functions: they take seconds to
import, and only this source needs them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pipeline.config import HfSource
from pipeline.corpora import layout
from pipeline.errors import UserError

log = logging.getLogger(__name__)

_PROBE_TIMEOUT_S = 10


def _is_hub_id(dataset: str) -> bool:
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    return dataset not in _PACKAGED_DATASETS_MODULES and not os.path.exists(dataset)


def _probe_hub(cfg: HfSource) -> str | None:
    """The hub commit of the dataset, or None offline; a clear UserError if the hub is out of reach."""
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        return None
    try:
        return HfApi().dataset_info(cfg.dataset, revision=cfg.revision, timeout=_PROBE_TIMEOUT_S).sha
    except Exception as e:  # connection, auth, not found: each says what it is
        raise UserError(
            f"hf dataset {cfg.dataset!r}: cannot use the Hugging Face Hub at {constants.ENDPOINT} "
            f"({type(e).__name__}: {e}). Use a local copy (data_files / a local path), or set "
            "HF_HUB_OFFLINE=1 to load it from the local cache."
        ) from None


def _load(cfg: HfSource):
    import datasets

    kwargs = {k: v for k, v in (("revision", cfg.revision), ("data_files", cfg.data_files)) if v is not None}
    try:
        return datasets.load_dataset(cfg.dataset, cfg.config, **kwargs)
    except (
        Exception
    ) as e:  # load_dataset raises many types (ConnectionError, FileNotFoundError, ValueError, ...)
        raise UserError(
            f"hf dataset {cfg.dataset!r} (config {cfg.config!r}): {type(e).__name__}: {e}"
        ) from None


def _line(row: str) -> str:
    return row if row.endswith("\n") else row + "\n"


def _text(ds, cfg: HfSource, split: str) -> bytes:
    name = cfg.splits[split]
    if name not in ds:
        raise UserError(f"hf dataset {cfg.dataset!r}: no split {name!r} (for {split}); it has {sorted(ds)}")
    table = ds[name]
    if cfg.text_column not in table.column_names:
        raise UserError(
            f"hf dataset {cfg.dataset!r}: no column {cfg.text_column!r}; it has {table.column_names}"
        )
    return "".join(_line(t or "") for t in table[cfg.text_column]).encode("utf-8")


def fetch(cfg: HfSource, raw_dir: Path, work_dir: Path) -> dict:
    commit = _probe_hub(cfg) if _is_hub_id(cfg.dataset) else None
    ds = _load(cfg)
    texts = {split: _text(ds, cfg, split) for split in cfg.splits}
    if len(texts) == 1:
        layout.write_corpus(raw_dir, texts["train"])
    else:
        layout.write_splits(raw_dir, texts)
    return {
        "fetched": {"dataset": cfg.dataset, "config": cfg.config, "hub_commit": commit},
        "members": [
            {**layout.record(cfg.splits[s], texts[s]), "split": s, "rows": ds[cfg.splits[s]].num_rows}
            for s in texts
        ],
    }
