"""Stage `prepare@<corpus>`: data/raw/<corpus>/ -> data/text/<corpus>/{train,valid,test}.txt + stats.json.

python -m stages.prepare shakespeare
"""

from __future__ import annotations

import argparse
import logging

from pipeline import paths
from pipeline.config import SPLITS, load_params
from pipeline.corpora.prepare import prepare
from stages._cli import run

log = logging.getLogger("stages.prepare")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", help="a key of params.yaml `corpora`")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    params = load_params()
    params.corpus(args.corpus)  # an unknown corpus is a params error, not a missing directory
    stats = prepare(paths.raw_dir(args.corpus), paths.text_dir(args.corpus), params.prepare)
    for s in SPLITS:
        log.info("%s: %s", paths.split_text(args.corpus, s), stats[s])


if __name__ == "__main__":
    run(main)
