"""The fork server (pipeline/forkserver.py): a stage run through it is the stage as `python -m`
runs it, and its client is the stage to whoever started it: exit status, signals, a kill.

A probe module stands in for a stage (fast: the server imports nothing heavy); the real train
stage through the server is in tests/test_train_run.py (a signal mid-training, then resuming)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT

PROBE = '''
import json, os, signal, sys, time
def prefork():  # what it leaves in a module that stays imported, the children have (here: sys)
    sys.preforked = getattr(sys, "preforked", []) + [os.getpid()]
what = sys.argv[1]
if what == "echo":
    print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "probe": os.environ.get("PROBE"),
                      "pid": os.getpid(), "ppid": os.getppid(), "name": __name__,
                      "preforked": getattr(sys, "preforked", None)}))
    print("to stderr", file=sys.stderr)
    sys.exit(int(sys.argv[2]))
if what == "raise":
    raise ValueError("the probe failed")
if what == "term":
    def stop(signum, frame):
        open("stopped", "w").write(str(signum))
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
if what in ("term", "sleep"):
    open("ready.tmp", "w").write(str(os.getpid()))
    os.replace("ready.tmp", "ready")
    time.sleep(120)
if what == "die":
    os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.fixture
def project(tmp_path):
    """A folder with its own copy of the code (so a test may edit it) and the probe module."""
    for name in ("pipeline", "stages"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "probe.py").write_text(PROBE)
    return tmp_path


def client(project: Path, *args: str, **env: str) -> subprocess.Popen:
    code = "import sys; from pipeline.forkserver import client; client('probe', sys.argv[1:])"
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=project, text=True,
                            env={**os.environ, "PYTHONPATH": str(project), "PROBE": "yes", **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def echo(project: Path, **env: str) -> tuple[dict, subprocess.Popen]:
    proc = client(project, "echo", "3", **env)
    rc, out, err = finish(proc)
    assert rc == 3 and err == "to stderr\n", err
    return json.loads(out), proc


def ready(project: Path, proc: subprocess.Popen) -> int:
    """The pid the probe wrote once it waits."""
    deadline = time.monotonic() + 60
    while not (project / "ready").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else ""
        time.sleep(0.01)
    return int((project / "ready").read_text())


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # gone (ESRCH: while being read)
        return False
    return state != "Z"


def test_a_child_is_the_module_as_python_m_runs_it_and_one_server_serves_them_all(project):
    first, proc = echo(project)
    assert first == {"argv": ["echo", "3"], "cwd": str(project), "probe": "yes", "pid": first["pid"],
                     "ppid": first["ppid"], "name": "__main__", "preforked": [first["ppid"]]}
    assert first["pid"] != proc.pid and first["ppid"] != proc.pid  # a child of the server
    second, _ = echo(project)
    assert second["ppid"] == first["ppid"] and second["pid"] != first["pid"]
    assert second["preforked"] == [first["ppid"]]  # the module's prefork ran once, in the server
    other_env, _ = echo(project, PROBE_OTHER="1")  # another environment: a server of its own
    assert other_env["ppid"] != first["ppid"]
    alone, proc = echo(project, LM_ABLATIONS_FORKSERVER="0")  # switched off: the client runs it
    assert alone["pid"] == proc.pid and alone["preforked"] is None


def test_edited_code_gets_a_new_server(project):
    before, _ = echo(project)
    with open(project / "pipeline" / "errors.py", "a") as f:
        f.write("# edited\n")
    after, _ = echo(project)
    assert after["ppid"] != before["ppid"]


def test_an_exception_is_its_traceback_and_exit_1(project):
    rc, _, err = finish(client(project, "raise"))
    assert rc == 1 and "Traceback" in err and err.rstrip().endswith("ValueError: the probe failed")


def test_the_clients_sigterm_reaches_the_stage(project):
    proc = client(project, "term")
    ready(project, proc)
    proc.send_signal(signal.SIGTERM)
    rc, _, err = finish(proc)
    assert rc == 128 + signal.SIGTERM, err
    assert (project / "stopped").read_text() == str(int(signal.SIGTERM))


def test_a_killed_client_takes_its_stage_along(project):
    proc = client(project, "sleep")
    pid = ready(project, proc)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 2  # the kernel kills it at once; 2 s: a loaded machine's slack
    while alive(pid):
        assert time.monotonic() < deadline, "the stage outlived its client"
        time.sleep(0.01)


def test_a_stage_killed_by_a_signal_kills_its_client_alike(project):
    rc, _, _ = finish(client(project, "die"))
    assert rc == -signal.SIGKILL


def test_an_unknown_stage_is_exit_2_naming_the_stages(project):
    r = subprocess.run([sys.executable, "-m", "stages", "nope"], cwd=project, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(project)})
    assert r.returncode == 2 and "STAGE is one of" in r.stderr and "train" in r.stderr
