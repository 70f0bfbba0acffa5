"""The Diebold-Mariano test against values worked out by hand."""

import numpy as np
import pytest
from scipy import stats

from stockcast.evaluation.significance import dm_test


def test_dm_test_one_step_by_hand():
    d = np.array([1.0, -1.0, 2.0, 0.0, 3.0])  # loss_a - loss_b
    # mean 1, autocovariance gamma0 = 2, DM = 1 / sqrt(2 / 5) = 1.5811;
    # HLN factor sqrt((5 + 1 - 2) / 5) = 0.8944 -> 1.41421
    out = dm_test(d, np.zeros(5), horizon=1)
    assert out.statistic == pytest.approx(np.sqrt(2.0), rel=1e-6)
    assert out.pvalue == pytest.approx(stats.t.cdf(np.sqrt(2.0), df=4))  # A is worse: p > 0.5
    assert out.n == 5 and out.mean_diff == pytest.approx(1.0)


def test_dm_test_two_steps_uses_the_lag_one_autocovariance():
    d = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # gamma0 = 2, gamma1 = 0.8 -> long-run variance 3.6; DM = 3 / sqrt(3.6 / 5) = 3.5355;
    # HLN factor sqrt((5 + 1 - 4 + 2 / 5) / 5) = sqrt(0.48) -> 2.44949
    out = dm_test(np.zeros(5), d, horizon=2)  # A better by 3 on average
    assert out.statistic == pytest.approx(-2.4494897, rel=1e-6)
    assert out.pvalue == pytest.approx(stats.t.cdf(-2.4494897, df=4), rel=1e-6)


def test_dm_test_per_step_losses_are_averaged_and_ties_give_no_evidence():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 3)) ** 2
    assert dm_test(a, a, 3).pvalue == 0.5
    better = dm_test(a * 0.5, a, 3)
    assert better.pvalue < 1e-6 and better.statistic < 0


def test_training_noise_adds_to_the_variance_of_the_mean_difference():
    d = np.array([1.0, -1.0, 2.0, 0.0, 3.0])
    # gamma0 / n = 0.4, plus 0.6 of training noise -> DM = 1 / sqrt(1.0); HLN 0.8944
    out = dm_test(d, np.zeros(5), horizon=1, extra_variance=0.6)
    assert out.statistic == pytest.approx(np.sqrt(0.8), rel=1e-6)
    # Two fits whose losses differ by a constant: the span sees no noise at all, so the plain
    # test has no variance to judge by; the training noise alone decides.
    same = np.full(50, -0.01)
    assert dm_test(same, np.zeros(50), 1).pvalue == 0.5
    assert dm_test(same, np.zeros(50), 1, extra_variance=0.01 ** 2).pvalue > 0.1
    assert dm_test(same, np.zeros(50), 1, extra_variance=0.002 ** 2).pvalue < 0.001


def test_pooled_spans_by_hand_each_centred_on_its_own_mean():
    from stockcast.evaluation.significance import pooled_dm_test

    a, b = np.array([1.0, 3.0]), np.array([-2.0, 0.0, -1.0])  # differences of two folds
    # mean over 5 = 0.2; fold variances 1 and 2/3; variance of the mean
    # (2 x 1 + 3 x 2/3) / 25 = 0.16 -> DM 0.5; HLN sqrt((5 + 1 - 2) / 5) at h 1
    out = pooled_dm_test([(a, np.zeros(2)), (b, np.zeros(3))], horizon=1)
    expected = 0.5 * np.sqrt(0.8)
    assert out.statistic == pytest.approx(expected, rel=1e-12) and out.n == 5
    assert out.pvalue == pytest.approx(stats.t.cdf(expected, df=4), rel=1e-12)
    # One span is exactly the DM test.
    d = np.random.default_rng(3).normal(size=(40, 2))
    one, plain = pooled_dm_test([(d, np.zeros_like(d))], 2, 0.01), dm_test(d, np.zeros_like(d), 2, 0.01)
    assert (one.statistic, one.pvalue) == pytest.approx((plain.statistic, plain.pvalue), rel=1e-12)


def test_an_edge_on_one_span_alone_is_not_significant_when_pooled():
    from stockcast.evaluation.significance import pooled_dm_test

    rng = np.random.default_rng(1)
    base = [rng.gamma(2.0, 1.0, 250) for _ in range(3)]
    edge = [0.97, 1.02, 1.02]  # A 3 % better on one span, 2 % worse on the two others
    spans = [(b * e + rng.normal(0, 0.02, 250), b) for b, e in zip(base, edge, strict=True)]
    assert dm_test(*spans[0], 1).pvalue < 0.05
    assert pooled_dm_test(spans, 1).pvalue > 0.05
    consistent = [(b * 0.97 + rng.normal(0, 0.02, 250), b) for b in base]
    assert pooled_dm_test(consistent, 1).pvalue < 1e-6
