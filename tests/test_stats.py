"""Seed statistics and the paired bootstrap over test segments, against direct numpy."""

import math

import numpy as np
import pytest

from pipeline.evaluation import Segments
from pipeline.reporting.compare import by_group, cell_summary, compare
from pipeline.reporting.stats import Summary, paired_bootstrap, resolved, summarize


def test_mean_sd_and_t_interval_match_numpy():
    x = [1.91, 1.87, 2.02, 1.95]
    s = summarize(x)
    assert (s.mean, s.n) == (pytest.approx(np.mean(x), abs=1e-15), 4)
    assert s.sd == pytest.approx(np.std(x, ddof=1), rel=1e-12)
    half = 3.182446305284263 * np.std(x, ddof=1) / 2  # t(0.975, 3 df) * sd / sqrt(4)
    assert (s.lo, s.hi) == (pytest.approx(np.mean(x) - half, rel=1e-12), pytest.approx(np.mean(x) + half, rel=1e-12))


def test_one_seed_has_no_spread():
    s = summarize([2.5])
    assert s.mean == 2.5 and s.n == 1 and math.isnan(s.sd) and math.isnan(s.lo)
    assert resolved(s, summarize([1.0, 1.1])) is None


def test_overlapping_intervals_are_not_resolved():
    a, b, c = summarize([2.0, 2.1, 1.9]), summarize([2.05, 2.2, 1.95]), summarize([1.50, 1.52, 1.48])
    assert resolved(a, b) is False and resolved(b, a) is False
    assert resolved(a, c) is True and resolved(c, a) is True
    assert resolved(Summary(1, 0.1, 3, 0.9, 1.1), Summary(1.3, 0.1, 3, 1.1, 1.5)) is False  # touching: overlap


def toy_segments(seed=0, S=40):
    rng = np.random.default_rng(seed)
    chars = rng.integers(800, 1200, S)
    a = chars * rng.normal(1.40, 0.15, S)  # nats per segment
    return a, chars, rng


def test_bootstrap_is_a_direct_percentile_interval():
    a, chars, rng = toy_segments()
    b = a + chars * rng.normal(-0.01, 0.05, a.size)
    got = paired_bootstrap(a, b, chars, resamples=500, seed=7)
    idx = np.random.default_rng(7).integers(0, a.size, (500, a.size))
    draws = [(b[i].sum() - a[i].sum()) / (np.log(2) * chars[i].sum()) for i in idx]
    assert got.delta == pytest.approx((b.sum() - a.sum()) / (np.log(2) * chars.sum()), rel=1e-12)
    assert (got.lo, got.hi) == (pytest.approx(np.percentile(draws, 2.5), rel=1e-9),
                                pytest.approx(np.percentile(draws, 97.5), rel=1e-9))


def test_bootstrap_separates_clearly_different_models_and_not_equal_ones():
    a, chars, rng = toy_segments()
    better = a - chars * 0.1 + chars * rng.normal(0, 0.02, a.size)  # 0.1 nats/char better, per segment
    iv = paired_bootstrap(a, better, chars)
    assert iv.excludes_zero and iv.hi < 0 and iv.delta == pytest.approx(-0.1 / np.log(2), abs=0.01)
    same = a + chars * rng.normal(0, 0.02, a.size)
    assert not paired_bootstrap(a, same, chars).excludes_zero


def test_bootstrap_of_several_pairs_resamples_them_together():
    a, chars, rng = toy_segments()
    A = np.stack([a, a * 1.1])
    B = np.stack([a * 0.9, a * 1.1])  # one pair 10% better, one equal: the mean pair 5% better
    iv = paired_bootstrap(A, B, chars, resamples=200)
    assert iv.delta == pytest.approx(-0.05 * a.sum() / (np.log(2) * chars.sum()), rel=1e-12)
    with pytest.raises(ValueError, match="disagree"):
        paired_bootstrap(A, B[:1], chars)


# ----------------------------------------------------------------------------- cells over seeds


def run(name, group, seed, value, diverged=False):
    return {"run": name, "group": group, "seed": seed, "lm": "word", "diverged": diverged,
            "test": None if diverged else {"bits_per_char": value}}


def test_comparison_of_two_levels_over_pairs_and_seeds():
    """Two pairs of cells (e.g. clip 0 vs 5 at dropout 0 and 0.5), three seeds each."""
    a1 = [run(f"a1-{s}", "a1", s, v) for s, v in zip((1, 2, 3), (2.00, 2.02, 1.98))]
    b1 = [run(f"b1-{s}", "b1", s, v) for s, v in zip((1, 2, 3), (1.80, 1.83, 1.79))]
    a2 = [run(f"a2-{s}", "a2", s, v) for s, v in zip((1, 2, 3), (2.10, 2.12, 2.11))]
    b2 = [run(f"b2-{s}", "b2", s, v) for s, v in zip((1, 2, 3), (1.90, 1.91, 1.88))]
    a, chars, rng = toy_segments()
    segs = {m["run"]: Segments(a * (1 + 0.1 * (m["run"][0] == "a")) + rng.normal(0, 5, a.size), chars)
            for m in a1 + b1 + a2 + b2}
    c = compare([(a1, b1), (a2, b2)], segs.get)
    va, vb = np.array([[2.00, 2.02, 1.98], [2.10, 2.12, 2.11]]), np.array([[1.80, 1.83, 1.79], [1.90, 1.91, 1.88]])
    assert c.delta == pytest.approx((vb - va).mean(), rel=1e-12) and (c.pairs, c.a.n, c.b.n) == (2, 3, 3)
    assert c.a.mean == pytest.approx(va.mean()) and c.a.sd == pytest.approx(np.std(va.mean(axis=0), ddof=1))
    assert c.b.sd == pytest.approx(np.std(vb.mean(axis=0), ddof=1)) and c.resolved is True
    assert c.bootstrap.hi < 0  # b's segments are 10% cheaper
    # a diverged seed drops out of its cell only; a run without segments: no bootstrap
    b2[0] = run("b2-1", "b2", 1, 0, diverged=True)
    c = compare([(a1, b1), (a2, b2)], segs.get)
    assert c.delta == pytest.approx(np.mean([vb[0].mean() - va[0].mean(), vb[1, 1:].mean() - va[1].mean()]),
                                    rel=1e-12)
    assert c.b.mean == pytest.approx(np.mean([vb[0, 0], *vb[:, 1:].mean(axis=0)])) and c.pairs == 2
    assert compare([(a1, b1)], {}.get).bootstrap is None


def test_one_seed_reads_as_a_single_run():
    c = compare([([run("a", "a", None, 2.0)], [run("b", "b", 1337, 2.5)])], {}.get)  # an n-gram, an RNN
    assert (c.delta, c.a.mean, c.b.n, c.resolved) == (0.5, 2.0, 1, None)
    assert by_group([run("x-2", "x", 2, 1.0), run("x", "x", 1337, 1.0), run("x-1", "x", 1, 1.0), {"run": "y"}]) == {
        "x": [run("x", "x", 1337, 1.0), run("x-1", "x", 1, 1.0), run("x-2", "x", 2, 1.0)], "y": [{"run": "y"}]}
    assert cell_summary([run("x", "x", 1, 1.0), run("x-2", "x", 2, 3.0, diverged=True)]).n == 1
