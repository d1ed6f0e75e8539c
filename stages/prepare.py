"""Stage `prepare@<corpus>`: data/raw/<corpus>/ -> data/text/<corpus>/{train,valid,test}.txt + stats.json.

python -m stages.prepare shakespeare
"""

from __future__ import annotations

import logging

from pipeline import paths
from pipeline.config import SPLITS
from pipeline.corpora.prepare import prepare
from stages._cli import corpus_stage, run

log = logging.getLogger("stages.prepare")
PARAMS = ["prepare"]


def main(argv: list[str] | None = None) -> None:
    args, params = corpus_stage(__doc__, argv, PARAMS)
    stats = prepare(paths.raw_dir(args.corpus), paths.text_dir(args.corpus), params.prepare)
    for s in SPLITS:
        log.info("%s: %s", paths.split_text(args.corpus, s), stats[s])


if __name__ == "__main__":
    run(main)
