"""Exact resume after SIGKILL, at the stage level: a train stage killed mid-epoch (the whole
process group, so no handler runs) and run again resumes from its newest checkpoint and ends
with the numbers of a run that was never interrupted.

- through real `dvc repro` in a temporary git + DVC repo (word LM), against a second fresh repo;
- the hybrid's two phases (speller, then word model), through `python -m stages.train` in a
  prepared toy project: killed inside the speller, and killed inside the word model (then the
  finished speller must not train again).

Each scenario runs its processes concurrently (the reference beside the killed run) and a watcher
thread per killed run polls its checkpoint folder, kills, and starts the second run; the tests
assert on what they saw. Every copy of the project holds its own snapshot of pipeline/ and
stages/, so an edit of the checkout while the tests run cannot change a checkpoint's code hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import yaml

from pipeline import paths
from pipeline.io import read_csv, read_json
from tests.helpers import ROOT, dvc_project, ran, repo_params, write_scenes

pytestmark = pytest.mark.slow

WORDS = "thou art the king and i the fool who sings of rome while lords and ladies dance".split()
DEADLINE_S = 180  # for any one process; a run here takes seconds
ENV = {
    **os.environ,
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # dvc, python of this venv
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "DVC_NO_ANALYTICS": "1",
}
ENV.pop("PYTHONPATH", None)  # each project imports its own snapshot of the code (cwd)

# A checkpoint every few batches (18 ms); about 120 batches of 40 tokens per epoch, under a second.
TRAIN = {"checkpoint_minutes": 3e-4, "threads": 1, "samples": 1, "sample_tokens": 10, "max_train_tokens": None}
MODEL = {"embed_dim": 16, "hidden": 16}
BATCHING = {"batch_size": 4, "bptt": 10}


# ----------------------------------------------------------------------------- checkpoints, logs


def cursor(path: Path) -> tuple[int, int]:
    """(epochs completed, batches completed of the next epoch) of ckpt-E-K.pt."""
    epoch, batch = re.fullmatch(r"ckpt-(\d+)-(\d+)\.pt", path.name).groups()
    return int(epoch), int(batch)


def ckpts(folder: Path | None) -> list[Path]:
    """The checkpoints in `folder`, oldest first (none if there is no folder yet)."""
    return sorted(folder.glob("ckpt-*.pt"), key=cursor) if folder is not None else []


NOT_CHECKPOINTS = {".git", ".dvc", "data", "pipeline", "stages", "metrics", "curves", "reports", "__pycache__"}


def ckpt_folders(root: Path) -> dict[str, Path]:
    """The checkpoint folder of each part of the run trained in project `root` ("speller" or
    "model"), wherever paths.RunDir puts them: found by walking the project but its code,
    data, metrics and git/DVC folders (one run per project)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == str(root):
            dirnames[:] = [d for d in dirnames if d not in NOT_CHECKPOINTS]
        if any(re.fullmatch(r"ckpt-\d+-\d+\.pt", f) for f in filenames):
            found["speller" if "speller" in Path(dirpath).relative_to(root).parts else "model"] = Path(dirpath)
    return found


def mid_later_epoch(path: Path) -> bool:
    """Written inside an epoch after the first: resuming it needs the earlier epochs' records
    and the cut epoch's partial sums, carried state and RNGs."""
    epoch, batch = cursor(path)
    return epoch >= 1 and batch > 0


def resumed_from(log: str, cwd: Path) -> list[Path]:
    """Every checkpoint the trainer said it resumed from, in order, as absolute paths."""
    return [(cwd / p).resolve() for p in re.findall(r"resuming from (\S+)", log)]


def shown(output: str, lines: int = 40) -> str:
    """The end of a run's output without its progress bars, for failure messages."""
    kept = [ln for ln in output.splitlines() if ln.strip() and "tok/s" not in ln and "%|" not in ln]
    return "\n".join(kept[-lines:])


def stamps(folder: Path | None) -> dict[str, tuple[int, str]]:
    """Each checkpoint's modification time and content hash: what training would change."""
    return {p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in ckpts(folder)}


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies are dead)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited while we looked
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


# ----------------------------------------------------------------------------- kill and resume


@dataclass
class Cut:
    """Run `argv` in cwd in a new session; as soon as the newest checkpoint of `part` is a
    mid-epoch one of a later epoch, SIGKILL the whole process group (the stage's python
    too, when `argv` is DVC), wait until every member is gone, note the checkpoints, and run
    `argv` again to completion. All of it in a thread: `wait()` returns the second run."""

    argv: list[str]
    cwd: Path
    part: str  # "model" or "speller"
    folders: dict[str, Path] = field(default_factory=dict)  # part -> its checkpoint folder, at the kill
    at_kill: dict[str, list[Path]] = field(default_factory=dict)  # part -> its checkpoints
    stamps_at_kill: dict[str, dict] = field(default_factory=dict)  # part -> stamps() of its folder
    metrics_at_kill: bool | None = None
    second: subprocess.CompletedProcess | None = None
    error: str | None = None

    def __post_init__(self):
        self.first_log = self.cwd.parent / f"{self.cwd.name}-killed.log"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._cut_and_resume()
        except BaseException as e:  # noqa: BLE001 - reported by wait()
            self.error = f"{type(e).__name__}: {e}"

    def _cut_and_resume(self) -> None:
        with open(self.first_log, "w") as log:
            proc = subprocess.Popen(self.argv, cwd=self.cwd, env=ENV, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            deadline = time.monotonic() + DEADLINE_S
            # the newest, not any: a watcher that woke late must not kill just after an epoch's end
            while not ((found := ckpts(ckpt_folders(self.cwd).get(self.part))) and mid_later_epoch(found[-1])):
                if proc.poll() is not None:
                    self.error = (f"the first run ended (exit {proc.returncode}) before a mid-epoch checkpoint "
                                  f"of a later epoch of the {self.part} appeared: {self.log()}")
                    return
                if time.monotonic() > deadline:
                    self.error = f"no mid-epoch checkpoint of a later epoch of the {self.part}: {self.log()}"
                    return
                time.sleep(0.002)
            os.killpg(proc.pid, signal.SIGKILL)
        finally:  # never leave a process behind
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        while group_alive(proc.pid):  # the stage's python, a grandchild under DVC
            time.sleep(0.002)
        self.folders = ckpt_folders(self.cwd)
        for part in ("model", "speller"):
            self.at_kill[part] = ckpts(self.folders.get(part))
            self.stamps_at_kill[part] = stamps(self.folders.get(part))
        self.metrics_at_kill = any((self.cwd / paths.METRICS).glob("*.json"))
        self.second = subprocess.run(self.argv, cwd=self.cwd, env=ENV, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, timeout=DEADLINE_S)

    def log(self) -> str:
        """The killed run's output."""
        return shown(self.first_log.read_text(errors="replace"))

    def wait(self) -> subprocess.CompletedProcess:
        self.thread.join(DEADLINE_S * 3)
        assert not self.thread.is_alive(), "the kill/resume thread hung"
        assert self.error is None, self.error
        assert self.second.returncode == 0, shown(self.second.stdout)
        return self.second


def assert_same_weights(a: Path, b: Path) -> None:
    """model.pt of two runs: {part: state_dict}, bitwise."""
    wa, wb = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))
    assert wa.keys() == wb.keys()
    for part in wa:
        assert wa[part].keys() == wb[part].keys()
        assert all(torch.equal(wa[part][k], wb[part][k]) for k in wa[part]), part


def assert_same_run(run: str, resumed: Path, reference: Path) -> None:
    """Result, metrics and curve files of two runs are byte-identical (the clock's figures live
    in models/<run>/cost.json), and so are the final weights."""
    rd = paths.RunDir(run)
    m = read_json(resumed / rd.result)
    assert m["test"] is not None and not m["diverged"] and m["epochs"] >= 2, m
    for f in (rd.result, rd.metrics, rd.curve):
        assert (resumed / f).read_bytes() == (reference / f).read_bytes(), f
    assert len(read_csv(resumed / rd.curve)) == m["epochs"]
    assert read_json(resumed / rd.file(paths.COST))["wall_s"] > 0
    assert_same_weights(resumed / rd.file(paths.WEIGHTS), reference / rd.file(paths.WEIGHTS))


def snapshot_code(dest: Path) -> None:
    for name in ("pipeline", "stages"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))


# ----------------------------------------------------------------------------- through dvc repro

RUN = "toy-word-lstm-0.0-5"


def dvc_repo(d: Path) -> Path:
    """A git + DVC repo of the real DAG, a toy local corpus and a one-member word grid."""
    d.mkdir()
    write_scenes(d.parent / f"{d.name}-toy.txt", WORDS, n_scenes=80, n_lines=12)
    params = repo_params()
    params["corpora"] = {"toy": {"source": "local", "path": str(d.parent / f"{d.name}-toy.txt")}}
    params["grid"] = {"corpus": ["toy"], "lm": ["word"], "cell": ["lstm"], "dropout": [0.0], "clip": [5], "seed": []}
    params["prepare"]["split"].update(valid=0.1, test=0.1)
    params["train"].update(epochs=2, **TRAIN)
    params["train"]["model"].update(MODEL)
    params["train"]["batching"].update(BATCHING)
    dvc_project(d, params)
    return d


def finish(reference: subprocess.Popen) -> str:
    """The output of an uninterrupted reference run, which must succeed (killed if it hangs)."""
    try:
        out, _ = reference.communicate(timeout=DEADLINE_S)
    finally:
        if reference.poll() is None:
            reference.kill()
            reference.wait()
    assert reference.returncode == 0, shown(out)
    return out


def test_dvc_repro_after_sigkill_resumes_mid_epoch_and_matches_an_uninterrupted_run(tmp_path):
    repro = ["dvc", "repro", f"train@{RUN}"]  # and its upstream stages
    killed, fresh = dvc_repo(tmp_path / "killed"), dvc_repo(tmp_path / "fresh")
    cut = Cut(repro, killed, "model")  # starts at once, in its own thread
    reference = subprocess.Popen(repro, cwd=fresh, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
    finish(reference)
    second = cut.wait()

    at_kill = cut.at_kill["model"]
    assert at_kill and not cut.metrics_at_kill, (at_kill, cut.log())  # cut before the run finished
    newest = at_kill[-1]
    assert mid_later_epoch(newest), (newest.name, cut.log())  # the kill landed inside epoch 2
    assert ran(second.stdout) == {f"train@{RUN}"}, shown(second.stdout)  # upstream is up to date
    # the stage's python resumed from the newest checkpoint: not a restart that happens to agree
    assert resumed_from(second.stdout, killed) == [newest.resolve()], (newest.name, shown(second.stdout))
    assert_same_run(RUN, killed, fresh)


# ----------------------------------------------------------------------------- the hybrid's two phases

HYBRID = "toy-hybrid-lstm-0.5-5"  # dropout: the resumed word model must also restore the RNGs
SPELLER_EPOCHS = 2


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory):
    """Three copies of one prepared toy project: `reference` trains the hybrid uninterrupted,
    `speller` is killed inside the speller's second epoch, `model` inside the word model's
    second epoch; all three start at once. Returns (reference dir, {phase: Cut})."""
    from stages import download, prepare, tokenize

    base = tmp_path_factory.mktemp("hybrid") / "base"
    base.mkdir()
    write_scenes(base / "toy.txt", WORDS, n_scenes=40, n_lines=10)
    params = repo_params()
    params["corpora"] = {"toy": {"source": "local", "path": str(base / "toy.txt")}}
    params["grid"]["corpus"] = ["toy"]
    params["prepare"]["split"].update(valid=0.1, test=0.1)
    params["tokenizers"]["hybrid"].update(max_size=10, min_count=1)  # words past the 10 commonest: spelled
    params["train"].update(epochs=2, **TRAIN)
    params["train"]["model"].update(MODEL)
    params["train"]["batching"].update(BATCHING)
    speller = params["train_overrides"]["hybrid"]["speller"]
    speller["model"].update(hidden=16, embed_dim=8)
    speller["batching"].update(batch_size=8)
    speller.update(epochs=SPELLER_EPOCHS, max_train_tokens=None)
    (base / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        download.main(["toy"])
        prepare.main(["toy"])
        tokenize.main(["toy", "hybrid"])
    snapshot_code(base)

    dirs = {}
    for name in ("reference", "speller", "model"):
        dirs[name] = base.parent / name
        shutil.copytree(base, dirs[name], symlinks=True)
    train = [sys.executable, "-m", "stages.train", "toy", HYBRID, "--lm", "hybrid", "--cell", "lstm",
             "--dropout", "0.5", "--clip", "5", "--seed", "1337"]
    reference = subprocess.Popen(train, cwd=dirs["reference"], env=ENV, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
    cuts = {
        "speller": Cut(train, dirs["speller"], "speller"),
        "model": Cut(train, dirs["model"], "model"),
    }
    out = finish(reference)
    assert "resuming from" not in out  # a fresh copy: the reference never resumed
    return dirs["reference"], cuts


def test_hybrid_killed_in_the_speller_resumes_it_mid_epoch_and_matches(hybrid):
    reference, cuts = hybrid
    cut = cuts["speller"]
    second = cut.wait()
    spelled, modelled = cut.at_kill["speller"], cut.at_kill["model"]
    assert spelled and mid_later_epoch(spelled[-1]), (spelled, cut.log())
    assert modelled == [] and not cut.metrics_at_kill  # the word model had not started
    # one resume, the speller's, from its newest checkpoint; the word model then trained afresh
    assert resumed_from(second.stdout, cut.cwd) == [spelled[-1].resolve()], shown(second.stdout)
    assert_same_run(HYBRID, cut.cwd, reference)


def test_hybrid_killed_in_the_word_model_resumes_it_mid_epoch_without_retraining_the_speller(hybrid):
    reference, cuts = hybrid
    cut = cuts["model"]
    second = cut.wait()
    spelled, modelled = cut.at_kill["speller"], cut.at_kill["model"]
    assert modelled and mid_later_epoch(modelled[-1]), (modelled, cut.log())
    assert not cut.metrics_at_kill
    assert spelled[-1].name == f"ckpt-{SPELLER_EPOCHS}-0.pt"  # the speller had finished
    # the speller resumed from its final checkpoint (nothing left to train), then the word model
    # from its newest, mid-epoch
    assert resumed_from(second.stdout, cut.cwd) == [spelled[-1].resolve(), modelled[-1].resolve()], \
        shown(second.stdout)
    assert stamps(cut.folders["speller"]) == cut.stamps_at_kill["speller"]  # not one speller step more
    assert_same_run(HYBRID, cut.cwd, reference)
