"""CI for experiments: scripts/ci-pipeline and the workflow that calls it.

Real DVC in temporary git repos and a temporary folder as the shared DVC remote: a project is
reproduced and pushed once (`origin`, the state of main after its CI ran); then fresh clones,
as CI jobs are, check what each command runs. Tests that share the clone `pr` run in file order
(a PR's history: fresh clone, a grid change, its summary, the revert, a preset).
"""

from __future__ import annotations

import http.server
import importlib.machinery
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.helpers import ROOT, dvc_project, ran, repo_params, set_param, write_scenes

SCRIPT = ROOT / "scripts" / "ci-pipeline"
WORKFLOW = ROOT / ".github" / "workflows" / "pipeline.yml"
WORDS = "the king and queen of rome speak to a fool who sings while lords come and go".split()
CHEAP = {"code", "check_params", "sources@toy"}  # uncached outs: re-made in every fresh clone, in a second
MEMBERS = ["train@toy-word-lstm-0.0-5", "train@toy-word-lstm-0.5-5"]
NEW = "train@toy-word-lstm-0.2-5"  # the member a grid change adds
NGRAM = "ngram@toy-ngram-2"
RUNS = ["toy-ngram-2", "toy-word-lstm-0.0-5", "toy-word-lstm-0.5-5"]
CI_VARS = ("DVC_REMOTE_URL", "DVC_REMOTE_ENDPOINT_URL", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_TOKEN",
           "GITHUB_REPOSITORY", "GITHUB_JOB", "GITHUB_API_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def load_script():
    """scripts/ci-pipeline as a module (it has no .py suffix)."""
    loader = importlib.machinery.SourceFileLoader("ci_pipeline", str(SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("ci_pipeline", loader))
    loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- the workflow


def test_workflow_is_valid_pinned_and_calls_only_the_script():
    wf = yaml.safe_load(WORKFLOW.read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as True
    assert "pull_request" in on and "labeled" in on["pull_request"]["types"]
    assert "preset" in on["workflow_dispatch"]["inputs"]
    assert {"DVC_REMOTE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(wf["env"])
    assert all(f"secrets.{k}" in v for k, v in wf["env"].items() if k.startswith(("DVC_", "AWS_")))
    jobs = wf["jobs"]
    for name, job in jobs.items():
        commands = []
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", step["uses"]), step["uses"]
                if step["uses"].startswith("actions/checkout@"):
                    assert step["with"]["fetch-depth"] == 0  # summary diffs against the base branch
                if step["uses"].startswith("actions/setup-python@"):
                    assert str(step["with"]["python-version"]) == "3.11"
            else:
                cmd = step["run"].strip()
                assert "\n" not in cmd and not re.search(r"[;&|`]|\$\(", cmd), cmd
                argv = shlex.split(cmd)
                assert argv == ["make", "install"] or argv[0] == "scripts/ci-pipeline", cmd
                commands.append(argv[1])
        assert commands[:2] == ["install", "setup"] and "push" in commands, (name, commands)
    assert jobs["shards"]["strategy"]["matrix"]["shard"] == [0, 1]
    assert any('--shard "$SHARD/2"' in s.get("run", "") for s in jobs["shards"]["steps"])
    assert jobs["final"]["needs"] in ("shards", ["shards"])
    assert [s["run"].split()[1] for s in jobs["final"]["steps"] if "run" in s][-3:] == ["repro", "push", "summary"]
    assert jobs["gpu"]["runs-on"] == ["self-hosted", "gpu"] and "'gpu'" in jobs["gpu"]["if"]
    assert any(s.get("run", "").startswith("scripts/ci-pipeline preset") for s in jobs["gpu"]["steps"])


# ----------------------------------------------------------------------------- checks before any work


def test_setup_without_a_remote_url_is_one_clear_error(tmp_path):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    env = {k: v for k, v in os.environ.items() if k not in CI_VARS}
    r = subprocess.run([str(SCRIPT), "setup"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: DVC_REMOTE_URL is not set"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = subprocess.run([str(SCRIPT), "repro", "--shard", "2/2"], cwd=tmp_path, env=env, capture_output=True,
                       text=True)
    assert r.returncode == 2 and "--shard: expected I/N with 0 <= I < N (got '2/2')" in r.stderr


def test_setup_takes_the_documented_s3_remote_and_names_a_missing_plugin(tmp_path):
    """S3, the README's example, works as installed (dvc-s3 is pinned); a scheme whose DVC plugin
    is not installed is one error naming the package. `setup` only writes config: no network."""
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    env = {k: v for k, v in os.environ.items() if k not in CI_VARS}
    env.update(DVC_REMOTE_URL="s3://bucket/lm-ablations", DVC_REMOTE_ENDPOINT_URL="http://127.0.0.1:9",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")  # this venv's python and dvc
    r = subprocess.run([str(SCRIPT), "setup"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    config = (tmp_path / ".dvc" / "config.local").read_text()
    assert "url = s3://bucket/lm-ablations" in config and "endpointurl = http://127.0.0.1:9" in config
    env.update(DVC_REMOTE_URL="gdrive://folder-id")
    r = subprocess.run([str(SCRIPT), "setup"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "DVC's dvc-gdrive plugin is not installed" in r.stderr, r.stderr


def test_shards_take_every_nth_member_in_name_order():
    ci = load_script()
    members = [f"train@c-word-lstm-{d}-5" for d in ("0.5", "0.0", "0.2")]
    shares = [ci.shard_members(members, i, 2) for i in range(2)]
    assert shares == [["train@c-word-lstm-0.0-5", "train@c-word-lstm-0.5-5"], ["train@c-word-lstm-0.2-5"]]
    assert ci.shard_members(members, 3, 4) == []


class GitHubStub(http.server.BaseHTTPRequestHandler):
    """The GitHub REST API's issue-comment endpoints, recording what it is sent."""

    requests: list[dict] = []
    existing: list[dict] = []

    def _answer(self, payload) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        req = {"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": json.loads(self.rfile.read(n)) if n else None}
        self.requests.append(req)
        return req

    def do_GET(self):
        self._record()
        self._answer(self.existing)

    def do_POST(self):
        self._answer({"id": 1, "html_url": "http://127.0.0.1/c/1", **self._record()["body"]})

    do_PATCH = do_POST

    def log_message(self, *args):
        pass


@pytest.fixture
def github():
    GitHubStub.requests, GitHubStub.existing = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), GitHubStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_address[1]}", stub=GitHubStub)
    server.shutdown()
    server.server_close()


def test_pr_comment_is_created_then_updated(github, monkeypatch):
    monkeypatch.setenv("GITHUB_JOB", "final")
    ci = load_script()
    body = ci.comment_marker() + "\n\nsummary"
    assert ci.post_comment(github.url + "/", "o/r", 7, "t0ken", body) == "http://127.0.0.1/c/1"
    get, post = github.stub.requests
    assert (get["method"], get["path"]) == ("GET", "/repos/o/r/issues/7/comments?per_page=100&page=1")
    assert (post["method"], post["path"], post["body"]) == ("POST", "/repos/o/r/issues/7/comments", {"body": body})
    for req in (get, post):
        assert req["headers"]["authorization"] == "Bearer t0ken"
        assert req["headers"]["accept"] == "application/vnd.github+json"
        assert req["headers"]["x-github-api-version"] == "2022-11-28"

    github.stub.requests.clear()  # a later run finds its comment (the gpu job's is another one)
    github.stub.existing = [{"id": 5, "body": "<!-- ci-pipeline summary: gpu -->"}, {"id": 42, "body": body}]
    ci.post_comment(github.url, "o/r", 7, "t0ken", body + " v2")
    assert [(r["method"], r["path"]) for r in github.stub.requests] == [
        ("GET", "/repos/o/r/issues/7/comments?per_page=100&page=1"), ("PATCH", "/repos/o/r/issues/comments/42")]
    assert github.stub.requests[1]["body"] == {"body": body + " v2"}


# ----------------------------------------------------------------------------- real DVC


def environment(base: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CI_VARS}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # this venv's python3, dvc
        "MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow.db'}",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
        **extra,
    })
    return env


def ci(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """scripts/ci-pipeline <args> in repo (its own copy, as CI runs it), as a CI step would."""
    return subprocess.run([str(repo / "scripts" / "ci-pipeline"), *args], cwd=repo, capture_output=True, text=True,
                          env=environment(repo.parent, **env), timeout=600)


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    return r


def git(repo: Path, *args: str) -> str:
    r = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=environment(repo.parent))
    assert r.returncode == 0, r.stderr
    return r.stdout


def clone(origin, name: str, remote: Path, rev: str | None = None) -> Path:
    """A CI job's checkout: a fresh clone (no DVC cache), `setup` against remote."""
    dest = origin.base / name
    git(origin.base, "clone", "-q", str(origin.repo), str(dest))
    if rev:
        git(dest, "checkout", "-q", rev)
    ok(ci(dest, "setup", DVC_REMOTE_URL=str(remote)))
    return dest


def scores(repo: Path, run: str) -> dict:
    """A run's test and valid scores (from its result file)."""
    m = json.loads((repo / "results" / f"{run}.json").read_text())
    return {"test": m["test"], "valid": m["valid"]}


def timeless_tables(report: str) -> list[str]:
    """The report's markdown tables but those with a timing column (wall time, tokens/s)."""
    tables, current = [], []
    for line in report.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            if not re.search(r"wall|/s\b|time", current[0], re.I):
                tables.append("\n".join(current))
            current = []
    return tables


def remote_object(remote: Path, md5: str) -> Path:
    return remote / "files" / "md5" / md5[:2] / md5[2:]


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """main after its CI ran: a tiny grid reproduced with `ci-pipeline repro`, pushed to the shared
    remote, dvc.lock and reports/ committed. Also the commit before (tag `nolock`, a first PR) and
    an empty remote for the shard test."""
    base = tmp_path_factory.mktemp("ci")
    repo = base / "origin"
    repo.mkdir()
    write_scenes(base / "toy.txt", WORDS, n_scenes=60, n_lines=12)
    params = repo_params()
    params["corpora"] = {"toy": {"source": "local", "path": str(base / "toy.txt")}}
    params["grid"] = {"corpus": ["toy"], "lm": ["word"], "cell": ["lstm"], "dropout": [0.0, 0.5], "clip": [5], "seed": []}
    params["ngram"]["orders"] = [2]
    params["tokenizers"]["subword"]["vocab_size"] = 300
    params["train"].update(epochs=1, max_train_tokens=2000, samples=1, sample_tokens=10)
    params["train"]["model"].update(embed_dim=16, hidden=16)
    params["prepare"]["split"].update(valid=0.1, test=0.1)
    if "tune" in params:  # no Optuna studies here
        params["tune"]["targets"] = {}
    # MLflow is a side channel (no stage lists `tracking`, tests/test_tracking.py covers it); its side
    # process and store creation triple the time of this tiny repro (benchmarks/bench_pipeline.py).
    params["tracking"]["enabled"] = False
    dvc_project(repo, params, MLFLOW_TRACKING_URI=f"sqlite:///{base / 'mlflow.db'}")
    shutil.copytree(ROOT / "scripts", repo / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "CI")
    git(repo, "tag", "nolock")
    remote = base / "remote"
    ok(ci(repo, "setup", DVC_REMOTE_URL=str(remote)))
    first = ok(ci(repo, "repro"))
    assert {NGRAM, *MEMBERS, "report"} <= ran(first.stdout)
    ok(ci(repo, "push"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "dvc.lock")
    (base / "remote-shards").mkdir()
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return SimpleNamespace(base=base, repo=repo, remote=remote, lock=lock,
                           report=(repo / "reports" / "README.md").read_text(),
                           metrics={r: (repo / "metrics" / f"{r}.json").read_bytes() for r in RUNS})


@pytest.fixture(scope="module")
def pr(origin):
    """A fresh clone of main: the checkout of a PR's CI job."""
    return clone(origin, "pr", origin.remote)


@pytest.mark.slow
def test_fresh_clone_pulls_everything_and_runs_only_the_cheap_stages(origin, pr):
    r = ok(ci(pr, "repro"))
    assert ran(r.stdout) <= CHEAP, r.stdout  # their outs are cache: false, re-made in a second
    assert "remote lacks" not in r.stdout
    assert "unchanged, outputs from the remote (11): download@toy" in r.stdout
    for run in RUNS:
        assert (pr / "metrics" / f"{run}.json").read_bytes() == origin.metrics[run]
        assert (pr / "models" / run).is_dir()
    assert not git(pr, "status", "--porcelain")  # dvc.lock and reports/ as committed


@pytest.mark.slow
def test_a_grid_change_reruns_only_what_depends_on_it(origin, pr, tmp_path):
    set_param(pr / "params.yaml", "grid.dropout", [0.0, 0.5, 0.2])
    page = tmp_path / "summary.md"
    r = ok(ci(pr, "repro", GITHUB_STEP_SUMMARY=str(page)))
    assert ran(r.stdout) == {"check_params", NEW, "report"}, r.stdout
    assert "re-run because their outputs were missing (0)" in r.stdout
    line = next(x for x in r.stdout.splitlines() if x.startswith("ci-pipeline: unchanged"))
    assert all(m in line for m in [*MEMBERS, NGRAM])
    assert page.read_text().startswith("### repro (all stages)\n") and "- ran (3): " in page.read_text()
    for run in RUNS:
        assert (pr / "metrics" / f"{run}.json").read_bytes() == origin.metrics[run]
    assert "toy-word-lstm-0.2-5" in (pr / "reports" / "README.md").read_text()


@pytest.mark.slow
def test_summary_names_the_changed_runs_and_comments_on_the_pr(origin, pr, github):
    r = ok(ci(pr, "summary", "--base", "HEAD", "--pr", "7", "--api-url", github.url, GITHUB_TOKEN="t0ken",
              GITHUB_REPOSITORY="o/r", GITHUB_JOB="final"))
    text, _ = r.stdout.split("ci-pipeline: summary commented on PR #7")
    params = text.split("### Params changed")[1].split("###")[0]
    assert "grid.dropout" in params and "[0.0, 0.5, 0.2]" in params
    metrics = text.split("### Metrics changed")[1].split("### Report")[0]
    assert "Runs: `toy-word-lstm-0.2-5`" in metrics  # the one changed run, the others untouched
    assert "metrics/toy-word-lstm-0.2-5.json" in metrics and "toy-word-lstm-0.0-5" not in metrics
    assert "| `toy-word-lstm-0.2-5` | - → " in metrics  # its scores: new
    report = (pr / "reports" / "README.md").read_text().split("\n", 1)[1]
    assert next(line for line in report.splitlines() if line.startswith("|")) in text
    get, post = github.stub.requests
    assert (get["method"], post["method"], post["path"]) == ("GET", "POST", "/repos/o/r/issues/7/comments")
    assert post["body"]["body"] == text and text.startswith("<!-- ci-pipeline summary: final -->")
    assert post["headers"]["authorization"] == "Bearer t0ken"


@pytest.mark.slow
def test_reverting_restores_the_old_outputs_without_training(origin, pr):
    git(pr, "checkout", "params.yaml")
    r = ok(ci(pr, "repro"))
    assert ran(r.stdout) <= {"check_params", "report"}, r.stdout
    for run in RUNS:
        assert (pr / "metrics" / f"{run}.json").read_bytes() == origin.metrics[run]
    assert (pr / "reports" / "README.md").read_text() == origin.report


@pytest.mark.slow
def test_a_preset_is_one_dvc_exp_run(pr):
    """A GPU preset's flags go to `dvc exp run` (a toy preset here: one side-channel key, so only
    the params check re-runs)."""
    (pr / "presets").mkdir()
    shutil.copy(ROOT / "presets" / "flags.py", pr / "presets")
    (pr / "presets" / "toy.yaml").write_text("tracking.timeout_s: 5.0\n")
    r = ok(ci(pr, "preset", "toy"))
    assert "$ dvc exp run --pull --allow-missing -S tracking.timeout_s=5.0" in r.stdout
    assert ran(r.stdout) == {"check_params"}, r.stdout
    assert yaml.safe_load((pr / "params.yaml").read_text())["tracking"]["timeout_s"] == 5.0
    r = ci(pr, "preset", "nosuch")
    assert r.returncode == 2 and r.stderr.startswith("error: unknown preset 'nosuch'"), r.stderr


@pytest.mark.slow
def test_outputs_the_remote_lacks_are_rerun_not_skipped(origin):
    lacking = origin.base / "remote-lacking"
    shutil.copytree(origin.remote, lacking)
    for out in origin.lock["stages"][NGRAM]["outs"]:
        remote_object(lacking, out["md5"]).unlink()
    repo = clone(origin, "lacking", lacking)
    r = ok(ci(repo, "repro"))
    assert r.stdout.count(f"remote lacks outputs of {NGRAM}: re-running it") == 1, r.stdout
    assert NGRAM in ran(r.stdout) and not set(MEMBERS) & ran(r.stdout)
    assert scores(repo, "toy-ngram-2") == scores(origin.repo, "toy-ngram-2")
    assert timeless_tables((repo / "reports" / "README.md").read_text()) == timeless_tables(origin.report)
    ok(ci(repo, "push"))  # the remote has them again
    outs = yaml.safe_load((repo / "dvc.lock").read_text())["stages"][NGRAM]["outs"]
    assert all(remote_object(lacking, out["md5"]).exists() for out in outs)


@pytest.mark.slow
def test_shards_then_the_final_job_give_the_unsharded_results(origin):
    """The first CI run of a project (no dvc.lock), sharded: each shard trains its member and the
    upstream, the final job trains nothing and reports what an unsharded run reports."""
    remote = origin.base / "remote-shards"
    for i, member in enumerate(MEMBERS):  # sorted names: shard 0 = dropout 0.0, shard 1 = 0.5
        repo = clone(origin, f"shard{i}", remote, rev="nolock")
        r = ok(ci(repo, "repro", "--shard", f"{i}/2"))
        assert {s for s in ran(r.stdout) if s.startswith(("train@", "ngram@", "report"))} == {member}, r.stdout
        if i == 1:  # the data stages came from shard 0's run-cache
            assert "Stage 'tokenize@toy-word' is cached" in r.stdout and "tokenize@toy-word" not in ran(r.stdout)
        ok(ci(repo, "push"))
    repo = clone(origin, "final", remote, rev="nolock")
    r = ok(ci(repo, "repro"))
    assert not {s for s in ran(r.stdout) if s.startswith("train@")}, r.stdout
    assert all(f"Stage '{m}' is cached - skipping run" in r.stdout for m in MEMBERS)
    assert {NGRAM, "report"} <= ran(r.stdout)
    for run in RUNS:
        assert scores(repo, run) == scores(origin.repo, run), run
    report = (repo / "reports" / "README.md").read_text()
    assert timeless_tables(report) == timeless_tables(origin.report) and len(timeless_tables(report)) >= 3
