"""reports/index.html in a real browser: headless Chromium (Debian's `chromium`, which CI's
.ci/run installs) opens the file from disk, and the page it draws is not blank, shows the
figures inlined in it, and its DOM holds every run and a pivot table per LM type."""

import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from matplotlib.image import imread

from pipeline import paths
from pipeline.reporting import render
from tests.helpers import repo_params
from tests.test_reporting import scoped_params, write_results

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="`chromium` is not installed (Debian package "
                                "chromium; CI's .ci/run installs it)")

SAMPLE = "--- sample 0 (seed 1337)\nKING. <Enter> the & fool of {run}\nsecond line\nthird line\nfourth\n"


def chromium(profile, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


class Elements(HTMLParser):
    """Tag, id and attributes of every element of a document."""

    def __init__(self):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


@pytest.fixture
def report(tmp_path, monkeypatch):
    """The default grid's report from made-up results, with the runs that blow up in the CPU
    profile (vanilla RNN, no clipping) diverged."""
    monkeypatch.chdir(tmp_path)
    grid = repo_params()["grid"]
    diverged = {paths.run_id(c, lm, "rnn_tanh", d, 0) for c in grid["corpus"] for lm in ("word", "hybrid")
                for d in grid["dropout"]}
    runs = write_results(grid, orders=(3, 5), diverged=diverged, samples=SAMPLE)
    render(runs, scoped_params(grid, orders=(3, 5)))
    return tmp_path, runs, grid


def test_the_report_page_renders_in_chromium(report, tmp_path):
    root, runs, grid = report
    url = (root / paths.REPORT_HTML).resolve().as_uri()

    shot = tmp_path / "screenshot.png"
    chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000", url)
    pixels = imread(shot)[..., :3]  # floats in [0, 1]
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 0.05, "the page is blank"
    assert (pixels.min(axis=2) < 0.6).mean() > 0.01, "almost nothing but white on the page"

    # the whole page: the inlined figures decode (their coloured bars and lines are drawn)
    tall = tmp_path / "page.png"
    chromium(tmp_path / "profile", f"--screenshot={tall}", "--window-size=1280,9000", url)
    page = imread(tall)[..., :3]
    saturated = (page.max(axis=2) - page.min(axis=2)) > 0.4
    assert saturated.sum() > 20_000, "no figure drawn"

    dom = chromium(tmp_path / "profile", "--dump-dom", url).stdout
    parser = Elements()
    parser.feed(dom)
    ids = [a["id"] for _, a in parser.elements if "id" in a]
    assert len(ids) == len(set(ids)), "duplicate element ids"
    for run in runs:
        assert f"run-{run}" in ids, run
    for lm in grid["lm"]:
        assert f"pivot-{lm}" in ids and f"lm-{lm}" in ids
        tags = {t for t, a in parser.elements if a.get("id") == f"pivot-{lm}"}
        assert tags == {"table"}
    for section in ("best", "grid", "effects", "ngram", "curves", "cost", "samples"):
        assert section in ids, section
    images = [a for t, a in parser.elements if t == "img"]
    assert sorted(a["alt"] for a in images) == ["learning curves", "main effects",
                                                "test bits/char against parameters and wall time",
                                                "test bits/char of every run"]
    assert all(a["src"].startswith("data:image/png;base64,") for a in images)
    assert dom.count("diverged (epoch 1)") == 4 + 4  # in the pivots and in the cost table
    assert "KING. &lt;Enter&gt; the &amp; fool of shakespeare-word-gru-0.0-0" in dom
    assert not re.search(r"<[^>]+(src|href)=\"(https?:)?//", dom), "the page fetches something"
