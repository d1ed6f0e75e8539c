"""What several test files need: the repo's params, dotted-key edits, a project root, a stage
run in a subprocess, a DVC project in a temp git repo, a toy corpus of blank-line separated scenes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import yaml

ROOT = Path(__file__).resolve().parents[1]


def repo_params(tune: bool = False) -> dict:
    """A fresh copy of the repository's params.yaml; without its tuning targets unless `tune`
    (they name the default corpus, which test projects replace by their own)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if not tune and "tune" in params:
        params["tune"]["targets"] = {}
    return params


def set_key(params: dict, dotted: str, value) -> dict:
    """params with `dotted` (a.b.c) set to value, in place; returns params."""
    *parents, last = dotted.split(".")
    node = params
    for p in parents:
        node = node[p]
    node[last] = value
    return params


def set_param(params_file: Path, dotted: str, value) -> None:
    """Edit one key of a params.yaml file."""
    params = set_key(yaml.safe_load(params_file.read_text()), dotted, value)
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def minimal_project(root: Path, corpora: dict) -> Path:
    """root with a params.yaml of just these corpora and a one-member grid over them."""
    params = {
        "corpora": corpora,
        "grid": {"corpus": list(corpora), "lm": ["word"], "cell": ["lstm"], "dropout": [0.0], "clip": [5], "seed": []},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def run_stage(cwd: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    """`python -m <argv>` in cwd, with this checkout importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-m", *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def lm_of(tok, model, speller=None, batch_size: int = 32, bptt: int = 256):
    """The LM of `tok`'s type (pipeline.rnn.lm's factory) holding these nets, scoring with this
    batching (which must not change a score)."""
    import torch

    from pipeline.config import EvalConfig, TrainConfig
    from pipeline.rnn.lm import MODEL, build_lm

    cfg = TrainConfig(speller=TrainConfig(sample_tokens=40) if speller is not None else None)
    lm = build_lm(tok, cfg, EvalConfig(batch_size=batch_size, bptt=bptt), torch.device("cpu"))
    lm.nets = {MODEL: model, **({"speller": speller} if speller is not None else {})}
    return lm


def dvc_project(root: Path, params: dict, **env: str) -> Callable[..., subprocess.CompletedProcess]:
    """root as a committed git + DVC repo of this checkout's pipeline/, stages/, dvc.yaml and
    .dvcignore with `params`; returns run(*cmd), which runs a command there with this venv's dvc
    and `env`."""
    for name in ("pipeline", "stages"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", root)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / ".gitignore").write_text("__pycache__/\n")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "DVC_NO_ANALYTICS": "1",
        **env,
    }

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)

    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        r = run(*cmd)
        assert r.returncode == 0, r.stderr
    shutil.copy(ROOT / ".dvcignore", root)  # DVC's hash of the code leaves Python's bytecode out
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        r = run(*cmd)
        assert r.returncode == 0, r.stderr
    return run


def ran(output: str) -> set[str]:
    """The stages a `dvc repro` output says it ran."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


def write_scenes(path: Path, words: list[str], n_scenes: int, n_lines: int) -> None:
    """Blank-line separated scenes of n_lines lines of 3..8 words, a small repetitive vocabulary."""
    scenes = ["\n".join(" ".join(words[(b * 5 + i * 3 + j * 7) % len(words)] for j in range(3 + (i + b) % 6))
                        for i in range(n_lines))
              for b in range(n_scenes)]
    path.write_text("\n\n".join(scenes) + "\n", encoding="utf-8")


def toy_corpus_params(root: Path, words: list[str], n_scenes: int, n_lines: int = 10) -> dict:
    """The repository's params over a toy local corpus of scenes written to root/toy.txt (its
    one corpus `toy`, 10% valid and test, a 12-word vocabulary): for a test to adjust, then
    `prepared_project`."""
    write_scenes(root / "toy.txt", words, n_scenes=n_scenes, n_lines=n_lines)
    params = repo_params()
    params["corpora"] = {"toy": {"source": "local", "path": str(root / "toy.txt")}}
    params["grid"]["corpus"] = ["toy"]
    params["prepare"]["split"].update(valid=0.1, test=0.1)
    params["tokenizers"]["word"]["max_size"] = 12
    return params


def prepared_project(root: Path, params: dict, tokenizers: tuple[str, ...]) -> Path:
    """root with `params` as params.yaml, the toy corpus downloaded, prepared and tokenized by
    the real stages (run here, in-process: the caller has chdir'd into root)."""
    from stages import download, prepare, tokenize

    (root / "params.yaml").write_text(yaml.safe_dump(params))
    download.main(["toy"])
    prepare.main(["toy"])
    for kind in tokenizers:
        tokenize.main(["toy", kind])
    return root
