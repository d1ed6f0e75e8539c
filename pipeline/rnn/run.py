"""One grid member end to end: data in, trained model, metrics on the common footing out.

`train_run` is what stage train@<run> calls and what tuning will call with callbacks: it
loads the tokenized corpus, trains (the hybrid's speller first, then its word RNN), scores
valid and test with the one evaluator, writes weights and samples, and returns the metrics
and the per-epoch records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline import paths
from pipeline.config import BatchingConfig, ModelConfig, OptimConfig, Params, ScheduleConfig, TrainConfig
from pipeline.corpora.layout import sha256_file
from pipeline.corpora.text import read_splits
from pipeline.errors import UserError
from pipeline.evaluation import evaluate
from pipeline.io import atomic_open, write_text
from pipeline.rnn.model import RNNLM
from pipeline.rnn.sampling import generate
from pipeline.rnn.scorer import SPELLER_BPTT, HybridScorer, RNNScorer, speller_nll
from pipeline.rnn.trainer import pick_device, seed_everything, train
from pipeline.tokenizers import Tokenizer, load_split_ids, load_tokenizer
from pipeline.tokenizers.hybrid import HybridTokenizer


@dataclass(frozen=True)
class RunSpec:
    """One member of the ablation grid; `run` names its folder, metrics and curve files."""

    run: str
    corpus: str
    lm: str
    cell: str
    dropout: float
    clip: float


# The code that shapes a trained model and its scores: the train stage's code deps in dvc.yaml
# but the stage's own I/O (stages/train.py, corpora/text.py), plus the schema.
CODE = [Path(__file__).parents[1] / p for p in ("rnn", "evaluation", "tokenizers", "config.py")]


def code_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(f for p in CODE for f in ([p] if p.is_file() else p.rglob("*.py"))):
        h.update(path.read_bytes())
    return h.hexdigest()


def params_hash(params: Params, spec: RunSpec) -> str:
    """Everything that shapes the trained weights (params, the tokenized data, the valid text
    that picks the best epoch, the code); a checkpoint written under another hash is never
    resumed. So when DVC re-runs a stage because any of its deps changed, a finished
    checkpoint is not passed off as the result."""
    data = [paths.tokenizer_file(spec.corpus, spec.lm), paths.split_tokens(spec.corpus, spec.lm, "train"),
            paths.split_text(spec.corpus, "valid")]  # hybrid: valid.npy derives from these two
    relevant = {
        "data": [sha256_file(p) if p.exists() else None for p in data],
        "code": code_hash(),
        "spec": asdict(spec),
        "seed": params.seed,
        "train": params.train_for(spec.lm).model_dump(exclude={"checkpoint_minutes", "samples",
                                                               "sample_tokens", "sample_temperature",
                                                               "sample_top_k", "threads"}),
        "eval": params.eval.model_dump(),  # valid scores pick the best epoch
        "speller": params.speller.model_dump() if spec.lm == "hybrid" else None,
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def speller_config(params: Params, base: TrainConfig) -> TrainConfig:
    s = params.speller
    return TrainConfig(
        model=ModelConfig(embed_dim=s.embed_dim, hidden=s.hidden, layers=s.layers, tie_weights=False),
        batching=BatchingConfig(mode="sentences", batch_size=s.batch_size, bptt=SPELLER_BPTT),
        optim=OptimConfig(name="adam", lr=s.lr),
        schedule=ScheduleConfig(kind="constant"),
        epochs=s.epochs,
        max_train_tokens=s.max_train_tokens,
        device=base.device,
        deterministic=base.deterministic,
        checkpoint_minutes=base.checkpoint_minutes,
        threads=base.threads,
        samples=0,
    )


def train_speller(params: Params, spec: RunSpec, tok: HybridTokenizer, train_ids: np.ndarray,
                  base: TrainConfig, h: str, restart_stale: bool, device: torch.device, progress: bool) -> RNNLM:
    """A character RNN over the spellings of the train words outside the vocabulary.
    train_ids: the hybrid tokenizer's train split, spellings included; h: the run's params hash."""
    cfg = speller_config(params, base)
    spellings = tok.spellings(train_ids)
    if not spellings:
        raise UserError(f"corpus {spec.corpus!r}: no train word falls outside the hybrid vocabulary, "
                        "so there is nothing to train the speller on; raise tokenizers.hybrid.min_count "
                        "or lower tokenizers.hybrid.max_size")
    stream = np.concatenate([np.asarray(s) for s in spellings])  # each spelling ends with <eow>
    valid = [np.asarray(s) for s in tok.spellings(load_split_ids(spec.corpus, "hybrid", "valid"))]

    def evaluate_speller(m: RNNLM) -> dict:
        nll = speller_nll(m, valid, tok.eow_id, device)
        return {"nll_nats": float(nll.sum()), "n_tokens": int(sum(map(len, valid)))}

    seed_everything(params.seed)  # the initial weights follow the seed
    speller = RNNLM(len(tok.alphabet), cfg.model, "lstm", 0.0).to(device)
    train(speller, stream, cfg, clip=5.0, seed=params.seed, bos_id=tok.eow_id,  # leaves the best state
          run_dir=paths.model_dir(spec.run) / "speller", params_hash=h, restart_stale=restart_stale,
          evaluate=evaluate_speller, progress=progress, device=device)
    return speller


def make_scorer(model: RNNLM, tok: Tokenizer, params: Params, device: torch.device,
                speller: RNNLM | None = None) -> RNNScorer:
    e = params.eval
    if isinstance(tok, HybridTokenizer):
        return HybridScorer(model, speller, tok, e.batch_size, e.bptt, device)
    return RNNScorer(model, tok, e.batch_size, e.bptt, device)


def train_run(params: Params, spec: RunSpec, callbacks=(), progress: bool = True,
              restart_stale: bool = False) -> tuple[dict, list[dict]]:
    """Train and score one grid member; returns (final metrics, per-epoch records).

    A checkpoint left by other params or data is refused (UserError), unless `restart_stale`:
    then it is deleted and training starts over (what a re-run DVC stage wants)."""
    h = params_hash(params, spec)
    cfg = params.train_for(spec.lm)
    device = pick_device(cfg.device)
    tok = load_tokenizer(paths.tokenizer_file(spec.corpus, spec.lm))
    texts = read_splits(spec.corpus, ("valid", "test"))
    train_ids = load_split_ids(spec.corpus, spec.lm, "train")
    ids = tok.model_ids(train_ids)  # train() applies max_train_tokens
    speller = (train_speller(params, spec, tok, train_ids, cfg, h, restart_stale, device, progress)
               if spec.lm == "hybrid" else None)
    seed_everything(params.seed)  # the initial weights follow the seed
    model = RNNLM(tok.vocab_size, cfg.model, spec.cell, spec.dropout).to(device)

    def evaluate_valid(m: RNNLM) -> dict:
        return evaluate(make_scorer(m, tok, params, device, speller), texts["valid"], params.eval.segment_lines)

    result = train(model, ids, cfg, clip=spec.clip, seed=params.seed, bos_id=tok.bos_id,
                   run_dir=paths.model_dir(spec.run), params_hash=h, restart_stale=restart_stale,
                   evaluate=evaluate_valid, callbacks=callbacks, progress=progress, device=device)

    metrics = {
        **asdict(spec),
        "seed": params.seed,
        "n_params": model.n_params + (speller.n_params if speller is not None else 0),
        "epochs": result.epochs,
        "wall_s": result.wall_s,
        "tokens_per_s": result.tokens_per_s,
        "diverged": result.diverged,
        "diverged_epoch": result.diverged_epoch,
        "stopped_early": result.stopped_early,
        "best_epoch": None,
        "valid": None,
        "test": None,
    }
    if result.best_state is not None:  # None only when the very first epoch diverged
        # train() left the best state in `model`; its valid scores are in that epoch's record
        best = result.records[result.best_epoch - 1]
        metrics["best_epoch"] = result.best_epoch
        metrics["valid"] = {k.removeprefix("valid_"): v for k, v in best.items()
                            if k.startswith("valid_") and k != "valid_loss"}
        scorer = make_scorer(model, tok, params, device, speller)
        metrics["test"] = evaluate(scorer, texts["test"], params.eval.segment_lines)
        torch_save_final(model, speller, paths.model_dir(spec.run) / "model.pt")
        write_samples(model, tok, cfg, params.seed, speller, paths.model_dir(spec.run) / "samples.txt")
    return metrics, result.records


def torch_save_final(model: RNNLM, speller: RNNLM | None, path: Path) -> None:
    with atomic_open(path) as f:
        torch.save({"model": model.state_dict(), "speller": speller.state_dict() if speller else None}, f)


def write_samples(model: RNNLM, tok: Tokenizer, cfg: TrainConfig, seed: int, speller: RNNLM | None,
                  path: Path) -> None:
    samples = [
        generate(model, tok, "", cfg.sample_tokens, cfg.sample_temperature, cfg.sample_top_k, seed + i, speller)
        for i in range(cfg.samples)
    ]
    write_text(path, "".join(f"--- sample {i} (seed {seed + i})\n{s}\n" for i, s in enumerate(samples)))
