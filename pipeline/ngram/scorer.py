"""The n-gram model as a `pipeline.evaluation.Scorer`.

Every line is a sentence scored from `<s>`, so segment boundaries (always at line breaks)
change nothing. Tokens are the model's units plus one `</s>` per line: for words that is
exactly the evaluator's `n_words`. The vocabulary is closed: a unit outside it is scored as
`<unk>` and counted in `n_oov`.
"""

from __future__ import annotations

import math

from pipeline.evaluation import Score
from pipeline.ngram.model import NgramModel
from pipeline.ngram.vocab import NgramVocab, Unit


class NgramScorer:
    open_vocab = False

    def __init__(self, model: NgramModel, unit: Unit):
        self.model, self.vocab = model, NgramVocab(model.symbols, unit)

    def score(self, segments: list[str]) -> Score:
        stream, n_oov = self.vocab.encode("".join(segments))  # segments are whole lines
        lp = self.model.logprob10(stream)
        predicted = stream != self.vocab.bos_id
        return Score(
            nll_nats=float(-lp[predicted].sum() * math.log(10)),
            n_tokens=int(predicted.sum()),
            n_oov=n_oov,
        )
