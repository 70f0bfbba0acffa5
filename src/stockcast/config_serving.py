"""The serving sections of the pipeline's configuration (``stockcast.config`` re-exports them):
how served intervals adapt, how each champion is monitored live, where forecasts and
notifications go. Frozen pydantic models, like every other section."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    """The base of every config section: immutable, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class MonitorConfig(Frozen):
    """Live monitoring of each champion by the forecast flow."""

    # Live metrics (RMSE, coverage, interval score) over this many recent scored forecasts.
    window: int = Field(default=20, ge=2, le=10_000)
    # Drift: Page's CUSUM of min(w, cap) - reference over every scored one-step forecast,
    # w = the day's range against its 95 % interval, standardised on the champion's test span.
    # Defaults measured in bench/drift.py (docs/operating.md: false alarms and delays).
    cusum_reference: float = Field(default=1.0, gt=0, le=10)
    cusum_cap: float = Field(default=3.0, gt=0, le=100)
    cusum_threshold: float = Field(default=4.25, gt=0, le=1000)
    # Each band's coverage: a Bernoulli CUSUM of its misses (H1: twice the promised rate),
    # over every scored one-step forecast; thresholds from the simulation (docs/operating.md).
    band_cusum_threshold_80: float = Field(default=8.0, gt=0, le=1000)
    band_cusum_threshold_95: float = Field(default=5.5, gt=0, le=1000)
    # The 2.5 % and 10 % quantiles' backtests (Kupiec, Christoffersen) and the Basel zone of
    # the 2.5 % one over the last ``tail_days``; the zone only from ``zone_min_forecasts``
    # (fewer: "too few for a zone", never yellow or red; docs/operating.md says why 20).
    tail_days: int = Field(default=250, ge=20, le=10_000)
    zone_min_forecasts: int = Field(default=20, ge=3, le=10_000)
    # On drift, also start the retraining deployment (needs a Prefect server).
    retrain_deployment: str | None = None


class NotifyConfig(Frozen):
    """Where failures go (an Apprise URL: slack://..., mailto://...; None: $STOCKCAST_NOTIFY_URL)."""

    url: str | None = None


class IntervalConfig(Frozen):
    """How the served intervals follow the forecaster's recent misses (modeling/adaptive.py):
    each bound's quantile is tracked over the last ``adapt_window`` realised forecasts before
    the origin, per horizon step, with gain ``adapt_step`` on the log of its distance from the
    median. Either at 0: the static split-conformal calibration. ``adapt_target``: what each
    bound aims at, ``coverage`` (the tracked quantile: each year's misses held near the
    promise) or ``score`` (the static and the tracked quantile mixed by their loss: calm years
    score like the static bands, a year's coverage wanders more). Measured in bench/served.py."""

    adapt_window: int = Field(default=250, ge=0, le=5000)
    adapt_step: float = Field(default=0.1, ge=0, le=1)
    adapt_target: Literal["coverage", "score"] = "coverage"


class ForecastConfig(Frozen):
    """The forecast flow's output."""

    output_dir: Path = Path("forecasts")
