"""Do drift alarms mean something? A simulation of the live monitor's CUSUM, which chose its
defaults (``bench/drift.py`` prints it; a test holds it).

How the sequences are made: on each bundled series, every day's close-to-close return and
its range-based sd (``range_variance``: overnight gap plus Garman-Klass) are divided by the
range-based EWMA sd of the day before (the default model's scale), and these pairs are
block-bootstrapped together in 20-day blocks (so fat tails, the range's link to the move and
short-range clustering stay) into 250-day calm sequences. The band follows each sequence
causally (the EWMA of the range variance, lambda 0.94) and is calibrated so that 95 % of calm
moves fall inside it, as split-conformal calibration does. Served, those quantiles are then
tracked as ``adapted_forecast`` tracks them (``tracking``: each sequence starts after
``tracking.window`` calm days for it to replay), and the band CUSUMs and the red zone read the
tracked bands while the range CUSUM reads the model's own width, as the live monitor does
(``drift.model_sd``); without tracking the bands stay as calibrated. The range monitor's reference
(mean and sd of u) comes from a separate 300-day calm sequence per run, as a champion's own
test span gives it. Three shocks from day 100: moves and ranges triple and the band does not
follow (the worst case: a model whose scale is stale), or they triple and the band adapts, or
every move shifts up by about one sd with the ranges unchanged (``bias``: a trend the model's
location misses); with the served bands' coverage from the shock on.
Reported per monitor (the range CUSUM, and the |z| CUSUM used without a reference), for each
band's coverage CUSUM (its misses against the band calibrated to 80 % / 95 % of calm moves),
for the Basel red zone of the lower 2.5 % quantile (read from ``zone_min_forecasts`` on), and
for every path that can raise DRIFT together (the range CUSUM, both band CUSUMs, the red
zone): the share of calm sequences with any alarm, and the sessions from the shock to the
first alarm (999 when none came within the 150 sessions left).
"""

from __future__ import annotations

import numpy as np

from stockcast.config import MonitorConfig
from stockcast.data.files import SAMPLE_TICKERS, read_price_file, sample_path
from stockcast.evaluation.tail_backtests import in_red_zone
from stockcast.modeling.adaptive import Tracking, track_quantiles
from stockcast.modeling.intervals import QUANTILES, central_interval
from stockcast.modeling.volatility import ewma_variance, range_variance
from stockcast.serving.drift import BAND_MISS_RATE, MOVES_CUSUM, Z95, band_cusum, cusum

WARMUP, DAYS, SHOCK_AT, BLOCK, REFERENCE_DAYS = 60, 250, 100, 20, 300
BIAS = 1.0  # the "bias" shock: each day's move shifted up by about one sd (z's sd is ~1.03)
SHOCKS = ("stale", "adapting", "bias")


def standardised_days(ticker: str) -> np.ndarray:
    """[N, 2]: each day's return and range-based sd over the range EWMA sd of the day before."""
    frame = read_price_file(sample_path(ticker))
    r, v = np.diff(np.log(frame["Close"].to_numpy(float))), range_variance(frame)[1:]
    sigma = np.sqrt(ewma_variance(np.r_[np.nan, v]))
    return np.c_[r[1:] / sigma[1:-1], np.sqrt(v[1:]) / sigma[1:-1]][WARMUP:]


def _bootstrap(days: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    starts = rng.integers(0, len(days) - BLOCK, size=n // BLOCK + 2)
    return np.concatenate([days[s:s + BLOCK] for s in starts])[:n]


def _sequence(days, rng, shock: str | None, n: int = DAYS, past: int = 0
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z (signed), the range over the band's sd and the band's sd itself for one sequence of
    ``past`` calm days (the served tracking's replayed history) and ``n`` monitored ones."""
    pairs = 0.01 * _bootstrap(days, WARMUP + past + n + 1, rng)
    r, q = pairs[:, 0], pairs[:, 1]
    at = past + SHOCK_AT
    if shock == "adapting":
        r[WARMUP + 1 + at:] *= 3
        q[WARMUP + 1 + at:] *= 3
    sigma = np.sqrt(ewma_variance(np.r_[np.nan, q ** 2]))
    kept = slice(WARMUP, WARMUP + past + n)
    z, ratio, sd = (x[kept] for x in (r[1:] / sigma[1:-1], q[1:] / sigma[1:-1], sigma[1:-1]))
    if shock == "stale":
        z[at:] *= 3
        ratio[at:] *= 3
    if shock == "bias":  # a trend the model's location misses; the volatility is unchanged
        z[at:] += BIAS
    return z, ratio, sd


def _served_bounds(sequences, quantiles: dict, tracking: Tracking | None,
                   past: int) -> list[np.ndarray]:
    """Each sequence's served 2.5/10/50/90/97.5 % bounds [n, 5] on its monitored days, in z:
    the calibrated quantiles, or those tracked over the sequence's realised past as
    ``adapted_forecast`` serves them (one call for all sequences: each position's window
    reaches back ``past`` days at most, never into the sequence before)."""
    z0 = np.array([[-quantiles[95], -quantiles[80], 0.0, quantiles[80], quantiles[95]]])
    n = len(sequences[0][0]) - past
    if tracking is None or not tracking.enabled:
        return [np.repeat(z0, n, axis=0)] * len(sequences)
    z = np.concatenate([s[0] for s in sequences])[:, None]
    unit = np.concatenate([s[2] for s in sequences])[:, None]  # the sd: one unit of score
    positions = np.concatenate([i * (past + n) + np.arange(past, past + n)
                                for i in range(len(sequences))])
    tracked = track_quantiles(z0, z, positions, QUANTILES, tracking, unit)[:, 0, :]
    return np.split(tracked, len(sequences))


def _red_from(low: np.ndarray, cfg: MonitorConfig) -> int | None:
    """The first index at which the lower tail's Basel zone is red (from the minimum sample)."""
    exceeded = np.r_[0, np.cumsum(low)]
    i = np.arange(cfg.zone_min_forecasts - 1, len(low))
    n = np.minimum(i + 1, cfg.tail_days)
    red = in_red_zone(exceeded[i + 1] - exceeded[i + 1 - n], n, 0.025)
    return int(i[red.argmax()]) if red.any() else None


def _first_alarms(sequences, references, scale, bounds, cfg, past: int, after: int = 0):
    """First alarm index (or None) per sequence, for each monitor and for every DRIFT path
    together (``any``: the range CUSUM, the band CUSUMs, the red zone), read as the live
    monitor reads a ledger: the bands as served (``bounds``), the range against the model's
    own width (``scale``, what ``drift.model_sd`` recovers from a served row)."""
    out: dict[str, list] = {k: [] for k in ("range", "moves", "band80", "band95", "red", "any")}
    thresholds = {80: cfg.band_cusum_threshold_80, 95: cfg.band_cusum_threshold_95}
    for (z, ratio, _), ref, b in zip(sequences, references, bounds, strict=True):
        z, ratio, b = z[past + after:], ratio[past + after:], b[after:]
        u0 = np.log(np.maximum(ref / scale, 1e-4))
        w = (np.log(np.maximum(ratio / scale, 1e-4)) - u0.mean()) / u0.std(ddof=1)
        lo95, hi95 = _band(b, 95)
        served_sd = (hi95 - lo95) / (2 * Z95)  # the sd the served band implies
        first = {"range": cusum(w, cfg.cusum_reference, cfg.cusum_cap,
                                cfg.cusum_threshold).first_alarm,
                 "moves": cusum(np.abs(z) / served_sd, *MOVES_CUSUM).first_alarm,
                 "red": _red_from(z < lo95, cfg)}
        for c in (80, 95):
            lo, hi = _band(b, c)
            missed = ((z < lo) | (z > hi)).astype(float)
            first[f"band{c}"] = band_cusum(missed, BAND_MISS_RATE[c], thresholds[c]).first_alarm
        paths = [first[k] for k in ("range", "band80", "band95", "red") if first[k] is not None]
        first["any"] = min(paths) if paths else None
        for k, v in first.items():
            out[k].append(v)
    return out


def _band(bounds: np.ndarray, coverage: int) -> tuple[np.ndarray, np.ndarray]:
    """The central ``coverage`` % band of bounds [n, 5] at ``QUANTILES``."""
    lo, hi = central_interval(bounds[:, None, :], QUANTILES, coverage / 100)
    return lo[:, 0], hi[:, 0]


def _coverage(sequences, bounds, past: int) -> dict[str, float]:
    """The served bands' coverage of the moves from the shock on, pooled over sequences."""
    z = np.concatenate([s[0][past + SHOCK_AT:] for s in sequences])
    b = np.concatenate([x[SHOCK_AT:] for x in bounds])
    return {f"coverage_{c}": float(np.mean((z >= _band(b, c)[0]) & (z <= _band(b, c)[1])))
            for c in (80, 95)}


def simulate(sequences: int = 2000, cfg: MonitorConfig | None = None, seed: int = 0,
             tracking: Tracking | None = None) -> dict:
    """Per monitor: false-alarm rate on calm sequences and detection delays after each shock,
    with the bands calibrated once (``tracking`` None) or tracked as served."""
    cfg = cfg or MonitorConfig()
    rng = np.random.default_rng(seed)
    past = tracking.window if tracking is not None and tracking.enabled else 0
    days = [standardised_days(t) for t in SAMPLE_TICKERS]
    calm = [_sequence(days[i % len(days)], rng, None, past=past) for i in range(sequences)]
    refs = [_sequence(days[i % len(days)], rng, None, REFERENCE_DAYS)[1]
            for i in range(sequences)]
    moves = np.abs(np.concatenate([c[0][past:] for c in calm]))
    # The calibration: each band holds its share of calm moves, as split-conformal makes it.
    quantiles = {c: float(np.quantile(moves, 1 - BAND_MISS_RATE[c])) for c in BAND_MISS_RATE}
    scale = quantiles[95] / Z95
    out: dict = {"sequences": sequences}
    bounds = _served_bounds(calm, quantiles, tracking, past)
    for monitor, alarms in _first_alarms(calm, refs, scale, bounds, cfg, past).items():
        out[monitor] = {"false_alarm_rate": float(np.mean([a is not None for a in alarms]))}
    out["coverage_after_shock"] = {}
    for shock in SHOCKS:
        shocked = [_sequence(days[i % len(days)], rng, shock, past=past)
                   for i in range(sequences)]
        bounds = _served_bounds(shocked, quantiles, tracking, past)
        out["coverage_after_shock"][shock] = _coverage(shocked, bounds, past)
        for monitor, alarms in _first_alarms(shocked, refs, scale, bounds, cfg, past,
                                             SHOCK_AT).items():
            delays = np.array([999 if a is None else a + 1 for a in alarms])
            out[monitor][shock] = {"median_delay": float(np.median(delays)),
                                   "p75_delay": float(np.percentile(delays, 75)),
                                   "detected_within_20": float(np.mean(delays <= 20))}
    return out
