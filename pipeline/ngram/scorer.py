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

from pipeline.evaluation import Score
from pipeline.ngram.model import NgramModel
from pipeline.ngram.vocab import NgramVocab, Unit


class NgramScorer:
    open_vocab = False

    def __init__(self, model: NgramModel, unit: Unit, unk_marker: str | None = None):
        self.model, self.vocab = model, NgramVocab(model.symbols, unit, unk_marker)

    def score(self, segments: list[str]) -> Score:
        text = "".join(segments)  # segments are whole lines
        stream, n_oov = self.vocab.encode(text)
        lp = self.model.logprob10(stream)
        predicted = stream != self.vocab.bos_id
        return Score(
            nll_nats=float(-lp[predicted].sum() * math.log(10)),
            n_tokens=int(predicted.sum()),
            n_oov=n_oov,
            n_unk_marker=self.vocab.n_unk_marker(text),
        )
