"""One grid member end to end: data in, trained model, metrics on the common footing out.

`train_run` is what stage train@<run> calls and what tuning will call with callbacks: it
loads the tokenized corpus, trains every part of the LM (the hybrid's speller first, then its
word RNN), scores valid and test with the one evaluator, and returns a `RunResult` (metrics,
per-epoch records, the final weights and samples to write); `artifacts.write_run` writes it.
Under torchrun every rank calls it; rank 0 alone holds the run's lock and its MLflow run, and
only its result is written (distributed.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from pipeline import paths
from pipeline.artifacts import RunResult
from pipeline.config import Params
from pipeline.corpora.text import read_split, read_splits
from pipeline.evaluation import evaluate_segments
from pipeline.imports import files_hash, project_files
from pipeline.io import exclusive, sha256_file, write_json, write_text
from pipeline.rnn import distributed
from pipeline.rnn.checkpoint import prune_runs, save_torch
from pipeline.rnn.lm import build_lm
from pipeline.rnn.model import n_params
from pipeline.rnn.trainer import pick_device, seed_everything, train
from pipeline.tracking import Tracker
from pipeline.text import first_lines
from pipeline.tokenizers import Tokenizer, load_split_ids, load_tokenizer


@dataclass(frozen=True)
class RunSpec:
    """One member of the ablation grid with one seed; `run` names its folder, metrics and curve
    files, `group` the grid cell whose seeds it shares (None: a run outside the grid)."""

    run: str
    corpus: str
    lm: str
    cell: str
    dropout: float
    clip: float
    seed: int
    group: str | None = None

    @property
    def stage(self) -> str:
        """The DVC stage that runs it: a member's other seeds are train_seed@'s."""
        return f"{'train_seed' if self.group not in (None, self.run) else 'train'}@{self.run}"

    @property
    def factors(self) -> dict:
        """The grid factors that `Params.train_for` writes into the training config."""
        return {"cell": self.cell, "dropout": self.dropout, "clip": self.clip}


@functools.cache  # the code does not change within a process; tuning calls train_run per trial
def code_hash() -> str:
    """A hash of the code that shapes a trained model and its scores: this module and every
    project file it imports (the train stage's code deps but its own wiring)."""
    return files_hash(project_files(__name__))


def train_data(corpus: str, tok: Tokenizer, max_chars: int | None) -> tuple[np.ndarray, int | None]:
    """(ids, characters): the tokenize stage's train ids (characters None: the whole split), or,
    with a data budget, the ids of the whole lines of the train text within its first
    `max_chars` characters, and how many characters those are: the same text for every LM type."""
    if max_chars is None:
        return load_split_ids(corpus, tok, "train"), None
    text = first_lines(read_split(corpus, "train"), max_chars)
    return tok.encode(text), len(text)


# Keys of the training config that change nothing about the trained weights. `distributed`: the
# global batch is batching.batch_size whatever the number of ranks (equal to float rounding), and
# a run may resume under another one.
NOT_HASHED = {"checkpoint_minutes", "samples", "sample_tokens", "sample_temperature", "sample_top_k", "threads",
              "distributed"}


def params_hash(params: Params, spec: RunSpec) -> str:
    """Everything that shapes the trained weights (params, the tokenized data, the valid text
    that picks the best epoch, the code); a checkpoint written under another hash is never
    resumed. So when DVC re-runs a stage because any of its deps changed, a finished
    checkpoint is not passed off as the result."""
    data = [paths.tokenizer_file(spec.corpus, spec.lm), paths.split_tokens(spec.corpus, spec.lm, "train"),
            paths.split_text(spec.corpus, "valid")]
    cfg = params.train_for(spec.lm, spec.factors)
    train_cfg = cfg.model_dump(exclude=NOT_HASHED | {"speller"})
    if cfg.speller is not None:
        train_cfg["speller"] = cfg.speller.model_dump(exclude=NOT_HASHED | {"speller"})
    relevant = {
        "data": [sha256_file(p) if p.exists() else None for p in data],
        "code": code_hash(),
        "spec": asdict(spec),  # the seed included
        "train": train_cfg,
        "eval": params.eval.model_dump(),  # valid scores pick the best epoch
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


# Checkpoint folders kept per run (one per params hash, the current one included): params changed
# and reverted within this many runs of a stage find their finished (or killed) run again.
KEEP_HASHES = 3
LOCK = "lock"  # checkpoints/<run>/lock: held while the run trains


def train_run(params: Params, spec: RunSpec, callbacks=(), progress: bool = True,
              report_every: float | None = None, tags: dict[str, str] | None = None,
              lock_wait_s: float = 0.0) -> RunResult:
    """Train and score one grid member. `callbacks` see the MODEL part's epochs (and, with
    `report_every`, its intermediate valid scores: see `train`). `tags`: more MLflow tags of the
    run, set when it is created (a tuning trial's parent run, for one). `lock_wait_s`: how long
    to wait for another process that trains the same run to let go (by default: not at all).

    Resumes from the checkpoints of the same params hash (a killed run, or a finished one:
    then nothing is trained); other params train from scratch in a folder of their own. The
    run is an MLflow run (params.tracking), resumed with its checkpoints; the returned result
    carries its tracker, which `artifacts.write_run` finishes."""
    h = params_hash(params, spec)
    cfg = params.train_for(spec.lm, spec.factors)
    group = distributed.group()
    device = group.device(pick_device(cfg.device))
    rd = paths.RunDir(spec.run)
    config = {**asdict(spec), "train": cfg.model_dump(), "eval": params.eval.model_dump()}
    tracker = None  # rank 0's alone
    # one trainer per run (its group's rank 0 holds the lock)
    lock = exclusive(rd.checkpoint_root / LOCK, f"run {spec.run}", lock_wait_s)
    with lock if group.writer else contextlib.nullcontext():
        if group.writer:
            others = [d for d in rd.checkpoint_root.glob("*") if d.is_dir() and d.name != h]
            tracker = Tracker(params.tracking, corpus=spec.corpus, run=spec.run, stage=spec.stage,
                              params_hash=h, params=config,
                              tags={"device": str(device), "torch": torch.__version__, "world_size": str(group.world),
                                    **({"group": spec.group} if spec.group else {}), **(tags or {})},
                              state_dir=rd.checkpoint_root / h,
                              stale_dirs=others)  # its agent imports mlflow while the data loads
        watchers = [*callbacks, tracker] if tracker else list(callbacks)
        try:
            if group.writer:
                prune_runs(rd.checkpoint_root, h, KEEP_HASHES)
            tok = load_tokenizer(paths.tokenizer_file(spec.corpus, spec.lm))
            texts = read_splits(spec.corpus, ("valid", "test"))
            lm = build_lm(tok, cfg, params.eval, device)
            ids, train_chars = train_data(spec.corpus, tok, cfg.max_train_chars)
            parts = lm.parts(ids, texts["valid"])  # the models sized here (a budget too small stops the run)
            if tracker:
                tracker.started()  # an unreachable store stops the run here, before any training
            trained = []  # one TrainResult per part
            for part in parts:  # the last part is the model the run is about
                seed_everything(spec.seed)  # the initial weights follow the seed
                trained.append(train(lm.build(part), part.ids, part.cfg, seed=spec.seed, newline_id=part.newline_id,
                                     ckpt_dir=rd.checkpoints(h, part.name), params_hash=h, evaluate=part.evaluate,
                                     callbacks=watchers if part is parts[-1] else (),
                                     report_every=report_every if part is parts[-1] else None,
                                     progress=progress, device=device))  # leaves the best state in the net
        except BaseException:
            if tracker:
                tracker.close()  # the agent ends the MLflow run KILLED; a re-run resumes it
            raise

    result = trained[-1]
    # wall_s is the whole LM's training, every part's (the hybrid's speller too); tokens_per_s is
    # the MODEL part's, in its own tokens. A run of several parts also keeps each part's wall_s.
    cost = {"wall_s": sum(r.wall_s for r in trained), "tokens_per_s": result.tokens_per_s}
    if len(parts) > 1:
        cost.update({f"{part.name}_wall_s": r.wall_s for part, r in zip(parts, trained)})
    metrics = {
        **asdict(spec),
        "stage": spec.stage,
        "params_hash": h,
        "n_params": lm.n_params,  # all parts: the hybrid's speller counted
        "param_budget": cfg.model.param_budget,
        "sizes": {p.name: {"hidden": p.cfg.model.hidden, "embed_dim": p.cfg.model.embed_dim,
                           "n_params": n_params(p.vocab_size, p.cfg.model)} for p in parts},
        "train_chars": train_chars,  # None: the whole train split
        "epochs": result.epochs,
        "train_tokens": result.train_tokens,
        "diverged": result.diverged,
        "diverged_epoch": result.diverged_epoch,
        "stopped_early": result.stopped_early,
        "best_epoch": None,
        "valid": None,
        "test": None,
    }
    logged = [paths.tokenizer_file(spec.corpus, spec.lm)]
    if result.best_state is None:  # only when the very first epoch diverged
        return RunResult(metrics, cost, result.records, files={paths.CONFIG: lambda path: write_json(path, config)},
                         tracker=tracker, logged=logged)
    # the best epoch's valid scores are in its record
    best = result.records[result.best_epoch - 1]
    metrics["best_epoch"] = result.best_epoch
    metrics["valid"] = {k.removeprefix("valid_"): v for k, v in best.items()
                        if k.startswith("valid_") and k != "valid_loss"}
    t0 = time.perf_counter()
    metrics["test"], segments = evaluate_segments(lm.scorer(), texts["test"], params.eval.segment_lines)
    cost["test_s"] = time.perf_counter() - t0
    state = lm.state_dict()
    return RunResult(metrics, cost, result.records, files={
        paths.WEIGHTS: lambda path: save_torch(state, path),
        paths.SAMPLES: lambda path: write_text(path, lm.samples(spec.seed)),  # by the writer alone
        paths.CONFIG: lambda path: write_json(path, config),
    }, segments=segments, tracker=tracker, logged=logged)
