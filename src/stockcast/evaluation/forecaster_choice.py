"""Which forecaster a run registers: the LSTM, unless the best calibrated volatility baseline's
95 % interval score is significantly lower on the test span (one-sided Diebold-Mariano at
``promotion.alpha``); then that baseline, refit through the last date, is served in its place
and the run says so. A user always gets the best forecast available for a ticker."""

from __future__ import annotations

from dataclasses import dataclass

from stockcast.evaluation.significance import TEST_NAME
from stockcast.modeling.volatility_forecasters import BY_PREFIX

LSTM = "lstm"


@dataclass(frozen=True)
class Choice:
    """The forecaster a run serves and why: ``prefix`` is ``lstm`` or a baseline's metric prefix;
    ``pvalue`` is the one-sided DM p of "the best baseline's 95 % interval score is lower"."""

    prefix: str
    best_baseline: str
    pvalue: float
    reason: str
    folds: int = 1  # the out-of-sample spans the decision pooled (``earlier_folds``)
    fold_fits: tuple = ()  # the earlier folds' LSTM fits it used (``earlier_folds.FoldFit``)

    @property
    def tag(self) -> str:
        """The version's ``forecaster`` tag: lstm, ewma, rangevol, har or garch_t."""
        return LSTM if self.is_lstm else BY_PREFIX[self.prefix].tag

    @property
    def is_lstm(self) -> bool:
        """Whether the LSTM is served."""
        return self.prefix == LSTM


def choose_forecaster(metrics: dict[str, float], alpha: float) -> Choice:
    """The LSTM unless the calibrated baseline with the lowest test interval score beats it
    significantly. ``metrics`` holds ``<prefix>_interval_score_95`` and the DM p-values
    ``dm_pvalue_is95_<prefix>`` (H1: the LSTM's loss is lower) from ``score_all``; the p of
    the opposite one-sided hypothesis is 1 - p (the reference distribution is continuous)."""
    best = min(BY_PREFIX, key=lambda p: metrics[f"{p}_interval_score_95"])
    label = BY_PREFIX[best].name
    p_better = 1.0 - metrics[f"dm_pvalue_is95_{best}"]
    lstm, theirs = metrics["test_interval_score_95"], metrics[f"{best}_interval_score_95"]
    evidence = (f"95 % interval score {lstm:.4g} vs {label} {theirs:.4g} on the test "
                f"span; {TEST_NAME} p {p_better:.3g} that {label} is better")
    if p_better < alpha:
        return Choice(best, best, p_better,
                      f"LSTM worse than {label} ({evidence} < alpha {alpha}): serving "
                      f"{label}")
    return Choice(LSTM, best, p_better, f"serving the LSTM: not significantly worse than the "
                  f"best baseline ({evidence} >= alpha {alpha})")


# Metrics that describe the course of prices, not a forecaster: the same whoever is served.
SHARED = ("naive_", "drift_rmse", "always_up_rate")


def lstm_name(key: str) -> str:
    """Where the LSTM's headline metric goes when a baseline is served: ``test_coverage_95``
    -> ``lstm_coverage_95``, ``skill_rmse_pct`` -> ``lstm_skill_rmse_pct``."""
    return "lstm_" + key.removeprefix("test_")


def served_metrics(metrics: dict[str, float], served: dict[str, float],
                   choice: Choice) -> dict[str, float]:
    """The run's metrics with the headline (``test_*``, the point skill and its DM p-values)
    describing the forecaster actually served: ``served`` is its own ``score_all`` on the test
    span. The LSTM's keep their values under ``lstm_*`` (``lstm_name``). A baseline's point
    forecast is persistence itself, so it cannot be significantly worse than persistence
    (``dm_pvalue_naive`` 0.5)."""
    if choice.is_lstm:
        return metrics
    out = dict(metrics)
    for key, value in served.items():
        if key.startswith(SHARED):
            continue
        out[lstm_name(key)] = metrics[key]
        out[key] = value
    out["dm_pvalue_naive"] = 0.5
    return out
