"""Stage `sources@<corpus>`: data/sources/<corpus>/, a symlink to each local file of the corpus,
through which DVC sees the files change (see pipeline.corpora.local).

python -m stages.sources mytext
"""

from __future__ import annotations

import logging

from pipeline import paths
from pipeline.corpora import local
from stages._cli import corpus_stage, run

log = logging.getLogger("stages.sources")
PARAMS = ["corpora.{corpus}"]


def main(argv: list[str] | None = None) -> None:
    args, params = corpus_stage(__doc__, argv, PARAMS)
    out = paths.sources_dir(args.corpus)
    for name, target in local.link(args.corpus, params.corpus(args.corpus), out).items():
        log.info("%s/%s -> %s", out, name, target)


if __name__ == "__main__":
    run(main)
