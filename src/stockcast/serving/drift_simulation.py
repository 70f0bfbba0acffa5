"""Do drift alarms mean something? A simulation of the live monitor's CUSUM, which chose its
defaults (``bench/drift.py`` prints it; a test holds it).

How the sequences are made: on each bundled series, every day's close-to-close return and
its range-based sd (``range_variance``: overnight gap plus Garman-Klass) are divided by the
range-based EWMA sd of the day before (the default model's scale), and these pairs are
block-bootstrapped together in 20-day blocks (so fat tails, the range's link to the move and
short-range clustering stay) into 250-day calm sequences. The band follows each sequence
causally (the EWMA of the range variance, lambda 0.94) and is calibrated so that 95 % of calm
moves fall inside it, as split-conformal calibration does. The range monitor's reference
(mean and sd of u) comes from a separate 300-day calm sequence per run, as a champion's own
test span gives it. Two shocks from day 100: moves and ranges triple and the band does not
follow (the worst case: a model whose scale is stale), or they triple and the band adapts.
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
from stockcast.evaluation.tail_backtests import traffic_light
from stockcast.modeling.volatility import ewma_variance, range_variance
from stockcast.serving.drift import BAND_MISS_RATE, MOVES_CUSUM, Z95, band_cusum, cusum

WARMUP, DAYS, SHOCK_AT, BLOCK, REFERENCE_DAYS = 60, 250, 100, 20, 300


def standardised_days(ticker: str) -> np.ndarray:
    """[N, 2]: each day's return and range-based sd over the range EWMA sd of the day before."""
    frame = read_price_file(sample_path(ticker))
    r, v = np.diff(np.log(frame["Close"].to_numpy(float))), range_variance(frame)[1:]
    sigma = np.sqrt(ewma_variance(np.r_[np.nan, v]))
    return np.c_[r[1:] / sigma[1:-1], np.sqrt(v[1:]) / sigma[1:-1]][WARMUP:]


def _bootstrap(days: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    starts = rng.integers(0, len(days) - BLOCK, size=n // BLOCK + 2)
    return np.concatenate([days[s:s + BLOCK] for s in starts])[:n]


def _sequence(days, rng, shock: str | None, n: int = DAYS) -> tuple[np.ndarray, np.ndarray]:
    """z (signed) and the range over the band's sd for one sequence (before calibration)."""
    pairs = 0.01 * _bootstrap(days, WARMUP + n + 1, rng)
    r, q = pairs[:, 0], pairs[:, 1]
    if shock == "adapting":
        r[WARMUP + 1 + SHOCK_AT:] *= 3
        q[WARMUP + 1 + SHOCK_AT:] *= 3
    sigma = np.sqrt(ewma_variance(np.r_[np.nan, q ** 2]))
    z, ratio = (x[1:] / sigma[1:-1] for x in (r, q))
    z, ratio = z[WARMUP:WARMUP + n], ratio[WARMUP:WARMUP + n]
    if shock == "stale":
        z[SHOCK_AT:] *= 3
        ratio[SHOCK_AT:] *= 3
    return z, ratio


def _red_from(low: np.ndarray, cfg: MonitorConfig) -> int | None:
    """The first index at which the lower tail's Basel zone is red (from the minimum sample)."""
    exceeded = np.cumsum(low)
    for i in range(cfg.zone_min_forecasts - 1, len(low)):
        n = min(i + 1, cfg.tail_days)
        x = exceeded[i] - (exceeded[i - n] if i >= n else 0)
        if traffic_light(int(x), n, 0.025) == "red":
            return i
    return None


def _first_alarms(sequences, references, scale, quantiles, cfg, after: int = 0):
    """First alarm index (or None) per sequence, for each monitor and for every DRIFT path
    together (``any``: the range CUSUM, the band CUSUMs, the red zone)."""
    out: dict[str, list] = {k: [] for k in ("range", "moves", "band80", "band95", "red", "any")}
    thresholds = {80: cfg.band_cusum_threshold_80, 95: cfg.band_cusum_threshold_95}
    for (z, ratio), ref in zip(sequences, references, strict=True):
        z, ratio = z[after:], ratio[after:]
        u0 = np.log(np.maximum(ref / scale, 1e-4))
        w = (np.log(np.maximum(ratio / scale, 1e-4)) - u0.mean()) / u0.std(ddof=1)
        first = {"range": cusum(w, cfg.cusum_reference, cfg.cusum_cap,
                                cfg.cusum_threshold).first_alarm,
                 "moves": cusum(np.abs(z) / scale, *MOVES_CUSUM).first_alarm,
                 "red": _red_from(z < -quantiles[95], cfg)}
        for c in (80, 95):
            missed = (np.abs(z) > quantiles[c]).astype(float)
            first[f"band{c}"] = band_cusum(missed, BAND_MISS_RATE[c], thresholds[c]).first_alarm
        paths = [first[k] for k in ("range", "band80", "band95", "red") if first[k] is not None]
        first["any"] = min(paths) if paths else None
        for k, v in first.items():
            out[k].append(v)
    return out


def simulate(sequences: int = 2000, cfg: MonitorConfig | None = None, seed: int = 0) -> dict:
    """Per monitor: false-alarm rate on calm sequences and detection delays after each shock."""
    cfg = cfg or MonitorConfig()
    rng = np.random.default_rng(seed)
    days = [standardised_days(t) for t in SAMPLE_TICKERS]
    calm = [_sequence(days[i % len(days)], rng, None) for i in range(sequences)]
    refs = [_sequence(days[i % len(days)], rng, None, REFERENCE_DAYS)[1]
            for i in range(sequences)]
    moves = np.abs(np.concatenate([c[0] for c in calm]))
    # The calibration: each band holds its share of calm moves, as split-conformal makes it.
    quantiles = {c: float(np.quantile(moves, 1 - BAND_MISS_RATE[c])) for c in BAND_MISS_RATE}
    scale = quantiles[95] / Z95
    out = {"sequences": sequences}
    for monitor, alarms in _first_alarms(calm, refs, scale, quantiles, cfg).items():
        out[monitor] = {"false_alarm_rate": float(np.mean([a is not None for a in alarms]))}
    for shock in ("stale", "adapting"):
        shocked = [_sequence(days[i % len(days)], rng, shock) for i in range(sequences)]
        for monitor, alarms in _first_alarms(shocked, refs, scale, quantiles, cfg,
                                             SHOCK_AT).items():
            delays = np.array([999 if a is None else a + 1 for a in alarms])
            out[monitor][shock] = {"median_delay": float(np.median(delays)),
                                   "p75_delay": float(np.percentile(delays, 75)),
                                   "detected_within_20": float(np.mean(delays <= 20))}
    return out
