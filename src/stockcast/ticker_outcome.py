"""What one ticker's training run ended with, in one typed record that renders everything a
user reads of it: the flow's return value (what the CLI prints and tests assert), the row of
the ``train-summary`` artifact, the console line and the ``train-decisions`` page."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from stockcast.data.freshness import Freshness
from stockcast.data.sources import PriceData
from stockcast.evaluation.scorecard import Evaluation
from stockcast.modeling.recipe import ServingFit, TickerFit
from stockcast.registry.decision_record import headline
from stockcast.registry.promotion import Decision
from stockcast.registry.tracking import LoggedRun

SUMMARY_METRICS = ("test_rmse", "naive_rmse", "skill_rmse", "skill_rmse_pct", "dm_pvalue_naive",
                   "test_coverage_95", "test_interval_score_95", "ewma_interval_score_95",
                   "garch_interval_score_95", "dm_pvalue_is95_garch", "har_interval_score_95",
                   "dm_pvalue_is95_har")


@dataclass(frozen=True)
class TickerOutcome:
    """A ticker that went through every stage: its version, decision, served forecaster, data
    and headline metrics (``SUMMARY_METRICS``)."""

    version: str | None
    run_id: str
    promoted: bool
    reason: str
    decision: str
    source: str
    fallback: str
    last_date: str
    fresh: bool
    pvalue: float | None
    champion_version: str | None
    metrics: dict[str, float]
    train_seconds: float
    forecaster: str
    forecaster_reason: str
    warm_start_from: str
    figures: str

    @classmethod
    def of(cls, *, prices: PriceData, freshness: Freshness, fit: TickerFit,
           evaluation: Evaluation, serving: ServingFit, logged: LoggedRun, version: str | None,
           decision: Decision, figures: str) -> TickerOutcome:
        """The outcome from each stage's result."""
        return cls(
            version=version, run_id=logged.run_id, promoted=decision.promote,
            reason=decision.reason, decision=headline(decision, serves=evaluation.choice.tag),
            source=prices.source, fallback=" | ".join(prices.notes) or "none",
            last_date=freshness.last_date, fresh=not freshness.stale, pvalue=decision.pvalue,
            champion_version=decision.champion_version,
            metrics={k: evaluation.metrics[k] for k in SUMMARY_METRICS},
            train_seconds=fit.result.seconds + serving.seconds,
            forecaster=evaluation.choice.tag, forecaster_reason=evaluation.choice.reason,
            warm_start_from=fit.warm_start_from, figures=figures)

    def as_dict(self) -> dict[str, Any]:
        """The flow's per-ticker result: every field, the metrics at the top level."""
        out = asdict(self)
        return {**{k: v for k, v in out.items() if k != "metrics"}, **self.metrics}

    def row(self, ticker: str) -> dict[str, Any]:
        """The ticker's ``train-summary`` row: what was decided and served first (the Prefect
        pane shows the first columns), the decision in the version's own words (its reason in
        full is in ``train-decisions``), then the metrics and the data."""
        m = self.metrics
        return {"ticker": ticker, "status": "champion" if self.promoted else "not promoted",
                "serves": self.forecaster, "version": self.version, "decision": self.decision,
                "coverage_95": m["test_coverage_95"],
                "interval_score_95": m["test_interval_score_95"],
                "ewma_interval_score_95": m["ewma_interval_score_95"],
                "garch_interval_score_95": m["garch_interval_score_95"],
                "dm_p_vs_garch": m["dm_pvalue_is95_garch"], "skill_%": m["skill_rmse_pct"],
                "dm_p_vs_persistence": m["dm_pvalue_naive"], "promotion_p": self.pvalue,
                "source": self.source, "last_date": self.last_date, "fallback": self.fallback}

    def console_line(self, ticker: str) -> str:
        """The one line the run's log gives the ticker."""
        m = self.metrics
        return (f"{ticker}: v{self.version} serves {self.forecaster}, source={self.source} "
                f"skill {m['skill_rmse_pct']:+.2f} % (DM p {m['dm_pvalue_naive']:.2g}), "
                f"coverage_95 {m['test_coverage_95']:.3f}, interval score "
                f"{m['test_interval_score_95']:.4f} vs EWMA {m['ewma_interval_score_95']:.4f}; "
                f"{self.reason}")


def summary_rows(tickers: tuple[str, ...], outcomes: dict[str, TickerOutcome],
                 failures: dict[str, str]) -> list[dict[str, Any]]:
    """The ``train-summary`` table: one row per ticker, a failed one with its root cause."""
    return [outcomes[t].row(t) if t in outcomes else
            {"ticker": t, "status": "FAILED", "decision": failures.get(t)} for t in tickers]


def decisions_markdown(tickers: tuple[str, ...], outcomes: dict[str, TickerOutcome],
                       failures: dict[str, str]) -> str:
    """Per ticker, in full: the promotion decision and which forecaster is served, and why
    (the table's reason column is cut off in the Prefect UI)."""
    lines = ["# stockcast: decisions", ""]
    for ticker in tickers:
        lines.append(f"## {ticker}")
        if ticker in failures:
            lines += ["", f"FAILED: {failures[ticker]}", ""]
            continue
        o = outcomes[ticker]
        lines += ["", f"- decision: {o.reason}", f"- forecaster: {o.forecaster_reason}", ""]
    return "\n".join(lines)


def data_warnings(outcomes: dict[str, TickerOutcome]) -> list[str]:
    """Stale prices that were not registered and fallbacks from the requested source."""
    stale = [f"STALE: {o.reason}" for o in outcomes.values() if not o.fresh and o.version is None]
    fallbacks = [f"FALLBACK: {t}: {o.fallback}" for t, o in outcomes.items()
                 if o.fallback != "none"]
    return stale + fallbacks
