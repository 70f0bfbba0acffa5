"""Do drift alarms mean something? A simulation of the live monitor's CUSUM, which chose its
defaults (``bench/drift.py`` prints it; a test holds it).

How the sequences are made: the one-step errors of the EWMA band on each bundled series,
standardised (return / the band's volatility the day before), are block-bootstrapped in
20-day blocks (so their fat tails and short-range clustering stay) into 250-day calm
sequences of returns; the band follows them causally (EWMA, as the served model's scale does)
and is calibrated so that 95 % of calm moves fall inside it, as split-conformal calibration
does. Two shocks from day 100: the moves triple and the band does not follow (the worst case:
a model whose scale is stale), or the moves triple and the band adapts (EWMA, lambda 0.94).
Reported: the share of calm sequences with any alarm, and the sessions from the shock to the
first alarm (999 when none came within the 150 sessions left).
"""

from __future__ import annotations

import numpy as np

from stockcast.config import MonitorConfig
from stockcast.data.files import SAMPLE_TICKERS, read_price_file, sample_path
from stockcast.modeling.volatility import ewma_volatility
from stockcast.serving.drift import Z95, cusum

WARMUP, DAYS, SHOCK_AT, BLOCK = 60, 250, 100, 20


def standardised_errors(ticker: str) -> np.ndarray:
    """The EWMA band's one-step standardised errors on a bundled series."""
    close = read_price_file(sample_path(ticker))["Close"].to_numpy(float)
    r, sigma = np.diff(np.log(close)), ewma_volatility(close)
    return (r[1:] / sigma[1:-1])[WARMUP:]


def _bootstrap(errors: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    starts = rng.integers(0, len(errors) - BLOCK, size=n // BLOCK + 2)
    return np.concatenate([errors[s:s + BLOCK] for s in starts])[:n]


def _moves(errors, rng, shock: str | None) -> np.ndarray:
    """|z| of one 250-day sequence (before calibration)."""
    r = 0.01 * _bootstrap(errors, WARMUP + DAYS + 1, rng)
    if shock == "adapting":
        r[WARMUP + 1 + SHOCK_AT:] *= 3
    sigma = ewma_volatility(np.exp(np.r_[0.0, np.cumsum(r)]))
    z = (r[1:] / sigma[1:-1])[WARMUP:WARMUP + DAYS]
    if shock == "stale":
        z[SHOCK_AT:] *= 3
    return np.abs(z)


def simulate(sequences: int = 2000, cfg: MonitorConfig | None = None, seed: int = 0) -> dict:
    """False-alarm rate on calm sequences and detection delays after each shock."""
    cfg = cfg or MonitorConfig()
    rng = np.random.default_rng(seed)
    errors = [standardised_errors(t) for t in SAMPLE_TICKERS]
    calm = [_moves(errors[i % len(errors)], rng, None) for i in range(sequences)]
    scale = np.quantile(np.concatenate(calm), 0.95) / Z95  # the conformal calibration

    def first_alarm(moves):
        return cusum(moves / scale, cfg.cusum_reference, cfg.cusum_cap,
                     cfg.cusum_threshold).first_alarm

    out = {"sequences": sequences, "false_alarm_rate": float(np.mean(
        [first_alarm(m) is not None for m in calm]))}
    for shock in ("stale", "adapting"):
        delays = []
        for i in range(sequences):
            after = _moves(errors[i % len(errors)], rng, shock)[SHOCK_AT:]
            hit = first_alarm(after)
            delays.append(999 if hit is None else hit + 1)
        out[shock] = {"median_delay": float(np.median(delays)),
                      "p75_delay": float(np.percentile(delays, 75)),
                      "detected_within_20": float(np.mean(np.array(delays) <= 20))}
    return out
