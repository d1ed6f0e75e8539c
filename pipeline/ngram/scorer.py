"""The n-gram model as a `pipeline.evaluation.Scorer`.

Every line is a sentence scored from `<s>`, so segment boundaries (always at line breaks)
change nothing. Tokens are the model's units plus one `</s>` per line: for words that is
exactly the evaluator's `n_words`. The vocabulary is closed: a unit outside it is scored as
`<unk>` and counted in `n_oov`; the corpus' unknown-word marker (`unk_marker`, the tokenizer's:
an ARPA file does not record it) is scored as `<unk>` too, as KenLM scores a literal `<unk>`,
and counted in `n_unk_marker`.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.evaluation import Score
from pipeline.ngram.model import NgramModel
from pipeline.ngram.vocab import NgramVocab, Unit


class NgramScorer:
    open_vocab = False

    def __init__(self, model: NgramModel, unit: Unit, unk_marker: str | None = None):
        self.model, self.vocab = model, NgramVocab(model.symbols, unit, unk_marker)

    def score(self, segments: list[str]) -> Score:
        streams = [self.vocab.encode(s) for s in segments]  # each `<s> .. </s> <s> .. </s>`: whole lines
        stream = np.concatenate([st for st, _ in streams]) if streams else np.zeros(0, np.int64)
        nats = -self.model.logprob10(stream) * math.log(10)  # NaN at <s>, never predicted
        predicted = stream != self.vocab.bos_id
        starts = np.cumsum([0] + [len(st) for st, _ in streams[:-1]])
        per_segment = np.add.reduceat(np.where(predicted, nats, 0.0), starts) if len(stream) else np.zeros(0)
        return Score(
            segment_nll=per_segment,
            n_tokens=int(predicted.sum()),
            n_oov=sum(n for _, n in streams),
            n_unk_marker=self.vocab.n_unk_marker("".join(segments)),
        )
