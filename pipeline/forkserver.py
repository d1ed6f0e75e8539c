"""The fork server: one warm interpreter that has imported the stages' modules (torch and the
rest: 1.7 s of every train stage's 2.1 s fixed cost) and forks a child for each stage run.

    python -m stages train shakespeare ...   # dvc.yaml's commands: `client` (stages/__main__.py)
    python -m pipeline.forkserver SOCKET     # the server, started by the first client that finds none

A child is the stage as `python -m stages.train ...` would run: the client's arguments, working
folder, environment and stdin/stdout/stderr (sent over the socket), the stage module run as
__main__. The server only imports, never runs a stage, so every child starts from the same state
and a stage gives the same numbers either way (tests/test_forkserver.py). The client is the
stage to DVC and to the user: it exits with the child's status (a child killed by a signal
kills the client with it), it forwards SIGINT, SIGTERM and SIGHUP, and if it dies, even by
SIGKILL, the kernel kills the child within a millisecond (the lifeline, in `child`).

A stage module may define `prefork()`: the server calls it once, after importing the module, for
work that depends on the code alone (the train stage's code hash), which the children inherit.

A server is keyed (pipeline/sidecar.py) by the interpreter, the working folder, the whole
environment but PER_STAGE_ENV and the bytes of every module under pipeline/ and stages/: an
edited file gets a new server, and the old one leaves after IDLE_S.
LM_ABLATIONS_FORKSERVER=0 runs each stage in the client's own process instead.
"""

from __future__ import annotations

import atexit
import fcntl
import importlib
import io
import json
import os
import runpy
import select
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

from pipeline import sidecar

IDLE_S = 30.0  # no stage for this long: the server leaves (a repro's stages follow closely)
SWITCH = "LM_ABLATIONS_FORKSERVER"
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PER_STAGE_ENV = ("DVC_STAGE", "_", "OLDPWD", "SHLVL")  # set per stage (DVC) or per command (a shell)
ROOT = Path(__file__).resolve().parents[1]


# the client: the stage's own process ------------------------------------------------------------
def socket_path(cwd: Path, env: dict[str, str]) -> Path:
    code = sorted(p for pkg in ("pipeline", "stages") for p in (ROOT / pkg).rglob("*.py"))
    return sidecar.socket_path("forkserver", [
        sys.executable, str(cwd), *sorted(f"{k}={v}" for k, v in env.items() if k not in PER_STAGE_ENV),
        *(str(p).encode() + b"\0" + p.read_bytes() for p in code)])


def run_module(module: str, args: list[str]) -> None:
    """`python -m module args` in this process: the stage run by a child, or by the client itself
    when no server is to be had."""
    sys.argv = [module, *args]  # runpy puts the module's file in argv[0]
    sys.modules.pop(module, None)  # imported by the server: run it afresh, as __main__
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def client(module: str, args: list[str]) -> None:
    """Run `module` (a stage) in a child of this environment's fork server; exits as it exits."""
    cwd, env = Path.cwd(), dict(os.environ)
    path, sock = socket_path(cwd, env), None
    if env.get(SWITCH, "1") != "0":
        sock, why = sidecar.connect_or_spawn(path, __name__, "the fork server", env=env, cwd=cwd)
        if sock is None:
            print(f"warning: {why}; the stage runs in this process", file=sys.stderr)
    if sock is None:
        run_module(module, args)
        return
    request = json.dumps({"module": module, "args": args, "cwd": str(cwd), "env": env}).encode() + b"\n"
    # The lifeline: a pipe whose write end only this process holds, so its end (a kill, even
    # SIGKILL) makes the read end readable, and the kernel then kills the child at once.
    lifeline, _ = os.pipe()  # the write end stays open, unused, until this process ends
    std = [fd if _is_open(fd) else os.open(os.devnull, os.O_RDWR) for fd in (0, 1, 2)]
    socket.send_fds(sock, [request], [*std, lifeline])
    os.close(lifeline)

    def forward(signum: int, frame) -> None:
        try:
            sock.sendall(json.dumps({"signal": signum}).encode() + b"\n")
        except OSError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    status = {}
    for line in sock.makefile("r", encoding="utf-8"):
        status = json.loads(line)
        break
    if "signal" in status:  # die as the child died, so DVC (or a shell) sees the same
        if status["signal"] != signal.SIGKILL:  # (whose handler cannot be set)
            signal.signal(status["signal"], signal.SIG_DFL)
        os.kill(os.getpid(), status["signal"])
    if "exit" not in status:
        print(f"error: the fork server went away before the stage ended (its log: {path.with_suffix('.log')})",
              file=sys.stderr)
    sys.exit(status.get("exit", 1))


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


# the server ---------------------------------------------------------------------------------------
class Server:
    def __init__(self, path: Path):
        self.path = path
        self.children: dict[int, tuple[socket.socket, int]] = {}  # pid -> (its client's socket, pidfd)
        self.last = time.monotonic()
        self.stages = 0
        self.preforked: set[str] = set()  # stage modules whose `prefork` has run

    def serve(self) -> None:
        listener = sidecar.listen(self.path)
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select(timeout=1.0):
                if key.fileobj is listener:
                    self.accept(listener, sel)
                else:
                    self.reap(key.data, sel)
            if (not self.children and time.monotonic() - self.last > IDLE_S
                    and sidecar.leave_if_unwanted(self.path, listener, sel)):
                print(f"fork server {os.getpid()} leaves after {self.stages} stages", file=sys.stderr)
                return

    def accept(self, listener: socket.socket, sel: selectors.BaseSelector) -> None:
        conn, _ = listener.accept()
        self.last = time.monotonic()
        try:
            request, fds = receive(conn)
        except (OSError, ValueError) as e:
            print(f"fork server: a bad request ({e})", file=sys.stderr)
            conn.close()
            return
        try:  # what the stage imports, imported here once, so the children to come have it
            module = importlib.import_module(request["module"])
            if request["module"] not in self.preforked:  # and its work that depends on the code alone
                self.preforked.add(request["module"])
                getattr(module, "prefork", lambda: None)()
        except BaseException:  # a broken stage module: its child fails the same way and says so
            traceback.print_exc()
        pid = os.fork()
        if pid == 0:  # the child keeps its own client's socket alone
            sel.close()
            listener.close()
            for other, pidfd in self.children.values():
                other.close()
                os.close(pidfd)
            child(conn, request, fds)  # never returns
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.children[pid] = (conn, pidfd)
        sel.register(pidfd, selectors.EVENT_READ, pid)
        self.stages += 1

    def reap(self, pid: int, sel: selectors.BaseSelector) -> None:
        """A child ended: a child killed by a signal cannot say so itself, the server tells its client."""
        conn, pidfd = self.children.pop(pid)
        sel.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            try:
                conn.sendall(json.dumps({"signal": os.WTERMSIG(status)}).encode() + b"\n")
            except OSError:
                pass
        conn.close()
        self.last = time.monotonic()


def receive(conn: socket.socket) -> tuple[dict, list[int]]:
    """The client's request line and its stdin, stdout, stderr and lifeline, whose descriptors
    come with the first bytes."""
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 4)
    if len(fds) != 4:
        for fd in fds:
            os.close(fd)
        raise ValueError(f"{len(fds)} descriptors, not 4")
    while not data.endswith(b"\n"):
        more = conn.recv(1 << 16)
        if not more:
            raise ValueError("the client left mid-request")
        data += more
    return json.loads(data), fds


def child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """Become the stage: the client's descriptors, folder and environment, then its module as
    __main__; then what an interpreter does at exit, the status sent to the client, and _exit."""
    *std, lifeline = fds
    # SIGKILL from the kernel the moment the client's end of the lifeline closes (O_ASYNC: a
    # signal when it turns readable; F_SETSIG: which one): no stage goes on after its client is
    # killed, not even for the few ms a thread would take to notice.
    fcntl.fcntl(lifeline, fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(lifeline, fcntl.F_SETSIG, signal.SIGKILL)
    fcntl.fcntl(lifeline, fcntl.F_SETFL, fcntl.fcntl(lifeline, fcntl.F_GETFL) | os.O_ASYNC)
    if select.select([lifeline], [], [], 0)[0]:  # the client was gone before the line was set
        os.kill(os.getpid(), signal.SIGKILL)
    for target, fd in enumerate(std):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for name, fd in (("stdin", 0), ("stdout", 1), ("stderr", 2)):
        setattr(sys, name, _std_stream(fd, getattr(sys, name)))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    threading.Thread(target=_watch_client, args=(conn,), daemon=True).start()

    code = 0
    try:
        run_module(request["module"], request["args"])
    except SystemExit as e:
        code = _exit_code(e.code)
    except KeyboardInterrupt:
        code = 128 + signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    for t in threading.enumerate():  # as at an interpreter's exit: non-daemon threads first
        if t is not threading.current_thread() and not t.daemon:
            t.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
    finally:
        os._exit(code)


def _exit_code(code) -> int:
    """sys.exit's argument as the process's exit status, as the interpreter maps it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _std_stream(fd: int, old: io.TextIOWrapper) -> io.TextIOWrapper:
    """A text stream on descriptor fd, buffered as the interpreter would have made it for the
    client: line-buffered on a terminal (and stderr always), unbuffered with PYTHONUNBUFFERED."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
    return io.TextIOWrapper(io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw),
                            encoding=old.encoding, errors=old.errors,
                            line_buffering=fd == 2 or (fd == 1 and raw.isatty()),
                            write_through=unbuffered and fd != 0)


def _watch_client(conn: socket.socket) -> None:
    """The client's signals, passed on to this process (its end is the lifeline's business)."""
    for line in conn.makefile("r", encoding="utf-8"):
        try:
            os.kill(os.getpid(), json.loads(line)["signal"])
        except (ValueError, KeyError, OSError):
            pass


def main() -> None:
    Server(Path(sys.argv[1])).serve()


if __name__ == "__main__":
    main()
