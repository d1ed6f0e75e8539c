"""Every artifact path, in one place. dvc.yaml spells the same paths; tests check they agree.

A run id is the key DVC gives a matrix member (values joined by '-'), e.g. stage
`train@shakespeare-word-lstm-0.5-5` is run `shakespeare-word-lstm-0.5-5`: the same name for
the stage, `models/<run>/`, `metrics/<run>.json`, `curves/<run>.csv` and the MLflow run.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.corpora.layout import split_file

DATA = Path("data")
MODELS = Path("models")
METRICS = Path("metrics")
CURVES = Path("curves")
REPORTS = Path("reports")
STATS_JSON = "stats.json"  # the summary beside prepared text and token ids


def raw_dir(corpus: str) -> Path:
    """Verified source bytes + source.json."""
    return DATA / "raw" / corpus


def text_dir(corpus: str) -> Path:
    """{train,valid,test}.txt + stats.json."""
    return DATA / "text" / corpus


def split_text(corpus: str, split: str) -> Path:
    return text_dir(corpus) / split_file(split)  # named like the raw splits


def tokens_dir(corpus: str, tokenizer: str) -> Path:
    """tokenizer.json, <split>.npy, stats.json."""
    return DATA / "tokens" / corpus / tokenizer


def tokenizer_file(corpus: str, tokenizer: str) -> Path:
    return tokens_dir(corpus, tokenizer) / "tokenizer.json"


def split_tokens(corpus: str, tokenizer: str, split: str) -> Path:
    return tokens_dir(corpus, tokenizer) / f"{split}.npy"


def run_id(*parts: object) -> str:
    """Join grid values the way DVC names matrix members (str of each YAML value)."""
    return "-".join(str(p) for p in parts)


def model_dir(run: str) -> Path:
    """Checkpoints, final weights, samples (a `persist: true` DVC out)."""
    return MODELS / run


def metrics_file(run: str) -> Path:
    return METRICS / f"{run}.json"


def curve_file(run: str) -> Path:
    """Per-epoch curve for `dvc plots`."""
    return CURVES / f"{run}.csv"
