"""The report: exactly the runs params.yaml names, and the curve file format."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import paths
from pipeline.config import GridConfig
from pipeline.errors import UserError
from pipeline.io import write_json
from pipeline.reporting import expected_runs, render
from pipeline.artifacts import read_curve, write_curve
from stages import report as report_stage
from tests.helpers import ROOT, repo_params



def metrics(run: str, lm: str, bpc: float, **extra) -> dict:
    scores = {"bits_per_char": bpc, "word_ppl": 100.0, "open_vocab": lm != "word"}
    return {"run": run, "lm": lm, "test": scores, "valid": scores, "n_params": 10, **extra}


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_expected_runs_are_dvc_matrix_keys():
    grid = GridConfig(corpus=["c"], lm=["word", "char"], cell=["lstm"], dropout=[0.0, 0.5], clip=[0, 5])
    assert expected_runs(grid, [3, 5]) == [
        "c-ngram-3", "c-ngram-5",
        "c-word-lstm-0.0-0", "c-word-lstm-0.0-5", "c-word-lstm-0.5-0", "c-word-lstm-0.5-5",
        "c-char-lstm-0.0-0", "c-char-lstm-0.0-5", "c-char-lstm-0.5-0", "c-char-lstm-0.5-5",
    ]


def test_stale_metrics_are_not_reported(project):
    write_json(paths.metrics_file("c-ngram-3"), metrics("c-ngram-3", "ngram", 2.5, order=3))
    write_json(paths.metrics_file("c-word-lstm-0.0-5"), metrics("c-word-lstm-0.0-5", "word", 2.0,
                                                                  cell="lstm", dropout=0.0, clip=5))
    write_json(paths.metrics_file("c-word-gru-0.0-5"), metrics("c-word-gru-0.0-5", "word", 1.0))  # stale
    write_curve(paths.curve_file("c-word-lstm-0.0-5"), [{"epoch": 1, "valid_bits_per_char": 2.2}])
    rows = render(["c-ngram-3", "c-word-lstm-0.0-5"])
    assert [m["run"] for m in rows] == ["c-word-lstm-0.0-5", "c-ngram-3"]
    readme = (paths.REPORTS / "README.md").read_text()
    assert "c-word-lstm-0.0-5" in readme and "c-word-gru" not in readme
    assert "c-word-gru" not in (paths.REPORTS / "index.html").read_text()
    assert (paths.REPORTS / "figures" / "valid_curves.png").stat().st_size > 0


def test_missing_expected_metrics_is_a_user_error_naming_the_file(project):
    write_json(paths.metrics_file("c-ngram-3"), metrics("c-ngram-3", "ngram", 2.5, order=3))
    with pytest.raises(UserError, match=r"metrics/c-ngram-5\.json: not found"):
        render(["c-ngram-3", "c-ngram-5"])


def test_report_stage_reports_the_params_grid_as_dvc_names_it(project):
    params = repo_params()
    params["grid"] = {"corpus": ["shakespeare"], "lm": ["word"], "cell": ["lstm"], "dropout": [0.0], "clip": [5]}
    params["ngram"]["orders"] = [3]
    Path("params.yaml").write_text(yaml.safe_dump(params))
    # clip 5 in the YAML is run ...-5 (DVC's key), not ...-5.0
    for run, lm in [("shakespeare-ngram-3", "ngram"), ("shakespeare-word-lstm-0.0-5", "word"),
                    ("shakespeare-ngram-5", "ngram"), ("shakespeare-word-lstm-0.0-0", "word")]:
        write_json(paths.metrics_file(run), metrics(run, lm, 2.0))
    report_stage.main([])
    readme = (paths.REPORTS / "README.md").read_text()
    assert "shakespeare-ngram-3" in readme and "shakespeare-word-lstm-0.0-5" in readme
    assert "shakespeare-ngram-5" not in readme and "shakespeare-word-lstm-0.0-0" not in readme


def test_curve_file_round_trip(tmp_path):
    records = [{"epoch": 1, "lr": 0.5, "valid_bits_per_char": 2.5, "note": "x"},
               {"epoch": 2, "lr": 0.25, "valid_bits_per_char": 2.25, "extra": 7}]
    write_curve(tmp_path / "c.csv", records)
    assert (tmp_path / "c.csv").read_text().splitlines()[0] == "epoch,lr,valid_bits_per_char,extra"
    assert read_curve(tmp_path / "c.csv") == [
        {"epoch": "1", "lr": "0.5", "valid_bits_per_char": "2.5", "extra": ""},
        {"epoch": "2", "lr": "0.25", "valid_bits_per_char": "2.25", "extra": "7"},
    ]


def test_train_stage_does_not_import_matplotlib():
    """The train stage writes curves through the artifact writer; it needs no plotting library."""
    code = "import sys, stages.train; assert 'matplotlib' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
