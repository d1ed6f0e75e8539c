"""GPU presets: each one, applied to params.yaml, passes the schema; flags round-trip."""

import subprocess
import sys

import pytest
import yaml

from pipeline.config import parse_params
from tests.helpers import ROOT, repo_params

sys.path.insert(0, str(ROOT / "presets"))
import flags  # noqa: E402

PRESETS = sorted(p.stem for p in (ROOT / "presets").glob("*.yaml"))


@pytest.mark.parametrize("name", PRESETS)
def test_preset_is_valid_and_flags_rebuild_it(name):
    preset = flags.load(name)
    params = flags.apply(repo_params(), preset)
    p = parse_params(params)
    assert p.grid.lm == ["word"] and p.grid.corpus == ["ptb"]
    assert p.prepare.mode in ("auto", "verbatim")  # PTB's own splits, as published
    cfg = p.train_for("word")
    # the loss-scaling rule: lr x bptt, clip / bptt (Zaremba's lr 1, clip 5 or 10)
    assert cfg.optim.lr == pytest.approx(cfg.batching.bptt)
    assert p.grid.clip[0] * cfg.batching.bptt == pytest.approx(10 if name == "zaremba-large" else 5, rel=1e-5)
    argv = flags.flags(preset)
    rebuilt = {}
    for key_value in argv[1::2]:
        key, value = key_value.split("=", 1)
        rebuilt[key] = yaml.safe_load(value)
    assert flags.apply(repo_params(), rebuilt) == params


def test_unknown_preset_exits_2():
    r = subprocess.run([sys.executable, str(ROOT / "presets/flags.py"), "zaremba-huge"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown preset 'zaremba-huge'" in r.stderr


def test_apply_merges_a_partial_section_like_the_flags_do():
    params = repo_params()
    applied = flags.apply(repo_params(), {"train.model": {"hidden": 5}})
    assert applied["train"]["model"] == {**params["train"]["model"], "hidden": 5}  # siblings kept
    assert flags.flags({"train.model": {"hidden": 5}}) == ["-S", "train.model.hidden=5"]
