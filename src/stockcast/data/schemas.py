"""pandera schema for daily prices, and a validation report a person can act on."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaError, SchemaErrors

from stockcast.config import ValidationConfig, WindowConfig
from stockcast.data.sources import PriceData
from stockcast.errors import DataValidationError
from stockcast.runtime import path_inside, utc_stamp
from stockcast.splits import min_rows

log = logging.getLogger(__name__)


def _strictly_increasing(s: pd.Series) -> pd.Series:
    values = s.to_numpy()
    ok = np.ones(len(values), dtype=bool)
    ok[1:] = values[1:] > values[:-1]
    return pd.Series(ok, index=s.index)


def _plausible_moves(limit: float):
    def check(close: pd.Series) -> pd.Series:
        ratio = close / close.shift()
        return ratio.isna() | ((ratio <= limit) & (ratio >= 1.0 / limit))
    return check


def _close_column(max_move_factor: float | None) -> pa.Column:
    checks = [pa.Check.gt(0, error="Close must be > 0")]
    if max_move_factor is not None:
        checks.append(pa.Check(_plausible_moves(max_move_factor), error=(
            f"one-day move beyond x{max_move_factor:g} or /{max_move_factor:g}: no real stock "
            "moves so in a day; an unadjusted split or a unit change? Fix the source, or set "
            "validation.max_move_factor: null if the data are as intended")))
    return pa.Column(float, checks, nullable=False, coerce=True)


def _frame_checks(required_rows: int, max_rows: int) -> list[pa.Check]:
    """Checks across columns and of the frame's length."""
    return [
        pa.Check(lambda df: df["Low"] <= df[["Open", "Close"]].min(axis=1) * (1 + 1e-9),
                 error="Low must be <= min(Open, Close)", name="low_le_open_close"),
        pa.Check(lambda df: df["High"] >= df[["Open", "Close"]].max(axis=1) * (1 - 1e-9),
                 error="High must be >= max(Open, Close)", name="high_ge_open_close"),
        pa.Check(lambda df: len(df) < 2 or df["Close"].nunique() > 1,
                 error="every Close is the same value: a flat series has nothing to "
                 "forecast (a placeholder or a halted listing? check the source)",
                 name="not_flat"),
        pa.Check(lambda df: len(df) >= required_rows,
                 error=f"need at least {required_rows} rows of history", name="enough_history"),
        # Refused before any work: 200,000 rows would train for a quarter of an hour per
        # epoch budget and draw reports of no use; --start shortens a long history.
        pa.Check(lambda df: len(df) <= max_rows,
                 error=f"more than validation.max_rows = {max_rows} rows of history (pass "
                 "--start to use a shorter span, or raise the limit)", name="at_most_max_rows"),
    ]


@functools.lru_cache(maxsize=16)  # built once per setting: the served model checks every request
def price_schema(required_rows: int = 1, max_rows: int = 50_000,
                 last_date: pd.Timestamp | None = None,
                 max_move_factor: float | None = None) -> pa.DataFrameSchema:
    """Schema of a normalised price frame; ``required_rows`` is the history the windows need,
    ``max_rows`` the most it takes, ``last_date`` the latest date it accepts,
    ``max_move_factor`` the largest one-day change of the close (x or /) it accepts."""
    date_checks = [pa.Check(_strictly_increasing, error="dates must be strictly increasing "
                            "(sorted, no duplicates)")]
    if last_date is not None:
        date_checks.append(pa.Check.le(last_date, error=f"dates after {last_date.date()} lie in "
                                       "the future"))

    def price(name: str) -> pa.Column:
        return pa.Column(float, pa.Check.gt(0, error=f"{name} must be > 0"), nullable=False,
                         coerce=True)

    return pa.DataFrameSchema(
        {
            "Date": pa.Column(
                "datetime64[ns]",
                date_checks,
                nullable=False,
                unique=True,
                coerce=True,
            ),
            "Open": price("Open"),
            "High": price("High"),
            "Low": price("Low"),
            "Close": _close_column(max_move_factor),
            "Volume": pa.Column(float, pa.Check.ge(0, error="Volume must be >= 0"),
                                nullable=False, coerce=True),
        },
        checks=_frame_checks(required_rows, max_rows),
        strict="filter",
        ordered=False,
    )


@dataclass
class ValidationReport:
    """What validation found: failing checks (fatal) and warnings (suspicious but legal)."""

    ticker: str
    rows: int
    required_rows: int
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = field(default=None, repr=False)  # coerced, when valid

    @property
    def valid(self) -> bool:
        """True when no check failed (warnings do not count)."""
        return self.failures.empty

    def to_text(self, max_rows: int = 20) -> str:
        """The report as text, for the terminal and the run's artifacts."""
        head = (f"validation of {self.ticker}: {self.rows} rows (need >= {self.required_rows}) "
                f"-> {'VALID' if self.valid else 'INVALID'}")
        lines = [head]
        if not self.valid:
            lines.append(f"{len(self.failures)} failing value(s):")
            summary = self.failures.groupby(["column", "check"], dropna=False, sort=False).size()
            for (column, check), count in summary.items():
                lines.append(f"  - {column}: {check} ({count} row(s))")
            lines.append("first failures:")
            shown = self.failures.head(max_rows).to_string(index=False)
            lines.extend("  " + ln for ln in shown.splitlines())
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)

    def save(self, path: Path) -> Path:
        """Write the failure-cases table (CSV) beside a text report."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.failures.to_csv(path.with_suffix(".csv"), index=False)
        path.with_suffix(".txt").write_text(self.to_text(max_rows=1000) + "\n")
        return path.with_suffix(".txt")


def _failure_table(frame: pd.DataFrame, exc: SchemaErrors | SchemaError) -> pd.DataFrame:
    cases = exc.failure_cases.copy()
    dates = frame["Date"] if "Date" in frame.columns else pd.Series(dtype=object)
    idx = pd.to_numeric(cases["index"], errors="coerce")
    cases["date"] = [
        dates.iloc[int(i)] if pd.notna(i) and 0 <= int(i) < len(dates) else None for i in idx
    ]
    cases = cases.rename(columns={"failure_case": "value", "index": "row"})
    cases["column"] = cases["column"].fillna("(frame)")
    # Frame-wide row checks report every column of a failing row; keep the one at fault.
    for text, column in (("Low must be", "Low"), ("High must be", "High")):
        wide = cases["check"].astype(str).str.startswith(text)
        cases = cases[~wide | (cases["column"] == column)]
    return cases[["column", "check", "row", "date", "value"]].reset_index(drop=True)


# Sessions in a row without a trade before validation warns (a day or two: a holiday a
# vendor filled with the last bar).
STILL_SESSIONS = 5


def _warnings(frame: pd.DataFrame, cfg: ValidationConfig) -> list[str]:
    out = []
    dates = pd.to_datetime(frame["Date"])
    gaps = dates.diff().dt.days
    for i in np.flatnonzero(gaps.to_numpy() > cfg.max_gap_days):
        out.append(f"calendar gap of {int(gaps.iloc[i])} days before {dates.iloc[i].date()}")
    close = frame["Close"].astype(float)
    # Symmetric in log terms: +50% and -33% are the same size of move (a 2:1 split is -50%).
    log_moves = np.log(close / close.shift()).abs()
    for i in np.flatnonzero(log_moves.to_numpy() > np.log1p(cfg.max_daily_move)):
        move = close.iloc[i] / close.iloc[i - 1] - 1
        out.append(f"one-day move of {move:+.0%} on {dates.iloc[i].date()} "
                   "(an unadjusted split? check the source)")
    return out + _still_runs(frame, dates)


def _still_runs(frame: pd.DataFrame, dates: pd.Series) -> list[str]:
    """Runs of at least ``STILL_SESSIONS`` sessions without a trade: Open, High, Low and Close
    all equal to the close before, and zero volume (a trading halt, or a feed repeating its
    last bar under new dates, which the freshness check, reading dates, cannot see)."""
    prices = frame[["Open", "High", "Low", "Close"]].astype(float)
    still = prices.eq(prices["Close"].shift(), axis=0).all(axis=1) & frame["Volume"].eq(0)
    runs = still[still].groupby((~still).cumsum()[still])
    out = []
    for _, run in runs:
        if len(run) < STILL_SESSIONS:
            continue
        first, last = dates.loc[run.index[0]].date(), dates.loc[run.index[-1]].date()
        where = ("up to the last date: the latest prices may be stale" if run.index[-1] ==
                 frame.index[-1] else "a trading halt or a stale feed")
        out.append(f"{len(run)} sessions in a row without a trade (unchanged prices, zero "
                   f"volume) from {first} to {last}, {where}; check the source")
    return out


@dataclass(frozen=True)
class ValidatedPrices:
    """Prices that passed validation: the coerced frame, the report, where the report was
    written, and the source they came from."""

    prices: PriceData
    frame: pd.DataFrame
    report: ValidationReport
    report_path: Path | None = None

    @property
    def ticker(self) -> str:
        """The ticker these prices belong to."""
        return self.prices.ticker


def check_prices(frame: pd.DataFrame, ticker: str, window: WindowConfig,
                 cfg: ValidationConfig, today: dt.date | None = None) -> ValidationReport:
    """Validate lazily; a report listing every failing check (with the coerced frame if valid)."""
    required = min_rows(window)
    today = pd.Timestamp(today or dt.date.today())
    last_date = today + pd.Timedelta(days=cfg.max_future_days)
    try:
        clean = price_schema(required, cfg.max_rows, last_date,
                             cfg.max_move_factor).validate(frame, lazy=True)
    except (SchemaErrors, SchemaError) as exc:
        return ValidationReport(ticker, len(frame), required, _failure_table(frame, exc))
    clean = clean.reset_index(drop=True)
    warnings = _warnings(clean, cfg)
    future = clean["Date"] > today
    if future.any():
        warnings.append(f"{int(future.sum())} date(s) after today ({clean['Date'].iloc[-1].date()}"
                        "): a clock or time-zone difference?")
    return ValidationReport(ticker, len(clean), required, warnings=warnings, frame=clean)


def request_failures(frame: pd.DataFrame, cfg: ValidationConfig,
                     today: dt.date | None = None) -> pd.DataFrame:
    """The pipeline's schema on the rows a served model is sent (no history-length rule: the
    request carries recent rows only): the failure table, empty when they pass. Columns the
    request may leave out are filled so that they cannot fail (Open, High, Low with the close,
    Volume with 0; without Date, the date checks are skipped)."""
    full = frame.copy()
    for col in ("Open", "High", "Low"):
        if col not in full:
            full[col] = full["Close"]
    if "Volume" not in full:
        full["Volume"] = 0.0
    last_date = None
    if "Date" in full:
        last_date = pd.Timestamp(today or dt.date.today()) + pd.Timedelta(days=cfg.max_future_days)
    else:
        full["Date"] = pd.bdate_range("2000-01-03", periods=len(full))
    try:
        price_schema(1, cfg.max_rows, last_date, cfg.max_move_factor).validate(full, lazy=True)
    except (SchemaErrors, SchemaError) as exc:
        return _failure_table(full, exc)
    return pd.DataFrame()


def raise_if_invalid(report: ValidationReport, saved_to: Path | None = None) -> None:
    """DataValidationError (carrying the report) when any check failed."""
    if report.valid:
        return
    where = f"\nFull report: {saved_to}" if saved_to else ""
    raise DataValidationError(
        f"{report.ticker}: price data is invalid; nothing was dropped or trained.\n"
        f"{report.to_text()}\nFix the source data (or choose another date range) and "
        f"run again.{where}",
        report,
    )


def validate_prices(prices: PriceData, window: WindowConfig, cfg: ValidationConfig,
                    reports_dir: Path | None = None) -> ValidatedPrices:
    """Judge the prices: the report is written once (under ``reports_dir/<TICKER>/`` when
    given), warnings are logged, and DataValidationError is raised when any check failed.
    Writes nothing else: committing a download to the cache is the caller's next step."""
    report = check_prices(prices.frame, prices.ticker, window, cfg)
    saved = None
    if reports_dir is not None:
        saved = report.save(path_inside(Path(reports_dir), prices.ticker, f"{utc_stamp()}-validation"))
    raise_if_invalid(report, saved)
    for warning in report.warnings:
        log.warning("%s: %s", prices.ticker, warning)
    assert report.frame is not None
    return ValidatedPrices(prices, report.frame, report, saved)
