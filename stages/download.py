"""Stage `download@<corpus>`: fetch a corpus into data/raw/<corpus>/ (see pipeline.corpora).

python -m stages.download shakespeare
"""

from __future__ import annotations

import logging

from pipeline import paths
from pipeline.corpora.download import download
from stages._cli import corpus_stage, run

log = logging.getLogger("stages.download")
PARAMS = ["corpora.{corpus}"]


def main(argv: list[str] | None = None) -> None:
    args, params = corpus_stage(__doc__, argv, PARAMS)
    out = paths.raw_dir(args.corpus)
    source = download(args.corpus, params.corpus(args.corpus), out)
    for f in source["files"]:
        log.info("%s/%s: %d bytes, sha256 %s", out, f["name"], f["bytes"], f["sha256"])


if __name__ == "__main__":
    run(main)
