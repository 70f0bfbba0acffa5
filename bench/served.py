"""Unseen days: a champion trained on prices to a cut date, then served every later session
for a year through the served path (the pyfunc's adaptive calibration), against the same
champion with its static split-conformal bands. Defaults throughout (the pipeline's own
choice of forecaster, LSTM or volatility model); nothing is tuned to these series.

Cases: each bundled series cut before the 2008 crisis and before calm 2012, and synthetic
series of our making (calm years, then the volatility tripled for a year, then calm again).
The adapted bands are computed for every day at once (``adapted_forecast`` is causal: the
tests check that a day's answer reads no later row); a few days are checked against the
pyfunc called with that day's rows only, as a client would call it."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
from scipy.stats import binom, norm

from stockcast.config import PipelineConfig
from stockcast.data.files import SAMPLE_TICKERS, read_price_file, sample_path
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import PriceData
from stockcast.evaluation.forecaster_choice import Choice, choose_forecaster
from stockcast.evaluation.scorecard import (
    evaluate_model,
    interval_metrics,
    score_all,
    score_test_span,
)
from stockcast.modeling.adaptive import Tracking, adapted_forecast
from stockcast.modeling.forecaster import Forecast, forecast_from
from stockcast.modeling.recipe import fit_and_calibrate, fit_for_serving
from stockcast.registry.pyfunc import StockcastForecaster

CUTS = ("2007-12-31", "2011-12-30")
SESSIONS = 252
# The settings measured beside the default (the config's window 250, step 0.1).
ALTERNATIVES = {"step 0.05": Tracking(window=250, step=0.05),
                "step 0.2": Tracking(window=250, step=0.2),
                "window 500, step 0.05": Tracking(window=500, step=0.05),
                "aimed at the score": Tracking(window=250, step=0.1, target="score")}
# The constant factors on the static bands' distance from the median tried in hindsight.
RESCALES = np.round(np.arange(0.7, 1.51, 0.02), 2)
TARGETS = {"coverage_95": (0.95, 0.01), "coverage_80": (0.8, 0.02)}


def calibrated_chance(days: int, nominal: float, tolerance: float) -> float:
    """The chance that a perfectly calibrated band (independent hits, probability ``nominal``)
    covers within ``tolerance`` of nominal over ``days``: the sampling noise of the target."""
    hits = np.arange(days + 1)
    inside = np.abs(hits / days - nominal) <= tolerance + 1e-12
    return float(binom.pmf(hits[inside], days, nominal).sum())


@functools.lru_cache
def calibrated_chance_at_step(days: int, nominal: float, tolerance: float, step: int,
                              repeats: int = 20_000) -> float:
    """``calibrated_chance`` for the ``step``-ahead band over ``days`` consecutive origins,
    whose outcomes overlap by ``step - 1`` days, so their hits are not independent: simulated
    (Gaussian days, the exact central quantile of their ``step``-day sum, fixed seed)."""
    if step == 1:
        return calibrated_chance(days, nominal, tolerance)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((repeats, days + step))
    sums = sum(z[:, i:i + days] for i in range(1, step + 1)) / np.sqrt(step)
    covered = (np.abs(sums) <= norm.ppf(0.5 + nominal / 2)).mean(axis=1)
    return float(np.mean(np.abs(covered - nominal) <= tolerance + 1e-12))


def regime_prices(seed: int, calm_years: int = 8, vol: float = 0.01) -> pd.DataFrame:
    """Calm years with volatility clustering (GARCH(1,1)-t), then one year at three times the
    volatility, then calm again; OHLC from the same daily variance."""
    calm = calm_years * SESSIONS
    n = calm + 2 * SESSIONS + 60
    level = np.where((np.arange(n) >= calm) & (np.arange(n) < calm + SESSIONS), 3.0, 1.0)
    return garch_prices(np.random.default_rng(seed), level, vol)


def garch_prices(rng: np.random.Generator, level: np.ndarray, vol: float = 0.01
                 ) -> pd.DataFrame:
    """Daily prices with GARCH(1,1)-t volatility clustering around ``vol``, multiplied by
    ``level`` (one factor a session: the regime); OHLC from the same daily variance."""
    n = len(level)
    shocks = rng.standard_t(5, n) * np.sqrt(3 / 5)
    var, r = vol**2, np.empty(n)
    omega, alpha, beta = vol**2 * 0.05, 0.07, 0.88
    for t in range(n):
        r[t] = np.sqrt(var) * level[t] * shocks[t]
        var = omega + alpha * (r[t] / level[t]) ** 2 + beta * var
    close = 100 * np.exp(np.cumsum(r))
    sd = np.abs(r) + vol * level * 0.3
    open_ = np.r_[100, close[:-1]] * np.exp(rng.normal(0, vol * level / 4))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, sd / 2)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, sd / 2)))
    return pd.DataFrame({"Date": pd.bdate_range("2000-01-03", periods=n), "Open": open_,
                         "High": high, "Low": low, "Close": close, "Volume": 1e6})


def _validated(ticker: str, frame: pd.DataFrame, cfg: PipelineConfig) -> pd.DataFrame:
    return validate_prices(PriceData(ticker, frame, "sample", ticker), cfg.window,
                           cfg.validation).frame


def serve_year(frame: pd.DataFrame, cut: int, cfg: PipelineConfig, label: str) -> dict:
    """Train the pipeline's served forecaster on rows < ``cut``, serve rows cut-1 .. for a year:
    coverage and interval score of the adapted and the static bands, per step."""
    train = cfg.train.model_copy(update={"threads": os.cpu_count() or 1, "progress": False})
    seen = frame.iloc[:cut].reset_index(drop=True)
    fit = fit_and_calibrate(seen, cfg.window, cfg.model, train)
    evaluation = evaluate_model(fit, label, cfg.promotion.alpha)
    served = fit_for_serving(fit, cfg.model, train,
                             None if evaluation.choice.is_lstm else evaluation.evaluated).forecaster
    h = cfg.window.horizon
    days = np.arange(cut - 1, min(cut - 1 + SESSIONS, len(frame) - h))
    close = frame["Close"].to_numpy(np.float64)
    actual = np.stack([close[days + k] for k in range(1, h + 1)], axis=1)
    tracking = Tracking.from_config(cfg.intervals)
    adapted = adapted_forecast(served, frame, days, tracking)
    forecasts = {"adaptive": adapted.forecast,
                 "static": adapted_forecast(served, frame, days, Tracking(window=0)).forecast,
                 **{name: adapted_forecast(served, frame, days, t).forecast
                    for name, t in ALTERNATIVES.items()}}
    best, forecasts["hindsight"] = hindsight(served, frame, days, actual)
    pyfunc = StockcastForecaster(served, label, tracking=tracking)
    for d in days[[0, len(days) // 2, -1]]:  # the service, called with that day's rows only
        answer = pyfunc.predict(None, frame.iloc[:d + 1])
        np.testing.assert_allclose(answer["upper_95"], adapted.forecast.interval(0.95)[1][
            d - days[0]], rtol=1e-6)  # the request holds the recent rows only
    out = {"label": label, "served": evaluation.choice.tag, "days": int(len(days)),
           "from": str(frame["Date"].iloc[days[0]].date()),
           "to": str(frame["Date"].iloc[days[-1]].date())}
    out["hindsight_factor"] = best
    for name, fc in forecasts.items():
        steps = []
        for k in range(h):
            m = interval_metrics("s", fc.quantiles[:, k:k + 1], fc.levels, actual[:, k:k + 1],
                                 close[days])
            steps.append({c: m[f"s_{c}"] for c in ("coverage_80", "coverage_95",
                                                   "interval_score_95")})
        out[name] = steps
    out["band_ratio_95"] = {"median": float(np.median(adapted.width_ratio(0.95)[:, 0])),
                            "max": float(np.max(adapted.width_ratio(0.95)[:, 0]))}
    if h == 1:
        out["on_adapted"] = choice_on_adapted(fit, frame, days, cfg, train, evaluation.choice)
    return out


def choice_on_adapted(fit, frame: pd.DataFrame, days: np.ndarray, cfg: PipelineConfig,
                      train, chosen: Choice) -> dict:
    """The forecaster the same rule would serve if it compared every forecaster's adapted
    test-span bands instead of the static ones (``choose_forecaster`` on their ``score_all``),
    and, when that is another one, its own served bands' interval score over ``days``."""
    tracking = Tracking.from_config(cfg.intervals)
    span, data = score_test_span(fit), fit.data
    origins = data.test.origins
    bands = {prefix: adapted_forecast(b, data.frame, origins, tracking).forecast.quantiles
             for prefix, b in span.baselines.items()}
    lstm = adapted_forecast(fit.forecaster, data.frame, origins, tracking).forecast
    other = choose_forecaster(score_all(lstm, span.actual, span.last, span.drift, bands),
                              cfg.promotion.alpha)
    out = {"tag": other.tag, "pvalue": other.pvalue}
    if other.tag != chosen.tag:
        served = fit_for_serving(fit, cfg.model, train, None if other.is_lstm else
                                 span.baselines[other.prefix]).forecaster
        fc = adapted_forecast(served, frame, days, tracking).forecast
        out["interval_score_95"] = one_step_scores(fc, frame, days)["interval_score_95"]
    return out


def one_step_scores(forecast: Forecast, frame: pd.DataFrame, days: np.ndarray) -> dict:
    """The one-step forecasts at ``days`` scored on what followed: coverage 80 and 95 and
    the 95 % interval score."""
    close = frame["Close"].to_numpy(np.float64)
    m = interval_metrics("s", forecast.quantiles[:, :1], forecast.levels,
                         close[days + 1][:, None], close[days])
    return {c: m[f"s_{c}"] for c in ("coverage_80", "coverage_95", "interval_score_95")}


def hindsight(forecaster, frame: pd.DataFrame, days: np.ndarray, actual: np.ndarray
              ) -> tuple[float, Forecast]:
    """The static bands with their distance from the median times the factor in ``RESCALES``
    that scores best on the year itself (chosen after seeing it): what no constant
    recalibration can beat. The forecaster's location and scale are computed once."""
    loc, scale, log_space = forecaster.location_scale(frame, days)
    z0 = np.asarray(forecaster.calibration, np.float64)
    median = z0[:, list(forecaster.levels).index(0.5)][:, None]
    last = frame["Close"].to_numpy(np.float64)[days]
    rescaled = {float(f): forecast_from(loc, scale, median + (z0 - median) * f, frame, days,
                                        log_space, forecaster.levels) for f in RESCALES}
    best = min(rescaled, key=lambda f: _last_step_score(rescaled[f], actual, last))
    return best, rescaled[best]


def _last_step_score(forecast, actual: np.ndarray, last: np.ndarray) -> float:
    k = actual.shape[1] - 1
    return interval_metrics("s", forecast.quantiles[:, k:k + 1], forecast.levels,
                            actual[:, k:k + 1], last)["s_interval_score_95"]


def named_cuts(frame: pd.DataFrame, horizon: int) -> list[int]:
    """The served case's cuts: before the 2008 crisis and before calm 2012 (horizon 5: the
    first only), as the rows just after each cut date."""
    dates = CUTS if horizon == 1 else CUTS[:1]
    return [int(np.searchsorted(frame["Date"], pd.Timestamp(d), side="right")) for d in dates]


def bench_served(horizons: tuple[int, ...] = (1, 5), synthetic: range = range(2),
                 cuts: Callable[[pd.DataFrame, int], list[int]] = named_cuts,
                 about: Callable[[pd.DataFrame, int], dict] = lambda frame, cut: {},
                 more: Callable[[PipelineConfig], Iterable[tuple]] = lambda cfg: ()) -> dict:
    """Every case at each horizon: each bundled series at its ``cuts``, and at horizon 1 the
    synthetic regime series and the (frame, cut, label) cases of ``more`` (marked ``more``);
    ``about`` adds what a caller records of a case."""
    out: dict = {"cases": []}
    for h in horizons:
        cfg = PipelineConfig()
        cfg = cfg.model_copy(update={"window": cfg.window.model_copy(update={"horizon": h})})
        series = [(_validated(t, read_price_file(sample_path(t)), cfg), t) for t in SAMPLE_TICKERS]
        cases = [(frame, cut, f"{ticker} to {frame['Date'].iloc[cut - 1].date()}")
                 for frame, ticker in series for cut in cuts(frame, h)]
        extra = list(more(cfg)) if h == 1 else []
        if h == 1:
            cases += list(regime_cuts(synthetic, cfg))
        for i, (frame, cut, label) in enumerate(cases + extra):
            out["cases"].append({"horizon": h, "more": i >= len(cases), **about(frame, cut),
                                 **serve_year(frame, cut, cfg, label)})
    return out


def regime_cuts(seeds: range, cfg: PipelineConfig):
    """Each synthetic regime series (validated) with its two cuts: at the start of the tripled
    year and at its end (calm again), and their labels."""
    for seed in seeds:
        frame = _validated(f"SYN{seed}", regime_prices(seed), cfg)
        calm = 8 * SESSIONS
        for cut, what in ((calm, "tripled"), (calm + SESSIONS, "calm again")):
            yield frame, cut, f"synthetic {seed}: {what}"


def setting_labels(hindsight: str) -> list[tuple[str, str]]:
    """Each setting a case scores (its key in the case) and its row label, in table order."""
    return [("adaptive", "default: window 250, step 0.1"), *((n, n) for n in ALTERNATIVES),
            ("static", "static split-conformal"), ("hindsight", hindsight)]


def within(cases: list[dict], name: str, metric: str) -> str:
    """How many one-step ``cases`` kept setting ``name``'s ``metric`` within its target, and
    the mean distance from nominal in points: ``4/10 (0.9)``."""
    nominal, tolerance = TARGETS[metric]
    values = np.array([c[name][0][metric] for c in cases])
    inside = int(np.sum(np.abs(values - nominal) <= tolerance + 1e-9))
    return f"{inside}/{len(values)} ({100 * np.mean(np.abs(values - nominal)):.1f})"


def score_change(cases: list[dict], name: str) -> np.ndarray:
    """Setting ``name``'s one-step interval score 95 relative to the static bands', per case."""
    return np.array([c[name][0]["interval_score_95"] / c["static"][0]["interval_score_95"] - 1
                     for c in cases])


def _tradeoff(result: dict) -> list[str]:
    """Each setting's years within target and interval score against static, horizon 1."""
    one = [c for c in result["cases"] if c["horizon"] == 1]
    lines = ["", "**The trade-off of the tracking's gain** (horizon 1, every case above: how "
              "many years kept each band within its target, 95 % in 0.94-0.96 and 80 % in "
              "0.78-0.82, the mean distance from nominal, and the interval score against the "
              "static bands; *hindsight* is the best constant rescaling of each case's static "
              "bands chosen after the year was seen, what no calibration that rescales can "
              "beat on average):", "",
              "| setting | 95 % within (mean miss pp) | 80 % within (mean miss pp) | interval "
              "score vs static: mean, worst |", "|---|---:|---:|---:|"]
    factors = ", ".join(f"{c['hindsight_factor']:.2f}" for c in one)
    for name, label in setting_labels(f"hindsight: best constant rescaling (factors {factors})"):
        rel = score_change(one, name)
        lines.append(f"| {label} | {within(one, name, 'coverage_95')} | "
                     f"{within(one, name, 'coverage_80')} | {100 * rel.mean():+.1f} %, "
                     f"{100 * rel.max():+.1f} % |")
    chance = {k: calibrated_chance(SESSIONS, *t) for k, t in TARGETS.items()}
    lines.append(f"| a perfectly calibrated band (expected, binomial over {SESSIONS} sessions) | "
                 f"{chance['coverage_95'] * len(one):.1f}/{len(one)} | "
                 f"{chance['coverage_80'] * len(one):.1f}/{len(one)} | |")
    return lines


def markdown(result: dict) -> list[str]:
    """The unseen-days table for docs/benchmarks.md."""
    lines = ["**Unseen days** (a champion trained to the cut, then served every session for a "
             "year through the served path; adaptive = the served bands, static = the same "
             "champion's split-conformal bands; interval score 95 in price units, lower is "
             "better; the last step at horizon 5):", "",
             "| case | served | h | days | coverage 80 adaptive / static | coverage 95 adaptive "
             "/ static | interval score 95 adaptive / static | band ratio 95 median, max | "
             "hindsight: factor, coverage 95, score vs static |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in result["cases"]:
        a, s, best = c["adaptive"][-1], c["static"][-1], c["hindsight"][-1]
        change = 100 * (a["interval_score_95"] / s["interval_score_95"] - 1)
        gain = 100 * (best["interval_score_95"] / s["interval_score_95"] - 1)
        lines.append(
            f"| {c['label']} ({c['from']} .. {c['to']}) | {c['served']} | {c['horizon']} | "
            f"{c['days']} | {a['coverage_80']:.3f} / {s['coverage_80']:.3f} | "
            f"{a['coverage_95']:.3f} / {s['coverage_95']:.3f} | {a['interval_score_95']:.3f} / "
            f"{s['interval_score_95']:.3f} ({change:+.1f} %) | "
            f"{c['band_ratio_95']['median']:.2f}, {c['band_ratio_95']['max']:.2f} | "
            f"{c['hindsight_factor']:.2f}, {best['coverage_95']:.3f}, {gain:+.1f} % |")
    lines += _tradeoff(result)
    multi = [c for c in result["cases"] if c["horizon"] > 1]
    if multi:
        lines += ["", "**Horizon 5 per step** (served, adaptive / static):", "",
                  "| case | step | coverage 80 | coverage 95 |", "|---|---:|---:|---:|"]
        for c in multi:
            for k, (a, s) in enumerate(zip(c["adaptive"], c["static"], strict=True), start=1):
                lines.append(f"| {c['label']} | {k} | {a['coverage_80']:.3f} / "
                             f"{s['coverage_80']:.3f} | {a['coverage_95']:.3f} / "
                             f"{s['coverage_95']:.3f} |")
    return [*lines, ""]
