"""Atomic writes: file modes follow the umask, read without an import side effect."""

import os
import subprocess
import sys

from pipeline import io
from tests.helpers import ROOT



def test_import_does_not_touch_the_umask():
    code = ("import os\n"
            "def boom(*a): raise AssertionError('umask read at import')\n"
            "os.umask = boom\n"
            "import pipeline.io\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_written_files_get_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    io._umask.cache_clear()
    try:
        io.write_json(tmp_path / "a.json", {"a": 1})
        io.write_text(tmp_path / "b.txt", "b")
    finally:
        os.umask(old)
        io._umask.cache_clear()
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o640
    assert io.read_json(tmp_path / "a.json") == {"a": 1}
