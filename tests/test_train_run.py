"""One grid member through the real stages, in a temporary project on a toy corpus."""

import logging
import os
import re
import signal
import subprocess
import sys
import time

from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.config import load_params
from pipeline.errors import UserError
from pipeline.io import read_json
from pipeline.reporting import render
from pipeline.rnn.run import KEEP_HASHES, RunSpec, params_hash, train_run
from pipeline.text import first_lines
from stages import tokenize
from stages import train as train_stage
from tests.helpers import ROOT, prepared_project, set_param, toy_corpus_params

WORDS = "thou art the king and i the fool who sings of rome while lords and ladies dance".split()


@pytest.fixture
def project(tmp_path, monkeypatch):
    params = toy_corpus_params(tmp_path, WORDS, n_scenes=40)
    params["tokenizers"]["hybrid"].update(max_size=12, min_count=1)
    params["tokenizers"]["subword"]["vocab_size"] = 300
    params["train"].update(epochs=2, max_train_tokens=1500, samples=1, sample_tokens=12)
    params["train"]["model"].update(embed_dim=16, hidden=16)
    speller = params["train_overrides"]["hybrid"]["speller"]
    speller["model"].update(hidden=16, embed_dim=8)
    speller.update(epochs=1, max_train_tokens=2000)
    monkeypatch.chdir(tmp_path)
    return prepared_project(tmp_path, params, ("word", "hybrid"))


def test_hybrid_run_is_open_vocabulary_and_spells_its_samples(project):
    train_stage.main(["toy", "toy-hybrid-gru-0.0-5", "--lm", "hybrid", "--cell", "gru",
                      "--dropout", "0.0", "--clip", "5", "--seed", "1337"])
    m = read_json("results/toy-hybrid-gru-0.0-5.json")
    assert m["test"]["open_vocab"] is True and m["test"]["n_oov"] == 0
    assert m["valid"]["nll_nats"] > 0 and m["best_epoch"] in (1, 2)
    samples = Path("models/toy-hybrid-gru-0.0-5/samples.txt").read_text()
    assert "<unk>" not in samples and samples.startswith("--- sample 0")
    (ckpts,) = (d for d in Path("checkpoints/toy-hybrid-gru-0.0-5").iterdir() if d.is_dir())  # one params hash
    assert sorted(p.name for p in ckpts.iterdir()) == ["mlflow_run_id", "model", "speller"]
    assert sorted(p.name for p in Path("models/toy-hybrid-gru-0.0-5").iterdir()) == ["config.json", "cost.json",
                                                                                   "model.pt", "samples.txt"]
    # the run's training time is the whole LM's: the speller's and the word model's
    cost = read_json("models/toy-hybrid-gru-0.0-5/cost.json")
    assert cost["speller_wall_s"] > 0 and cost["model_wall_s"] > 0
    assert cost["wall_s"] == pytest.approx(cost["speller_wall_s"] + cost["model_wall_s"])


def test_same_params_and_seed_give_the_same_numbers(project):
    params = load_params()
    a = train_run(params, RunSpec("a", "toy", "word", "lstm", 0.5, 5.0, seed=1337), progress=False).result
    b = train_run(params, RunSpec("b", "toy", "word", "lstm", 0.5, 5.0, seed=1337), progress=False).result
    assert a["test"] == b["test"] and a["valid"] == b["valid"]


def test_divergence_is_a_result_and_the_report_shows_it(project):
    set_param(Path("params.yaml"), "train.optim.lr", 1e9)
    train_stage.main(["toy", "toy-word-rnn_relu-0.0-0", "--lm", "word", "--cell", "rnn_relu",
                      "--dropout", "0.0", "--clip", "0", "--seed", "1337"])
    m = read_json("results/toy-word-rnn_relu-0.0-0.json")
    assert m["diverged"] is True and m["diverged_epoch"] == 1 and m["test"] is None
    assert Path("curves/toy-word-rnn_relu-0.0-0.csv").read_text().startswith("epoch")  # a DVC out, even empty
    assert read_json("metrics/toy-word-rnn_relu-0.0-0.json") == {"n_params": m["n_params"], "diverged": True}
    rows = render(["toy-word-rnn_relu-0.0-0"])
    assert rows[-1]["run"] == "toy-word-rnn_relu-0.0-0"
    assert "diverged (epoch 1)" in Path("reports/README.md").read_text()
    assert Path("reports/figures/test_bpc.png").stat().st_size > 0


def test_other_data_trains_afresh_and_reverting_finds_the_finished_run(project, caplog):
    spec = RunSpec("toy-word-lstm-0.0-5", "toy", "word", "lstm", 0.0, 5.0, seed=1337)
    first = train_run(load_params(), spec, progress=False)
    set_param(Path("params.yaml"), "tokenizers.word.max_size", 10)  # same train params, other data
    tokenize.main(["toy", "word"])
    other = train_run(load_params(), spec, progress=False).result
    assert other["test"]["nll_nats"] != first.result["test"]["nll_nats"]
    set_param(Path("params.yaml"), "tokenizers.word.max_size", 12)
    tokenize.main(["toy", "word"])
    with caplog.at_level(logging.INFO):
        again = train_run(load_params(), spec, progress=False)
    # nothing was trained, the finished run came back: its training time too (it is scored again)
    assert again.result == first.result
    assert (again.cost["wall_s"], again.cost["tokens_per_s"]) == (first.cost["wall_s"], first.cost["tokens_per_s"])
    assert re.search(r"resuming from checkpoints/toy-word-lstm-0.0-5/\w+/model/ckpt-2-0\.pt", caplog.text)
    assert len([d for d in Path("checkpoints/toy-word-lstm-0.0-5").iterdir() if d.is_dir()]) == 2


def test_old_checkpoint_folders_are_pruned(project):
    for seed in range(KEEP_HASHES + 2):
        spec = RunSpec("toy-word-lstm-0.0-5", "toy", "word", "lstm", 0.0, 5.0, seed=seed)
        train_run(load_params(), spec, progress=False)
    kept = [d for d in Path("checkpoints/toy-word-lstm-0.0-5").iterdir() if d.is_dir()]
    assert len(kept) == KEEP_HASHES and params_hash(load_params(), spec) in {p.name for p in kept}


@pytest.mark.parametrize("flag, value, message", [
    ("--dropout", "1.0", r"dropout: \[1\.0\]: each value must be in \[0, 1\)"),
    ("--clip", "-1", r"clip: \[-1\]: each value must be >= 0"),
    ("--cell", "lstmx", r"cell\.0: Input should be 'rnn_tanh'.*'lstmx'"),
])
def test_train_cli_values_get_the_grid_schema(project, flag, value, message):
    argv = {"--lm": "word", "--cell": "lstm", "--dropout": "0.0", "--clip": "5", "--seed": "1"} | {flag: value}
    with pytest.raises(UserError, match=rf"^stage arguments of toy-word-x: {message}"):
        train_stage.main(["toy", "toy-word-x", *(a for kv in argv.items() for a in kv)])
    assert not Path("models/toy-word-x").exists()


def _stage_argv(run: str, entry: tuple[str, ...] = ("stages.train",)) -> list[str]:
    return [sys.executable, "-m", *entry, "toy", run, "--lm", "word", "--cell", "gru", "--dropout", "0.0",
            "--clip", "5", "--seed", "1337"]


# by hand (`python -m stages.train`) and as dvc.yaml runs it, in a child of the fork server
# (`python -m stages train`), whose client passes the signal on; the uncut run is by hand
@pytest.mark.parametrize("signum, entry", [(signal.SIGINT, ("stages.train",)), (signal.SIGTERM, ("stages.train",)),
                                           (signal.SIGINT, ("stages", "train")), (signal.SIGTERM, ("stages", "train"))])
def test_a_signal_stops_training_at_a_checkpoint_in_one_line_and_resumes_exactly(project, signum, entry):
    set_param(Path("params.yaml"), "train", {**load_params().train.model_dump(exclude={"speller"}),
                                             "epochs": 4, "max_train_tokens": None, "checkpoint_minutes": 2e-3})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(_stage_argv("cut", entry), env=env, stderr=subprocess.PIPE, text=True)
    ckpts = Path("checkpoints/cut")
    deadline = time.monotonic() + 60
    while not list(ckpts.glob("*/model/ckpt-1-*.pt")):  # into epoch 2
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else ""
        time.sleep(0.005)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    last = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert "Traceback" not in err and len(last) == 1, err
    kept = re.search(r"the last checkpoint is (\S+); `dvc repro` carries on from there", last[0])
    assert kept and Path(kept.group(1)).is_file() and not Path("metrics/cut.json").exists()

    again = subprocess.run(_stage_argv("cut", entry), env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and f"resuming from {kept.group(1)}" in again.stderr, again.stderr
    whole = subprocess.run(_stage_argv("whole"), env=env, capture_output=True, text=True, timeout=120)
    assert whole.returncode == 0, whole.stderr
    a, b = (read_json(f"results/{r}.json") for r in ("cut", "whole"))
    assert a["test"] == b["test"] and a["valid"] == b["valid"] and a["epochs"] == b["epochs"] == 4


def test_an_out_of_range_token_id_fails_before_any_checkpoint_is_touched(project):
    set_param(Path("params.yaml"), "train.max_train_chars", None)  # train on the tokenize stage's ids
    spec = RunSpec("toy-word-lstm-0.0-5", "toy", "word", "lstm", 0.0, 5.0, seed=1337)
    train_run(load_params(), spec, progress=False)
    before = {p: p.stat().st_mtime_ns for p in Path("checkpoints").rglob("*.pt")}
    ids = np.load("data/tokens/toy/word/train.npy")
    ids[3] = 12  # the toy word vocabulary has 12 ids: 0..11
    np.save("data/tokens/toy/word/train.npy", ids)
    with pytest.raises(UserError, match=r"train\.npy: holds ids from 0 to 12; token files hold 1-D integer ids "
                                        r"in \[0, 12\)"):
        train_run(load_params(), spec, progress=False)
    assert {p: p.stat().st_mtime_ns for p in Path("checkpoints").rglob("*.pt")} == before


def test_a_second_trainer_on_the_same_run_exits_2_naming_the_first(project):
    # a run far longer than the test: the first trainer must still hold the run when the second,
    # a few seconds of imports later, asks for it (it is killed below)
    set_param(Path("params.yaml"), "train.epochs", 100_000)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(_stage_argv("busy"), env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        lock = Path("checkpoints/busy/lock")
        while not (lock.exists() and lock.read_text().strip()):  # the first trainer holds the run
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        second = subprocess.run(_stage_argv("busy"), env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "Traceback" not in second.stderr
        assert f"run busy is in use by process {first.pid}" in second.stderr
    finally:
        first.kill()
        first.wait()
    set_param(Path("params.yaml"), "train.epochs", 1)  # other params: a short run, same run folder
    again = subprocess.run(_stage_argv("busy"), env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr  # the killed holder left no stale lock


def _in_mount_namespace(setup: str, argv: list[str], after: str = "true") -> subprocess.CompletedProcess:
    """Run argv between the shell commands `setup` and `after` in a private mount namespace
    (unshare -rm), with argv's exit code: tmpfs mounts there fail writes for real, as a full or
    read-only disk does."""
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -rm (user and mount namespaces) is not permitted here")
    script = f"{setup} && {{ {' '.join(argv)}; rc=$?; {after}; exit $rc; }}"
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)


def test_a_read_only_output_folder_fails_before_training(project):
    Path("models/ro").mkdir(parents=True)
    r = _in_mount_namespace("mount -t tmpfs -o ro tmpfs models/ro", _stage_argv("ro"))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip() == "error: models/ro: cannot write: Read-only file system (errno EROFS); " \
                               "the previous file, if any, is kept"
    assert not Path("checkpoints/ro").exists()  # no training started


def test_a_full_disk_is_one_clear_error_and_keeps_the_last_good_file(project):
    Path("metrics").mkdir()
    fill = "mount -t tmpfs -o size=8k tmpfs metrics && echo old > metrics/full.json && " \
           "(dd if=/dev/zero of=metrics/filler bs=1k count=64 2>/dev/null; true)"
    r = _in_mount_namespace(fill, _stage_argv("full"), after="cat metrics/full.json; ls -a metrics")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "error: metrics/full.json: cannot write: No space left on device (errno ENOSPC)" in r.stderr
    assert r.stdout.split() == ["old", ".", "..", "filler", "full.json"]  # the old file, no temp file left
    assert Path("models/full/model.pt").is_file()  # the run itself finished; only its metrics could not be kept


def test_lm_types_share_the_data_budget_and_record_their_solved_sizes(project):
    set_param(Path("params.yaml"), "train.max_train_chars", 3000)
    set_param(Path("params.yaml"), "train.model", {"param_budget": 9000, "hidden": None, "embed_dim": None,
                                                   "layers": 1, "tie_weights": True})
    runs = {lm: train_run(load_params(), RunSpec(lm, "toy", lm, "lstm", 0.0, 5.0, seed=3), progress=False).result
            for lm in ("word", "hybrid")}
    text = Path("data/text/toy/train.txt").read_text()
    assert runs["word"]["train_chars"] == runs["hybrid"]["train_chars"] == len(first_lines(text, 3000)) > 2900
    for m in runs.values():
        assert 0.9 * 9000 <= m["n_params"] <= 9000 and m["param_budget"] == 9000 and m["seed"] == 3
        assert m["n_params"] == sum(part["n_params"] for part in m["sizes"].values())
    assert set(runs["hybrid"]["sizes"]) == {"speller", "model"} and runs["hybrid"]["sizes"]["speller"]["hidden"] == 16
