"""`source: url`: an http(s) download, verified by sha256, optionally an archive.

The file is downloaded to `data/raw/.<corpus>.download/<url-hash>-<name>.part` (beside the
raw directory, so a failed attempt never leaves a partial raw directory). That `.part` file is
the one deliberate non-atomic write of the pipeline: it survives failures so that the next
attempt, or the next run, resumes it with an HTTP Range request; a server that ignores Range
(200 instead of 206) restarts it. Connection errors, timeouts, dropped connections and
HTTP 5xx/408/429 are retried `retries` times with exponential backoff (`backoff_s`, doubled
each time); any other HTTP error (404, 403, ...) fails at once. Either way the error names the
URL and the last status or reason.

The complete file is checked against `sha256` (a mismatch deletes it); `sha256: null` trusts
the first download, warns, and records its sha256 in source.json to pin in params.yaml.
Then, by `archive` and `members`:
- `none`: the file is the corpus (corpus.txt);
- `tar.gz` / `zip` with `members: {train: m1, valid: m2, test: m3}`: the corpus' own splits;
- `tar.gz` / `zip` with `members: [glob, ...]`: the matching files, one document each.
A corrupt or truncated archive is an error, and the file is deleted; a member name that is not
in the archive is an error too, but the file is kept, so fixing `members` needs no download.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import re
import time
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from tqdm import tqdm

from pipeline.config import SPLITS, UrlSource
from pipeline.corpora import archive, layout
from pipeline.errors import UserError
from pipeline.io import sha256_file

log = logging.getLogger(__name__)

_RETRY_STATUS = (408, 429)
_CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes (?:(\d+)-\d+|\*)/(\d+)")


class _Retryable(Exception):
    """A failure worth another attempt; the message says what happened."""


def _file_name(url: str) -> str:
    return PurePosixPath(urlsplit(url).path).name or "download"


def part_file(url: str, work_dir: Path) -> Path:
    """Where `url` is downloaded to: keyed by the URL, so a partial file is only ever resumed
    from the same URL."""
    return work_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{_file_name(url)}.part"


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(start, total) of 'bytes 100-199/200' or 'bytes */200'; None for what is absent."""
    m = _CONTENT_RANGE.fullmatch((value or "").strip())
    return (int(m[1]) if m and m[1] else None), (int(m[2]) if m else None)


def _attempt(cfg: UrlSource, part: Path) -> None:
    """One request: resume `part` from its size, or start it; raise _Retryable or UserError."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        resp = urllib.request.urlopen(urllib.request.Request(cfg.url, headers=headers), timeout=cfg.timeout_s)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: complete, or longer than the file
            if _content_range(e.headers.get("Content-Range"))[1] == have:
                return
            part.unlink()
            raise _Retryable("HTTP 416 on resume; restarting the download") from None
        if e.code >= 500 or e.code in _RETRY_STATUS:
            raise _Retryable(f"HTTP {e.code} {e.reason}") from None
        raise UserError(f"{cfg.url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise _Retryable(str(getattr(e, "reason", e))) from None
    with resp:
        if resp.status == 206:
            if _content_range(resp.headers.get("Content-Range"))[0] != have:
                part.unlink()
                raise _Retryable("server resumed at the wrong offset; restarting the download")
        else:
            have = 0  # the server ignored Range: the body is the whole file
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with (
            open(part, "ab" if have else "wb") as f,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=_file_name(cfg.url),
            ) as bar,
        ):
            try:
                while chunk := resp.read(_CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as e:
                raise _Retryable(f"connection lost at byte {f.tell()} ({e})") from None
    got = part.stat().st_size
    if total is not None and got < total:  # urllib reports a short body as a normal end
        raise _Retryable(f"connection closed after {got} of {total} bytes")


def _download(cfg: UrlSource, part: Path) -> None:
    attempts = cfg.retries + 1
    for i in range(attempts):
        try:
            return _attempt(cfg, part)
        except _Retryable as e:
            last = e
            if i + 1 < attempts:
                delay = cfg.backoff_s * 2**i
                log.warning("%s: %s; retry %d/%d in %.2g s", cfg.url, e, i + 1, cfg.retries, delay)
                time.sleep(delay)
    raise UserError(f"{cfg.url}: download failed after {attempts} attempt(s): {last}")


def _write(cfg: UrlSource, file: Path, raw_dir: Path) -> list[dict]:
    """Lay out the verified file as corpus text; returns the members' provenance."""
    if cfg.archive == "none":
        data = file.read_bytes()
        layout.write_corpus(raw_dir, data)
        return [layout.record(urlsplit(cfg.url).path, data)]
    members = archive.read_members(file, cfg.archive, cfg.members)
    if isinstance(cfg.members, dict):
        layout.write_splits(raw_dir, members)
        return [{**layout.record(cfg.members[s], members[s]), "split": s} for s in SPLITS]
    layout.write_corpus(raw_dir, layout.join_documents(members.values()))
    return [layout.record(name, data) for name, data in members.items()]


def fetch(cfg: UrlSource, raw_dir: Path, work_dir: Path) -> dict:
    work_dir.mkdir(parents=True, exist_ok=True)
    part = part_file(cfg.url, work_dir)
    _download(cfg, part)
    digest = sha256_file(part)
    if cfg.sha256 is None:
        log.warning(
            "%s: no sha256 given; trusting this download (sha256 %s), pin it in params.yaml", cfg.url, digest
        )
    elif digest != cfg.sha256:
        part.unlink()
        raise UserError(f"{cfg.url}: sha256 {digest} != expected {cfg.sha256}; the file was deleted")
    try:
        members = _write(cfg, part, raw_dir)
    except archive.CorruptArchive:
        part.unlink()  # verified or trusted, but unusable: never resume or reuse it
        raise
    return {
        "fetched": {
            "url": cfg.url,
            "sha256": digest,
            "bytes": part.stat().st_size,
            "trust_on_first_use": cfg.sha256 is None,
        },
        "members": members,
    }
