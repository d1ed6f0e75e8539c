"""Every artifact path and file name, in one place. dvc.yaml spells the same paths; tests check
they agree. This module imports nothing of the project: every layer may use it.

A run id is the key DVC gives a matrix member (values joined by '-'), e.g. stage
`train@shakespeare-word-lstm-0.5-5` is run `shakespeare-word-lstm-0.5-5`: the same name for
the stage, `models/<run>/`, `results/<run>.json`, `metrics/<run>.json`, `curves/<run>.csv` and
the MLflow run.

Three files describe a finished run, split by who reads them:
- `results/<run>.json`: everything deterministic about it (identity, the evaluator's sums and
  ratios for valid and test, flags): what the report reads;
- `metrics/<run>.json`: its headline numbers, DVC's `metrics:` (`dvc metrics show/diff`), a
  table a reviewer can read;
- `models/<run>/cost.json`: what the clock said (wall time, tokens/s). Kept out of the other
  two, so a re-run or resumed stage with the same result changes no file the report depends
  on, and two clones of the same commit write byte-identical results and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA = Path("data")
MODELS = Path("models")
METRICS = Path("metrics")
RESULTS = Path("results")
CURVES = Path("curves")
TUNING = Path("tuning")
CHECKPOINTS = Path("checkpoints")  # git-ignored, never a DVC out (see RunDir.checkpoints)
REPORTS = Path("reports")
FIGURES = REPORTS / "figures"
REPORT_MD = REPORTS / "README.md"
REPORT_HTML = REPORTS / "index.html"  # self-contained but for the figures beside it

PARAMS_DIR = DATA / "params"  # stage check_params's out
PARAMS_CHECKED = PARAMS_DIR / "checked"  # its stamp: params.yaml passed the schema
CODE = DATA / "code"  # stage code's fingerprints (code_file), each stage's code dep
STATS_JSON = "stats.json"  # the summary beside prepared text and token ids
SOURCE_JSON = "source.json"  # provenance beside the raw corpus
CORPUS = "corpus.txt"  # a raw corpus without splits of its own
TOKENIZER_JSON = "tokenizer.json"


def train_params_file(lm: str) -> Path:
    """The digest of the train params of an LM type (config.TRAIN_PARAMS): the train stages' dep."""
    return PARAMS_DIR / f"train-{lm}.json"


def split_file(split: str) -> str:
    """The file name of a split, raw or prepared."""
    return f"{split}.txt"


def sources_dir(corpus: str) -> Path:
    """A symlink to each local file of the corpus: what DVC watches for the download stage."""
    return DATA / "sources" / corpus


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
    return tokens_dir(corpus, tokenizer) / TOKENIZER_JSON


def split_tokens(corpus: str, tokenizer: str, split: str) -> Path:
    return tokens_dir(corpus, tokenizer) / f"{split}.npy"


def run_id(*parts: object) -> str:
    """Join grid values the way DVC names matrix members (str of each YAML value)."""
    return "-".join(str(p) for p in parts)


def metrics_file(run: str) -> Path:
    """The run's headline numbers (DVC metrics)."""
    return METRICS / f"{run}.json"


def result_file(run: str) -> Path:
    """The run's full deterministic record (what the report reads)."""
    return RESULTS / f"{run}.json"


def segments_file(run: str) -> Path:
    """Each test segment's NLL and characters (the report's paired bootstrap; see artifacts)."""
    return RESULTS / f"{run}.segments.npy"


def curve_file(run: str) -> Path:
    """Per-epoch curve for `dvc plots`."""
    return CURVES / f"{run}.csv"


def tuning_dir(target: str) -> Path:
    """tune@<target>'s results: best params, trials table, summary, plots (a DVC out; the Optuna
    study itself lives in its storage, see pipeline/tuning/)."""
    return TUNING / target


TUNING_SUMMARY = "summary.json"  # in tuning_dir: trial counts, the best trial, the target's own values


def code_file(stage_module: str) -> Path:
    """The fingerprint of the code a stage's module imports (stages.<name>: its <name>)."""
    return CODE / f"{stage_module.removeprefix('stages.')}.txt"


def figure_file(name: str) -> Path:
    """A report figure, `name` without extension."""
    return FIGURES / f"{name}.png"


@dataclass(frozen=True)
class RunDir:
    """Where one run's artifacts live: `models/<run>/` the final model files (weights, samples,
    ARPA, cost), `results/<run>.json`, `metrics/<run>.json`, `curves/<run>.csv` (all DVC outs), and the trainer's
    checkpoints in `checkpoints/<run>/<params hash>/<part>/`, outside DVC's outs: DVC deletes a
    stage's outs before it runs it and keeps no run-cache for a stage with persistent outs, so
    checkpoints there would make every train stage ineligible for the run-cache. Keyed by the
    params hash, a killed stage resumes, and params changed and then reverted find their
    finished run again."""

    run: str

    @property
    def root(self) -> Path:
        return MODELS / self.run

    @property
    def checkpoint_root(self) -> Path:
        """checkpoints/<run>/: one folder per params hash."""
        return CHECKPOINTS / self.run

    def checkpoints(self, params_hash: str, part: str) -> Path:
        """The trainer's checkpoint folder of one part of the model (the hybrid's speller trains
        before its word model) under one params hash."""
        return self.checkpoint_root / params_hash / part

    def file(self, name: str) -> Path:
        """A final artifact of the run, by its name (WEIGHTS, SAMPLES, ARPA...)."""
        return self.root / name

    @property
    def metrics(self) -> Path:
        return metrics_file(self.run)

    @property
    def result(self) -> Path:
        return result_file(self.run)

    @property
    def segments(self) -> Path:
        return segments_file(self.run)

    @property
    def curve(self) -> Path:
        return curve_file(self.run)


WEIGHTS = "model.pt"  # final state_dicts of an RNN run (the best epoch)
CONFIG = "config.json"  # the effective config a run's model was made with (its MLflow params)
SAMPLES = "samples.txt"  # generated text of an RNN run
COST = "cost.json"  # wall time and speed of the run that made the model (see the module's docstring)


def arpa_name(gzip: bool) -> str:
    """The n-gram model file: KenLM-readable ARPA, gzipped or plain."""
    return "model.arpa.gz" if gzip else "model.arpa"
