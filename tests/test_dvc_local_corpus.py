"""Local corpora under real DVC (a temp git repo): editing a local file re-runs that corpus'
sources@ and download@ stages and what reads a changed raw directory; an unchanged file, or
another corpus, re-runs nothing. Paths use `~`, set to a temp HOME."""

import json

import pytest

from pipeline.config import SPLITS
from tests.helpers import dvc_project, ran, repo_params, write_scenes

pytestmark = pytest.mark.slow

CORPUS_STAGES = ("sources", "download", "prepare")
WIKI = " = Robert Boulter = \n \n Robert Boulter is an English film , television and theatre actor . \n"


def changed(run) -> set[str]:
    """The corpus stages `dvc status` says are out of date (the grid's later stages never ran)."""
    r = run("dvc", "status", "--json")
    assert r.returncode == 0, r.stderr
    return {stage for stage in json.loads(r.stdout) if stage.split("@")[0] in CORPUS_STAGES}


def test_editing_a_local_file_reruns_its_download_and_nothing_else(tmp_path):
    home = tmp_path / "home"
    (home / "toy").mkdir(parents=True)
    for s in SPLITS:
        (home / "toy" / f"{s}.txt").write_text(WIKI, encoding="utf-8")
    write_scenes(home / "other.txt", "a fool sings while lords come and go".split(), n_scenes=60, n_lines=3)
    params = repo_params()
    params["corpora"] = {
        "toy": {"source": "local", "splits": {s: f"~/toy/{s}.txt" for s in SPLITS}},
        "other": {"source": "local", "path": "~/other.txt"},
    }
    params["grid"]["corpus"] = ["toy", "other"]
    repo = tmp_path / "repo"
    repo.mkdir()
    run = dvc_project(repo, params, HOME=str(home))
    targets = ("prepare@toy", "prepare@other")

    r = run("dvc", "repro", *targets)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == {"code", "check_params"} | {f"{stage}@{c}" for stage in CORPUS_STAGES for c in ("toy", "other")}
    assert changed(run) == set()

    valid = home / "toy" / "valid.txt"
    valid.write_text(WIKI.replace("film", "play"), encoding="utf-8")  # same size: DVC compares content
    assert changed(run) == {"sources@toy", "download@toy"}
    r = run("dvc", "repro", *targets)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == {"sources@toy", "download@toy", "prepare@toy"}
    assert (repo / "data" / "text" / "toy" / "valid.txt").read_text(encoding="utf-8") == valid.read_text()

    valid.write_text(valid.read_text())  # rewritten with the same bytes
    r = run("dvc", "repro", *targets)
    assert r.returncode == 0 and ran(r.stdout) == set(), r.stdout + r.stderr
