"""Causal daily volatility estimates: the close-to-close EWMA (RiskMetrics), the same EWMA on
the day's range-based variance (overnight gap plus Garman-Klass), a HAR regression on that
variance, and GARCH(1,1) with Student-t errors from ``arch``. Each gives, at every origin
row t, the standard deviation of the cumulative log return over the next 1..h sessions using
rows <= t only (fitted parameters come from the training rows alone).

The range-based daily variance (Garman & Klass 1980, with the overnight gap of Yang & Zhang)
    v_t = ln(O_t / C_{t-1})^2 + 0.5 ln(H_t / L_t)^2 - (2 ln 2 - 1) ln(C_t / O_t)^2
uses the day's high and low, which carry several times the information of the close alone
about that day's variance; on a day with O = H = L = C it is the squared close-to-close return.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

EWMA_LAMBDA = 0.94
EWMA_WARMUP_RETURNS = 21  # about a month of sessions seeds the recursion
_GK_BODY = 2.0 * np.log(2.0) - 1.0
_VAR_FLOOR = 1e-12
HAR_LAGS = (1, 5, 22)  # day, week, month (Corsi 2009)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype=np.float64)


def squared_returns(close: np.ndarray) -> np.ndarray:
    """Squared close-to-close log returns per row [N]; row 0 (no previous close) is NaN."""
    close = np.asarray(close, dtype=np.float64)
    return np.r_[np.nan, np.diff(np.log(close)) ** 2]


def range_variance(frame: pd.DataFrame) -> np.ndarray:
    """The day's range-based variance per row [N] (see the module docstring); row 0 has no
    previous close, so it is the Garman-Klass part alone."""
    o, h, lo, c = (_column(frame, k) for k in ("Open", "High", "Low", "Close"))
    prev = np.r_[np.nan, c[:-1]]
    gap = np.nan_to_num(np.log(o / prev) ** 2, nan=0.0)
    gk = 0.5 * np.log(h / lo) ** 2 - _GK_BODY * np.log(c / o) ** 2
    return np.maximum(gap + gk, 0.0)


def ewma_variance(daily: np.ndarray, lam: float = EWMA_LAMBDA,
                  warmup: int = EWMA_WARMUP_RETURNS) -> np.ndarray:
    """Causal EWMA of a daily variance proxy [N] (row 0 is ignored: it has no return). Over the
    first ``warmup`` values the variance is their expanding mean (still causal); the recursion
    v_t = lam v_{t-1} + (1 - lam) x_t then starts from that month's variance. Row 0 takes
    row 1's value."""
    x = np.asarray(daily, dtype=np.float64)[1:]
    if len(x) == 0:
        return np.full(len(daily), np.nan)
    w = min(warmup, len(x))
    var = np.empty_like(x)
    var[:w] = np.cumsum(x[:w]) / np.arange(1, w + 1)
    if len(x) > w:  # adjust=False: v_t = lam v_{t-1} + (1 - lam) x_t, from v_{w-1}
        seeded = pd.Series(np.r_[var[w - 1], x[w:]]).ewm(alpha=1 - lam, adjust=False).mean()
        var[w:] = seeded.to_numpy()[1:]
    var = np.maximum(var, _VAR_FLOOR)
    return np.r_[var[0], var]


def ewma_volatility(close: np.ndarray, lam: float = EWMA_LAMBDA,
                    warmup: int = EWMA_WARMUP_RETURNS) -> np.ndarray:
    """Causal EWMA standard deviation of daily close-to-close log returns at each row [N]."""
    return np.sqrt(ewma_variance(squared_returns(close), lam, warmup))


def range_volatility(frame: pd.DataFrame, lam: float = EWMA_LAMBDA,
                     warmup: int = EWMA_WARMUP_RETURNS) -> np.ndarray:
    """Causal EWMA standard deviation of the range-based daily variance at each row [N]."""
    return np.sqrt(ewma_variance(range_variance(frame), lam, warmup))


def flat_steps(sigma: np.ndarray, horizon: int) -> np.ndarray:
    """A constant daily sd [W] as the sd of the cumulative return at steps 1..h [W, h]."""
    return np.asarray(sigma, np.float64)[:, None] * np.sqrt(np.arange(1, horizon + 1))[None, :]


# ----------------------------------------------------------------------------------- HAR


def _har_design(log_var: np.ndarray) -> np.ndarray:
    """[N, 1 + len(HAR_LAGS)]: a constant and the trailing means of the log variance over the
    last 1, 5 and 22 rows (rows <= t; shorter at the start)."""
    s = pd.Series(log_var)
    cols = [s.rolling(k, min_periods=1).mean().to_numpy() for k in HAR_LAGS]
    return np.column_stack([np.ones(len(log_var)), *cols])


LOG_VAR_FLOOR = 1e-8  # a 1 bp move: days with no range (O = H = L = C) are not log(0)


def log_range_variance(frame: pd.DataFrame) -> np.ndarray:
    """The log of the day's range-based variance, floored at a fixed 1e-8 (so each row reads
    that row alone: causal, unlike a floor taken from the frame's own quantiles)."""
    return np.log(np.maximum(range_variance(frame), LOG_VAR_FLOOR))


def fit_har(frame: pd.DataFrame, train_end: int, horizon: int) -> np.ndarray:
    """Direct HAR regressions of the mean log range variance over the next k sessions on the
    day/week/month means at the origin, one per step k, by least squares on origins whose
    targets lie inside the training rows. Returns coefficients [h, 1 + len(HAR_LAGS)]."""
    log_var = log_range_variance(frame.iloc[:train_end])
    design = _har_design(log_var)
    start = max(HAR_LAGS)
    coefs = []
    for k in range(1, horizon + 1):
        ahead = pd.Series(log_var).rolling(k).mean().shift(-k).to_numpy()
        rows = np.arange(start, train_end - k)
        coef, *_ = np.linalg.lstsq(design[rows], ahead[rows], rcond=None)
        coefs.append(coef)
    return np.array(coefs)


def har_scale(frame: pd.DataFrame, origins: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """The HAR forecast of the cumulative-return sd at steps 1..h for each origin [W, h]:
    sqrt(sum over steps of exp(predicted mean log variance)). Calibration absorbs the
    log-normal bias."""
    design = _har_design(log_range_variance(frame))[np.asarray(origins)]
    mean_var = np.exp(design @ coefs.T)  # [W, h]: the mean daily variance over steps 1..k
    return np.sqrt(mean_var * np.arange(1, coefs.shape[0] + 1)[None, :])


def har_step_sd(frame: pd.DataFrame, origins: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """Each future step's own daily sd [W, h] from the HAR forecasts: the increments of the
    cumulative variance (floored at a tenth of the one-step variance)."""
    cumulative = har_scale(frame, origins, coefs) ** 2
    steps = np.diff(cumulative, axis=1, prepend=0.0)
    return np.sqrt(np.maximum(steps, 0.1 * cumulative[:, :1]))


# ----------------------------------------------------------------------------------- GARCH


def _percent_returns(close: np.ndarray) -> np.ndarray:
    return 100.0 * np.diff(np.log(np.asarray(close, np.float64)))


def _garch_t(returns: np.ndarray):
    from arch import arch_model

    return arch_model(returns, mean="Zero", vol="GARCH", p=1, q=1, dist="t", rescale=False)


def fit_garch_t(close: np.ndarray, train_end: int) -> np.ndarray:
    """GARCH(1,1) with Student-t errors and a zero mean, fitted by maximum likelihood on the
    returns of the training rows [0, train_end). Returns (omega, alpha, beta, nu) in
    percent-return units."""
    model = _garch_t(_percent_returns(close[:train_end]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit(disp="off", show_warning=False)
    return np.asarray(result.params, dtype=np.float64)


def garch_scale(close: np.ndarray, origins: np.ndarray, params: np.ndarray,
                horizon: int) -> np.ndarray:
    """The fitted GARCH's sd of the cumulative log return at steps 1..h from each origin row
    [W, h] (analytic multi-step variance forecasts, parameters held fixed, so an origin's
    forecast reads returns up to it only; the backcast uses the first 75 returns)."""
    origins = np.asarray(origins, dtype=np.int64)
    fixed = _garch_t(_percent_returns(close)).fix(params)
    # Row t's return is returns[t - 1]: a forecast from origin row t starts after returns[t-1].
    start = int(origins.min()) - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        variance = fixed.forecast(horizon=horizon, start=start, reindex=False).variance
    per_step = variance.to_numpy()[origins - 1 - start]  # [W, h] in percent^2
    return np.sqrt(np.cumsum(per_step, axis=1)) / 100.0
