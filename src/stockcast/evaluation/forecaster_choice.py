"""Which forecaster a run registers: the LSTM, unless the best calibrated volatility baseline's
95 % interval score is significantly lower on the test span (one-sided Diebold-Mariano at
``promotion.alpha``); then that baseline, refit through the last date, is served in its place
and the run says so. A user always gets the best forecast available for a ticker."""

from __future__ import annotations

from dataclasses import dataclass

from stockcast.evaluation.significance import TEST_NAME
from stockcast.modeling.volatility_forecasters import BASELINE_NAMES, SERVED_TAGS

LSTM = "lstm"
# Metric prefix -> volatility model, each fit on the training rows and conformal-calibrated on
# the validation span exactly like the LSTM (``ewma`` alone is also scored raw).
CALIBRATED_BASELINES = {"ewmacal": "ewma", "rangevol": "rangevol", "har": "har", "garch": "garch"}
LABELS = {prefix: BASELINE_NAMES[kind] for prefix, kind in CALIBRATED_BASELINES.items()}


@dataclass(frozen=True)
class Choice:
    """The forecaster a run serves and why: ``prefix`` is ``lstm`` or a baseline's metric prefix;
    ``pvalue`` is the one-sided DM p of "the best baseline's 95 % interval score is lower"."""

    prefix: str
    best_baseline: str
    pvalue: float
    reason: str

    @property
    def tag(self) -> str:
        """The version's ``forecaster`` tag: lstm, ewma, rangevol, har or garch_t."""
        return LSTM if self.is_lstm else SERVED_TAGS[CALIBRATED_BASELINES[self.prefix]]

    @property
    def is_lstm(self) -> bool:
        """Whether the LSTM is served."""
        return self.prefix == LSTM


def choose_forecaster(metrics: dict[str, float], alpha: float) -> Choice:
    """The LSTM unless the calibrated baseline with the lowest test interval score beats it
    significantly. ``metrics`` holds ``<prefix>_interval_score_95`` and the DM p-values
    ``dm_pvalue_is95_<prefix>`` (H1: the LSTM's loss is lower) from ``score_all``; the p of
    the opposite one-sided hypothesis is 1 - p (the reference distribution is continuous)."""
    best = min(CALIBRATED_BASELINES, key=lambda p: metrics[f"{p}_interval_score_95"])
    p_better = 1.0 - metrics[f"dm_pvalue_is95_{best}"]
    lstm, theirs = metrics["test_interval_score_95"], metrics[f"{best}_interval_score_95"]
    evidence = (f"95 % interval score {lstm:.4g} vs {LABELS[best]} {theirs:.4g} on the test "
                f"span; {TEST_NAME} p {p_better:.3g} that {LABELS[best]} is better")
    if p_better < alpha:
        return Choice(best, best, p_better,
                      f"LSTM worse than {LABELS[best]} ({evidence} < alpha {alpha}): serving "
                      f"{LABELS[best]}")
    return Choice(LSTM, best, p_better, f"serving the LSTM: not significantly worse than the "
                  f"best baseline ({evidence} >= alpha {alpha})")


def promotion_metrics(metrics: dict[str, float], choice: Choice) -> dict[str, float]:
    """The metrics the promotion sanity gate reads, for the forecaster actually served: a
    baseline's point forecast is persistence itself, so its RMSE is persistence's and it
    cannot be significantly worse than persistence (DM p 0.5)."""
    if choice.is_lstm:
        return metrics
    p = choice.prefix
    return {**metrics, "test_rmse": metrics["naive_rmse"], "dm_pvalue_naive": 0.5,
            "test_coverage_95": metrics[f"{p}_coverage_95"],
            "test_coverage_80": metrics[f"{p}_coverage_80"],
            "test_interval_score_95": metrics[f"{p}_interval_score_95"]}
