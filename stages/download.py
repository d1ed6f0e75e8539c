"""Stage `download@<corpus>`: fetch a corpus into data/raw/<corpus>/ (see pipeline.corpora).

python -m stages.download shakespeare
"""

from __future__ import annotations

import argparse
import logging

from pipeline import paths
from pipeline.config import load_params
from pipeline.corpora.download import download
from stages._cli import run

log = logging.getLogger("stages.download")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", help="a key of params.yaml `corpora`")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    cfg = load_params().corpus(args.corpus)
    out = paths.raw_dir(args.corpus)
    source = download(args.corpus, cfg, out)
    for f in source["files"]:
        log.info("%s/%s: %d bytes, sha256 %s", out, f["name"], f["bytes"], f["sha256"])


if __name__ == "__main__":
    run(main)
