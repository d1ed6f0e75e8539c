"""The RNN LM types behind one interface, so that no caller asks which type a model is.

    lm = build_lm(tok, cfg, eval_cfg, device)        # the one factory: picks by tok.kind
    for part in lm.parts(train_ids, valid_text):     # what the trainer fits, in order
        net = lm.build(part); train(net, part.ids, part.cfg, ..., evaluate=part.evaluate)
    scores = evaluate(lm.scorer(), test_text, ...)   # the common evaluator
    texts = lm.generate("", n, seeds=[..]); lm.state_dict()  # samples and final weights

What differs per type:
- word: closed vocabulary (`open_vocab` False: its `<unk>` swallows mass).
- char: never samples `<unk>` (it stands for no particular character).
- subword: nothing.
- hybrid: two parts, a character speller (trained first, on the spellings of the train words
  outside the vocabulary, every occurrence counted, the corpus' unknown-word marker as the empty
  spelling) and the word model; the scorer charges each `<unk>` its spelling, and samples spell
  out the `<unk>`s they draw (an empty spelling reads as the marker).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch

from pipeline.config import EvalConfig, TrainConfig
from pipeline.errors import UserError
from pipeline.evaluation import Scorer, evaluate
from pipeline.rnn.model import RNNLM, n_params, solve_size
from pipeline.rnn.sampling import sample_ids, spell_unknowns
from pipeline.rnn.scorer import HybridScorer, RNNScorer, speller_nll
from pipeline.tokenizers import Tokenizer
from pipeline.tokenizers.hybrid import HybridTokenizer

MODEL = "model"  # the part a run is about; the hybrid's speller is a second part


@dataclass(frozen=True)
class Part:
    """One network the trainer fits."""

    name: str  # MODEL or "speller": names its checkpoint folder and its state_dict entry
    cfg: TrainConfig  # its model's sizes concrete (solved from a param_budget where one is given)
    vocab_size: int
    ids: np.ndarray  # the 1-D training stream
    newline_id: int  # the input before the first token of a segment
    evaluate: Callable[[RNNLM], dict]  # valid scores of the net ("nll_nats", "n_tokens", ...)


class LanguageModel:
    """One RNN over the tokenizer's ids (subword as it is; char and word adjust two flags)."""

    open_vocab: ClassVar[bool] = True  # every string has a probability when no token is <unk>

    def __init__(self, tok: Tokenizer, cfg: TrainConfig, eval_cfg: EvalConfig, device: torch.device):
        self.tok, self.cfg, self.eval_cfg, self.device = tok, cfg, eval_cfg, device
        self.nets: dict[str, RNNLM] = {}

    def parts(self, train_ids: np.ndarray, valid_text: str) -> list[Part]:
        """The networks to train, in order; the last is MODEL. train_ids: the tokenize stage's.
        A budget too small for the model is the params' error, raised here, before any training."""
        return [self.model_part(train_ids, valid_text)]

    def model_part(self, train_ids: np.ndarray, valid_text: str, spent: int = 0) -> Part:
        """The MODEL part, sized within what is left of a param_budget once `spent` parameters
        (the hybrid's speller) are counted."""
        def valid_scores(net: RNNLM) -> dict:
            return evaluate(self.scorer(net), valid_text, self.eval_cfg.segment_lines)

        budget = self.cfg.model.param_budget
        what = f"{self.tok.kind} model" + (f" once its speller's {spent:,} are counted" if spent else "")
        cfg = sized(self.cfg, self.tok.vocab_size, None if budget is None else budget - spent, what)
        return Part(MODEL, cfg, self.tok.vocab_size, self.tok.model_ids(train_ids), self.tok.newline_id,
                    valid_scores)

    def build(self, part: Part) -> RNNLM:
        """A freshly initialised net for `part` (seed first: the initial weights follow the RNG)."""
        self.nets[part.name] = RNNLM(part.vocab_size, part.cfg.model).to(self.device)
        return self.nets[part.name]

    def scorer(self, net: RNNLM | None = None) -> Scorer:
        """The common evaluator's view of this LM, with `net` as its MODEL part if given."""
        return RNNScorer(net or self.nets[MODEL], self.tok, self.eval_cfg, self.device, self.open_vocab)

    @property
    def never_sampled(self) -> int | None:
        return None

    def expand(self, ids: list[int], temperature: float, gen: torch.Generator) -> list[int]:
        """Sampled MODEL ids -> the tokenizer's stream (the hybrid spells its <unk>s)."""
        return ids

    def generate(self, prompt: str, n: int, temperature: float = 1.0, top_k: int | None = None,
                 seeds: Sequence[int] = (0,)) -> list[str]:
        """One text per seed, drawn as a batch: prompt + `n` sampled tokens, decoded."""
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        context = [self.tok.newline_id] + self.tok.model_ids(self.tok.encode(prompt)).tolist()
        samples = sample_ids(self.nets[MODEL], context, n, temperature, top_k, gens, ban_id=self.never_sampled)
        return [prompt + self.tok.decode(np.asarray(self.expand(ids, temperature, gen), dtype=np.int64))
                for ids, gen in zip(samples, gens)]

    def samples(self, seed: int) -> str:
        """The run's sample file: `cfg.samples` samples, seeds seed, seed + 1, ..."""
        c = self.cfg
        seeds = [seed + i for i in range(c.samples)]
        texts = self.generate("", c.sample_tokens, c.sample_temperature, c.sample_top_k, seeds)
        return "".join(f"--- sample {i} (seed {s})\n{text}\n" for i, (s, text) in enumerate(zip(seeds, texts)))

    def state_dict(self) -> dict[str, dict[str, torch.Tensor]]:
        return {name: net.state_dict() for name, net in self.nets.items()}

    @property
    def n_params(self) -> int:
        return sum(net.n_params for net in self.nets.values())


class WordLM(LanguageModel):
    open_vocab = False  # a closed vocabulary: <unk> stands for every word outside it


class CharLM(LanguageModel):
    @property
    def never_sampled(self) -> int | None:
        return self.tok.unk_id  # stands for no particular character


class HybridLM(LanguageModel):
    tok: HybridTokenizer

    def parts(self, train_ids: np.ndarray, valid_text: str) -> list[Part]:
        tok, cfg = self.tok, self.cfg.speller
        spellings = tok.spellings(train_ids)
        if not spellings:
            raise UserError("no train word falls outside the hybrid vocabulary, so there is nothing to train "
                            "the speller on; raise tokenizers.hybrid.min_count or lower tokenizers.hybrid.max_size")
        stream = np.concatenate([np.asarray(s) for s in spellings])  # each spelling ends with <eow>
        valid = [np.asarray(s) for s in tok.spellings(tok.encode(valid_text))]

        def valid_scores(net: RNNLM) -> dict:
            nll = speller_nll(net, valid, tok.eow_id, self.eval_cfg, self.device)
            return {"nll_nats": float(nll.sum()), "n_tokens": int(sum(map(len, valid)))}

        cfg = sized(cfg, len(tok.alphabet), what="hybrid's speller")
        speller = Part("speller", cfg, len(tok.alphabet), stream, tok.eow_id, valid_scores)
        # a budget covers the whole LM: the word model gets what the speller leaves
        return [speller, self.model_part(train_ids, valid_text, n_params(len(tok.alphabet), cfg.model))]

    def scorer(self, net: RNNLM | None = None) -> Scorer:
        return HybridScorer(net or self.nets[MODEL], self.nets["speller"], self.tok, self.eval_cfg, self.device)

    def expand(self, ids: list[int], temperature: float, gen: torch.Generator) -> list[int]:
        return spell_unknowns(ids, self.tok, self.nets["speller"], temperature, self.cfg.speller.sample_tokens, gen)


def sized(cfg: TrainConfig, vocab_size: int, budget: int | None = None, what: str = "model") -> TrainConfig:
    """`cfg` with its model's sizes solved for this vocabulary (see `model.solve_size`)."""
    return cfg.model_copy(update={"model": solve_size(vocab_size, cfg.model, budget, what)})


LM_CLASSES: dict[str, type[LanguageModel]] = {
    "char": CharLM, "word": WordLM, "hybrid": HybridLM, "subword": LanguageModel,
}


def build_lm(tok: Tokenizer, cfg: TrainConfig, eval_cfg: EvalConfig, device: torch.device) -> LanguageModel:
    """The LM of `tok`'s type (one tokenizer per LM type, of the same name)."""
    return LM_CLASSES[tok.kind](tok, cfg, eval_cfg, device)
