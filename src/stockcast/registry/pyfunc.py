"""The MLflow pyfunc model: raw prices in, point and interval forecasts in price units out."""

from __future__ import annotations

import datetime as dt
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from stockcast.config import ValidationConfig
from stockcast.data.files import normalize_prices
from stockcast.data.schemas import request_failures
from stockcast.errors import DataSourceError
from stockcast.market_calendar import next_trading_days, sessions_between
from stockcast.modeling.adaptive import Tracking, adapted_forecast
from stockcast.modeling.forecaster import ServedForecaster

OUTPUT_COLUMNS = ["step", "forecast", "lower_80", "upper_80", "lower_95", "upper_95"]
# What the adaptive calibration did: realised past forecasts it read at that step, and the
# adapted band's width over the static one's (1: unchanged).
ADAPTATION_COLUMNS = ["adapted_on", "band_ratio_80", "band_ratio_95"]
# Rows a request may carry (about 80 years of sessions); more is refused before any parsing.
MAX_REQUEST_ROWS = 20_000
# Rows kept before the window: the volatility estimates forget their start within them
# (EWMA lambda 0.94: 0.94^500 ~ 4e-14; a GARCH with persistence 0.98: 0.98^500 ~ 4e-5).
WARMUP_ROWS = 500


class RequestRefused(MlflowException, ValueError):
    """A request the model will not answer (HTTP 400). MLflow's scoring server rewrites an
    exception's message to start with the whole request (``Failed to predict data '...'``);
    this one keeps the message it was raised with, so a client reads the reason first."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_message"):  # set once, at construction
            self._message = value


class StockcastForecaster(mlflow.pyfunc.PythonModel):
    """Wraps the calibrated forecaster (LSTM, fitted transform, conformal quantiles) so
    consumers only pass prices.

    ``predict(df)`` takes recent daily prices, oldest first: at least ``sequence_length + 1``
    rows of the columns the model reads (``Close`` at least). ``Date`` is optional (text or
    datetime); other columns are ignored. It returns one row per future trading day: ``date``
    (when ``Date`` was given), ``step``, ``forecast`` (the point forecast), the 80 % and 95 %
    interval bounds and the raw quantiles ``q0.025`` ... ``q0.975``, and what the adaptive
    calibration did (``adapted_on``, ``band_ratio_80``, ``band_ratio_95``).

    The bands adapt to the forecaster's own recent misses (``modeling.adaptive``): it scores
    itself on the realised days inside the request, so send ``rows_used`` rows (the
    last ``tracking.window`` sessions plus the window and warm-up) for the fully adapted band;
    fewer rows adapt on fewer past forecasts (``adapted_on`` says how many), and the same
    rows always give the same answer.
    """

    def __init__(self, forecaster: ServedForecaster, ticker: str,
                 max_rows: int = MAX_REQUEST_ROWS, tracking: Tracking | None = None,
                 validation: ValidationConfig | None = None) -> None:
        self.forecaster = forecaster
        self.ticker = ticker
        self.max_rows = max_rows
        self.tracking = tracking if tracking is not None else Tracking()
        self.validation = validation if validation is not None else ValidationConfig()

    @property
    def adaptation(self) -> Tracking:
        """How the bands adapt (models logged before adaptation take the defaults)."""
        return getattr(self, "tracking", None) or Tracking()

    @property
    def rows_used(self) -> int:
        """The most recent rows a forecast reads: the window and the volatility warm-up, and
        the realised past forecasts the adaptation replays."""
        return self.min_rows + WARMUP_ROWS + self.adaptation.window + self.forecaster.horizon

    @property
    def min_rows(self) -> int:
        """Rows of prices ``predict`` needs (a window plus the close before it, or the
        volatility model's warm-up)."""
        return self.forecaster.min_rows

    def _clean(self, model_input: Any) -> pd.DataFrame:
        limit = getattr(self, "max_rows", MAX_REQUEST_ROWS)  # models logged before the bound
        if len(model_input) > limit:
            raise RequestRefused(f"{len(model_input)} rows sent; at most {limit} are accepted: "
                                 f"send the most recent rows (the model reads the last "
                                 f"{self.rows_used})")
        # Only the tail matters: the window, the volatility warm-up and the adaptation's past.
        sent = len(model_input)
        model_input = pd.DataFrame(model_input).tail(self.rows_used)
        try:  # exactly the pipeline's reading: column spellings, Adj Close, number formats
            frame = normalize_prices(model_input.reset_index(drop=True))
        except DataSourceError as exc:
            raise RequestRefused(str(exc)) from None
        needed = self.forecaster.input_columns
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise RequestRefused(f"input lacks column(s) {missing}; the model needs {needed} "
                             "(Date optional), oldest row first")
        if len(frame) < self.min_rows:
            raise RequestRefused(f"need at least {self.min_rows} rows of prices, got "
                                 f"{len(frame)}")
        keep = (["Date"] if "Date" in frame.columns else []) + needed
        _check(frame[keep], needed)
        self._validate(frame, offset=sent - len(frame))
        frame = frame[keep].copy()
        for col in needed:  # parsed by normalize_prices; plain floats for the windows
            frame[col] = frame[col].astype(np.float64)
        return frame

    def _validate(self, frame: pd.DataFrame, offset: int) -> None:
        """The pipeline's own rules (``data.schemas``), with the settings the model was
        trained under: High >= max(Open, Close) >= min(Open, Close) >= Low, no flat series,
        no one-day move beyond ``max_move_factor``, no dates in the future; the refusal
        names the column, the rule and the rows (counted in what was sent)."""
        failures = request_failures(frame, getattr(self, "validation", None) or ValidationConfig())
        if failures.empty:
            return
        reasons = []
        for (column, check), rows in failures.groupby(["column", "check"], sort=False)["row"]:
            where = sorted({int(r) + offset for r in rows.dropna()})[:5]
            reasons.append(f"{column}: {check}" + (f" at row(s) {where}" if where else ""))
        raise RequestRefused("prices refused by the pipeline's validation: " + "; ".join(
            reasons[:3]) + " (send the rows as the pipeline would accept them, oldest first)")

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None):
        """Forecast the ``horizon`` trading days after the last row of ``model_input``."""
        frame = self._clean(model_input)
        adapted = adapted_forecast(self.forecaster, frame, np.array([len(frame) - 1]),
                                   self.adaptation)
        fc = adapted.forecast
        lo80, hi80 = fc.interval(0.8)
        lo95, hi95 = fc.interval(0.95)
        h = fc.point.shape[1]
        out = pd.DataFrame({"step": np.arange(1, h + 1), "forecast": fc.point[0],
                            "lower_80": lo80[0], "upper_80": hi80[0],
                            "lower_95": lo95[0], "upper_95": hi95[0]})
        for j, level in enumerate(fc.levels):
            out[f"q{level:g}"] = fc.quantiles[0, :, j]
        out["adapted_on"] = adapted.realised[0]
        out["band_ratio_80"] = adapted.width_ratio(0.8)[0]
        out["band_ratio_95"] = adapted.width_ratio(0.95)[0]
        if "Date" in frame.columns:
            last = pd.Timestamp(frame["Date"].iloc[-1])
            out.insert(0, "date", next_trading_days(last, h))
            # How old the request's prices are: a forecast from stale rows is still made,
            # and says so (the pipeline's data.max_staleness_days is 3).
            out["sessions_behind"] = sessions_between(last, pd.Timestamp(dt.date.today()))
        return out


def _check(frame: pd.DataFrame, needed: list[str]) -> None:
    """The pipeline's rules for prices, on what the service is given: finite, positive
    prices (volume >= 0), no missing values, dates strictly increasing."""
    for col in needed:
        values = frame[col].to_numpy(np.float64)
        bad = ~np.isfinite(values) | ((values < 0) if col == "Volume" else (values <= 0))
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise RequestRefused(f"column {col} has missing, infinite or non-positive values at "
                             f"row(s) {rows}: send finite prices > 0, oldest row first")
    if "Date" in frame.columns:
        dates = frame["Date"]
        if dates.isna().any() or not dates.is_monotonic_increasing or dates.duplicated().any():
            raise RequestRefused("Date must be present on every row and strictly increasing "
                             "(oldest row first, no duplicates)")
