"""Where a `dvc repro` of a tiny grid spends its time: per stage, against the runs' own work.

    python -m benchmarks.bench_pipeline [--tracking on|off|both] [--rounds 3]

Builds a temporary git + DVC project of this checkout's pipeline on a toy local corpus, with a
tiny grid (word LSTM, dropout 0.0 and 0.5, clip 5, a 2-gram baseline; a train budget of 2,000
tokens, two batches), and measures:

1. a full `dvc repro`, each stage's wall time taken from the moments DVC prints its
   "Running stage" lines (so a stage's time includes DVC's own work around it: hashing deps and
   outs, the run-cache, dvc.lock), next to the same stage command run alone outside DVC (the
   stage process: a child of the warm fork server) and the run's own `wall_s` (a train run's
   training loop; an n-gram's `estimate_s` and `score_s`) from its cost file;
2. fixed costs: an interpreter start, the imports of torch, mlflow and one stage module, the DVC
   CLI, `dvc status` and a no-op `dvc repro` of the finished project, a train stage of two
   batches run without the fork server (its own process importing everything), and with MLflow
   tracking on and off (its side process).

Prints markdown tables with ratios. Measurement only: nothing here changes the pipeline.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import paths  # noqa: E402
from pipeline.forkserver import SWITCH  # noqa: E402
from pipeline.io import read_json  # noqa: E402
from tests.helpers import dvc_project, repo_params, write_scenes  # noqa: E402

WORDS = "the king and queen of rome speak to a fool who sings while lords come and go".split()
RUNNING = "Running stage '"


def tiny_params(corpus: Path, tracking: bool) -> dict:
    params = repo_params()
    params["corpora"] = {"toy": {"source": "local", "path": str(corpus)}}
    params["grid"].update(corpus=["toy"], lm=["word"], cell=["lstm"], dropout=[0.0, 0.5], clip=[5])
    params["ngram"]["orders"] = [2]
    params["tokenizers"]["subword"]["vocab_size"] = 300
    params["train"].update(epochs=1, max_train_tokens=2000, samples=1, sample_tokens=10)
    params["train"]["model"].update(embed_dim=16, hidden=16)
    params["prepare"]["split"].update(valid=0.1, test=0.1)
    params["tracking"]["enabled"] = tracking
    if "tune" in params:
        params["tune"]["targets"] = {}
    return params


def timed_repro(env: dict, cwd: Path, *args: str) -> tuple[float, list[tuple[str, float]]]:
    """`dvc repro args` with the moment each "Running stage" line arrives; returns the total wall
    time and [(stage, seconds until the next stage started or DVC exited)], plus a first entry
    ("(DVC start, graph)", seconds before the first stage)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(["dvc", "repro", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    marks = [("(DVC start, graph)", 0.0)]
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(RUNNING):
            marks.append((line[len(RUNNING):line.index("'", len(RUNNING))], time.perf_counter() - t0))
    if proc.wait() != 0:
        sys.exit("dvc repro failed:\n" + "".join(lines[-30:]))
    total = time.perf_counter() - t0
    ends = [t for _, t in marks[1:]] + [total]
    return total, [(name, end - start) for (name, start), end in zip(marks, ends)]


def seconds(cmd: list[str], env: dict, cwd: Path, rounds: int = 1) -> float:
    """Median wall time of a command."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


OWN_WORK = ("train", "train_seed", "ngram", "ngram_matched")  # the stage kinds whose runs' work is counted


def run_dirs(project: Path) -> dict[str, Path]:
    """The run folder (models/<run>) of every stage that counts its own work, as dvc.lock names
    the stage's outs."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    return {name: project / out["path"] for name, entry in lock.items() if name.partition("@")[0] in OWN_WORK
            for out in entry["outs"] if out["path"].startswith("models/")}


def own_seconds(run_dir: Path | None) -> float | None:
    """The run's own time from its cost file: a train run's wall_s (training, every part's, and
    valid scoring each epoch) and test_s (its final test scoring); an n-gram's estimate_s and
    score_s (its valid and test scoring). None for a stage that is no run."""
    if run_dir is None:
        return None
    m = read_json(run_dir / paths.COST)
    if "wall_s" in m:
        return m["wall_s"] + m.get("test_s", 0.0)
    return m.get("estimate_s", 0.0) + m.get("score_s", 0.0)


def measure(base: Path, tracking: bool, rounds: int) -> dict:
    project = base / f"tracking-{'on' if tracking else 'off'}"
    project.mkdir()
    corpus = base / "toy.txt"
    if not corpus.exists():
        write_scenes(corpus, WORDS, n_scenes=60, n_lines=12)
    dvc_project(project, tiny_params(corpus, tracking))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONUNBUFFERED": "1", "DVC_NO_ANALYTICS": "1",
           "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    subprocess.run(["dvc", "config", "--local", "core.analytics", "false"], cwd=project, env=env, check=True)

    total, stages = timed_repro(env, project)
    py = [sys.executable]
    fixed = {  # the finished project first: the stage commands below re-make outputs
        "dvc --version": seconds(["dvc", "--version"], env, project, rounds),
        "dvc status (up to date)": seconds(["dvc", "status"], env, project, rounds),
        "dvc repro (no-op)": seconds(["dvc", "repro"], env, project, rounds),
        "python -c pass": seconds(py + ["-c", "pass"], env, project, rounds),
        "import torch": seconds(py + ["-c", "import torch"], env, project, rounds),
        "import mlflow": seconds(py + ["-c", "import mlflow"], env, project, rounds),
        "import stages.train (all it imports)": seconds(py + ["-c", "import stages.train"], env, project, rounds),
    }
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    dirs = run_dirs(project)
    owns = {name: own_seconds(dirs.get(name)) for name, _ in stages}  # before the commands re-make them
    rows = []
    for name, wall in stages:
        alone = None
        if name in lock:
            run_dir = project / "checkpoints" / name.split("@", 1)[-1]
            shutil.rmtree(run_dir, ignore_errors=True)  # train from scratch, not resume a finished run
            alone = seconds(shlex.split(lock[name]["cmd"]), env, project)
        rows.append((name, wall, alone, owns[name]))
    member = next(n for n in lock if n.startswith("train@"))
    # the same stage as its own process, importing everything itself (as before the fork server)
    shutil.rmtree(project / "checkpoints" / member.split("@", 1)[1], ignore_errors=True)
    fixed[f"train stage alone, without the fork server ({SWITCH}=0)"] = seconds(
        shlex.split(lock[member]["cmd"]), {**env, SWITCH: "0"}, project)
    return {"tracking": tracking, "total": total, "rows": rows, "fixed": fixed, "member": member,
            "train_alone": next(r[2] for r in rows if r[0] == member),
            "train_own": next(r[3] for r in rows if r[0] == member)}


def fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def report(m: dict) -> None:
    label = f"tracking {'on' if m['tracking'] else 'off'}"
    print(f"\n### `dvc repro` of the tiny grid, {label}: {m['total']:.1f} s\n")
    print("| stage | wall in dvc repro (s) | command alone (s) | DVC's share | run's own wall_s (s) | own / wall |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, wall, alone, own in m["rows"]:
        share = f"{(wall - alone) / wall:.0%}" if alone else ""
        ratio = f"{own / wall:.1%}" if own is not None else ""
        print(f"| {name} | {wall:.2f} | {fmt(alone)} | {share} | {fmt(own)} | {ratio} |")
    stage_sum = sum(w for n, w, _, _ in m["rows"] if not n.startswith("("))
    alone_sum = sum(a for _, _, a, _ in m["rows"] if a)
    own_sum = sum(o for _, _, _, o in m["rows"] if o is not None)
    print(f"| **all stages** | {stage_sum:.2f} | {alone_sum:.2f} | {(stage_sum - alone_sum) / stage_sum:.0%} | "
          f"{own_sum:.2f} | {own_sum / m['total']:.1%} of the repro |")
    print(f"\n### Fixed costs, {label}\n")
    print("| what | s | / train stage alone |")
    print("| --- | ---: | ---: |")
    for what, s in m["fixed"].items():
        print(f"| {what} | {s:.2f} | {s / m['train_alone']:.0%} |")
    print(f"| train stage `{m['member']}` alone (2 batches) | {m['train_alone']:.2f} | 100% |")
    print(f"| its training loop (`wall_s`) | {m['train_own']:.2f} | {m['train_own'] / m['train_alone']:.0%} |")


def default_repro(project: Path, rounds: int) -> None:
    """The project's own pipeline (default params): a forced `dvc repro` from scratch (checkpoints
    removed, so every run trains), the share of its wall time outside the runs' own work, then a
    no-op `dvc repro`."""
    env = {**os.environ, "PATH": f"{project / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1"}
    shutil.rmtree(project / "checkpoints", ignore_errors=True)
    whole, stages = timed_repro(env, project, "-f")
    # tuning (tune@, train_tuned@) is not part of the grid: its stages are left out of both sides
    tuning = sum(w for n, w in stages if n.startswith(("tune@", "train_tuned@")))
    total = whole - tuning
    dirs = run_dirs(project)
    own = {name: own_seconds(dirs.get(name)) for name, _ in stages}
    own_sum = sum(v for v in own.values() if v is not None)
    train = [(n, w) for n, w in stages if n.startswith(("train@", "train_seed@"))]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("\n| forced `dvc repro` of the default grid | s |")
    print("| --- | ---: |")
    print(f"| wall time (tuning stages, {tuning:.1f} s, left out) | {total:.1f} |")
    print(f"| the runs' own work (train `wall_s` + `test_s`, n-gram `estimate_s` + `score_s`) | {own_sum:.1f} |")
    print(f"| share outside that work | {1 - own_sum / total:.1%} |")
    print(f"| train stages: mean wall in the repro / mean own `wall_s` | "
          f"{statistics.mean(w for _, w in train):.2f} / {statistics.mean(own[n] for n, _ in train):.2f} |")
    print(f"| no-op `dvc repro` (median of {rounds}) | {seconds(['dvc', 'repro'], env, project, rounds):.2f} |")
    print("\n| stage kind | stages | wall in the repro (s) | runs' own work (s) | outside it per stage (s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    kinds: dict[str, list[tuple[float, float]]] = {}
    for name, wall in stages:
        kind = name.partition("@")[0]
        if kind in ("train", "train_seed"):  # one row per LM type, as the run's results name it
            kind += f" ({read_json(project / paths.RESULTS / f'{dirs[name].name}.json')['lm']})"
        kinds.setdefault(kind, []).append((wall, own[name] or 0.0))
    for kind, rows in kinds.items():
        w, o = sum(r[0] for r in rows), sum(r[1] for r in rows)
        print(f"| {kind} | {len(rows)} | {w:.1f} | {o:.1f} | {(w - o) / len(rows):.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracking", choices=["on", "off", "both"], default="both")
    ap.add_argument("--rounds", type=int, default=3, help="repeats of each fixed-cost command (median)")
    ap.add_argument("--default", action="store_true",
                    help="instead: a forced `dvc repro` of this checkout's own default pipeline (minutes)")
    args = ap.parse_args()
    if args.default:
        default_repro(ROOT, args.rounds)
        return
    modes = {"on": [True], "off": [False], "both": [True, False]}[args.tracking]
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(Path(tmp), tracking, args.rounds) for tracking in modes]
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    print(f"{cpus} CPUs, load average {load:.1f}" + (" (busy: per-stage numbers are noisy; a negative DVC "
                                                      "share means the command alone ran slower)" if load > cpus else ""))
    for m in results:
        report(m)
    if len(results) == 2:
        on, off = results
        print(f"\ntracking on / off: whole repro {on['total'] / off['total']:.2f}x, "
              f"train stage alone {on['train_alone'] / off['train_alone']:.2f}x")


if __name__ == "__main__":
    main()
