"""Stage ngram_matched@<corpus>-ngram-<order>: the n-gram baseline estimated on exactly the text
the RNNs train on (the whole lines within `train.max_train_chars` characters of the train text),
beside ngram@'s estimate on the whole split: the report compares each with the RNNs.

    python -m stages.ngram_matched shakespeare 5

Writes models/<run>/, results/<run>.json, metrics/<run>.json, run = <corpus>-ngram-<order>-matched.
"""

from __future__ import annotations

from stages import ngram
from stages._cli import run

PARAMS = [*ngram.PARAMS, "train.max_train_chars"]


def main(argv: list[str] | None = None) -> None:
    ngram.main(argv, __doc__, PARAMS, matched=True)


if __name__ == "__main__":
    run(main)
