"""The real DAG with real DVC in a temporary git repo, on a small local corpus.

Checks what a user relies on: the pipeline runs end to end, a second `dvc repro` runs
nothing, and a param change re-runs only the stages that read it.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.io import read_json
from tests.helpers import ROOT, repo_params, set_param, write_scenes

WORDS = "the king and queen of rome speak to a fool who sings while lords come and go".split()

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    d = tmp_path_factory.mktemp("dvcrepo")
    for name in ("pipeline", "stages"):
        shutil.copytree(ROOT / name, d / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", d)
    write_scenes(d.parent / f"{d.name}-toy.txt", WORDS, n_scenes=60, n_lines=12)
    params = repo_params()
    params["corpora"] = {"toy": {"source": "local", "path": str(d.parent / f"{d.name}-toy.txt")}}
    params["grid"] = {"corpus": ["toy"], "lm": ["word"], "cell": ["lstm"], "dropout": [0.0], "clip": [5]}
    params["ngram"]["orders"] = [2]
    params["tokenizers"]["subword"]["vocab_size"] = 300
    params["train"].update(epochs=1, max_train_tokens=2000, samples=1, sample_tokens=10)
    params["train"]["model"].update(embed_dim=16, hidden=16)
    params["prepare"]["split"].update(valid=0.1, test=0.1)
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (d / ".gitignore").write_text("__pycache__/\n")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "DVC_NO_ANALYTICS": "1",
    }
    run = lambda *cmd: subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True, check=False)  # noqa: E731
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        r = run(*cmd)
        assert r.returncode == 0, r.stderr
    return d, run


def ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


def test_full_run_then_nothing_then_only_what_changed(repo):
    d, run = repo
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == {
        "download@toy", "prepare@toy", "tokenize@toy-char", "tokenize@toy-word", "tokenize@toy-hybrid",
        "tokenize@toy-subword", "ngram@toy-ngram-2", "train@toy-word-lstm-0.0-5", "report",
    }
    m = read_json(d / "metrics" / "toy-word-lstm-0.0-5.json")
    assert m["test"]["n_chars"] == len((d / "data/text/toy/test.txt").read_text(encoding="utf-8"))
    assert m["test"]["open_vocab"] is False and m["diverged"] is False
    assert (d / "curves" / "toy-word-lstm-0.0-5.csv").read_text().startswith("epoch")
    assert read_json(d / "metrics" / "toy-ngram-2.json")["test"]["n_words"] == m["test"]["n_words"]
    report = (d / "reports" / "README.md").read_text()
    assert "toy-word-lstm-0.0-5" in report and "toy-ngram-2" in report

    r = run("dvc", "repro")
    assert r.returncode == 0 and ran(r.stdout) == set(), r.stdout
    assert "up to date" in run("dvc", "status").stdout

    set_param(d / "params.yaml", "tokenizers.char.min_count", 2)
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == {"tokenize@toy-char"}

    set_param(d / "params.yaml", "tokenizers.word.max_size", 12)
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == {"tokenize@toy-word", "ngram@toy-ngram-2", "train@toy-word-lstm-0.0-5", "report"}


def test_bad_params_fail_the_stage_with_exit_2(repo):
    d, run = repo
    good = (d / "params.yaml").read_text()
    try:
        set_param(d / "params.yaml", "tokenizers.hybrid.min_count", "two")
        r = run("dvc", "repro", "tokenize@toy-hybrid")
        assert r.returncode != 0
        assert "tokenizers.hybrid.min_count" in r.stderr and "Traceback" not in r.stderr
    finally:
        (d / "params.yaml").write_text(good)


def test_report_shows_only_the_runs_params_name(repo):
    """DVC keeps metrics of matrix members dropped from the grid; the report must not show them."""
    d, run = repo
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    set_param(d / "params.yaml", "ngram.orders", [3])
    r = run("dvc", "repro")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == {"ngram@toy-ngram-3", "report"}
    assert (d / "metrics" / "toy-ngram-2.json").exists()  # stale, left by DVC
    report = (d / "reports" / "README.md").read_text()
    assert "toy-ngram-3" in report and "toy-word-lstm-0.0-5" in report and "toy-ngram-2" not in report
