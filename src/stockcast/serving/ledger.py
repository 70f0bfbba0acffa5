"""The forecast ledger: every forecast a champion made, one row per origin and step, kept in
``forecasts/<TICKER>/ledger.parquet`` until its date arrives and it can be scored.

Written atomically under a lock (a scheduled forecast may overlap a manual one), each writer
with its own temporary file. A ledger that cannot be read is never fatal: it is kept aside as
``ledger.corrupt-<time>.parquet`` and a new one is started, and the run says so. Rows of
another ticker (a copied or renamed ledger) are refused the same way, never scored.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from filelock import FileLock

from stockcast.runtime import path_inside, utc_stamp
from stockcast.serving.drift import with_realised_variance

log = logging.getLogger(__name__)

LEDGER = "ledger.parquet"
KEY = ["last_date", "step"]


def ledger_path(out_dir: Path, ticker: str) -> Path:
    """The ticker's forecast ledger (one row per forecast origin and step)."""
    return path_inside(Path(out_dir), ticker, LEDGER)


@dataclass(frozen=True)
class Ledger:
    """The ledger's rows after a write, and what had to be set aside to get there."""

    path: Path
    rows: pd.DataFrame
    notes: tuple[str, ...] = field(default_factory=tuple)


def _set_aside(path: Path, kind: str, frame: pd.DataFrame | None = None) -> Path:
    aside = path.with_name(f"ledger.{kind}-{utc_stamp()}.parquet")
    if frame is None:
        path.replace(aside)  # the file as it was, for whoever investigates
    else:
        frame.to_parquet(aside, index=False)
    return aside


def _read(path: Path, ticker: str) -> tuple[pd.DataFrame | None, list[str]]:
    """The ledger's own rows, quarantining what cannot be read or is another ticker's."""
    if not path.exists():
        return None, []
    try:
        old = pd.read_parquet(path)
        if not set(KEY) <= set(old.columns):
            raise ValueError(f"columns {sorted(old.columns)[:8]} lack {KEY}")
    except Exception as exc:  # any unreadable file: arrow, OS or schema errors alike
        aside = _set_aside(path, "corrupt")
        return None, [f"the forecast ledger {path} could not be read ({type(exc).__name__}: "
                      f"{str(exc)[:120]}); it was kept aside as {aside.name} and a new "
                      "ledger was started"]
    if "ticker" in old.columns:
        foreign = old["ticker"].astype(str) != ticker
        if foreign.any():
            aside = _set_aside(path, "foreign", old[foreign])
            others = ", ".join(sorted(old.loc[foreign, "ticker"].astype(str).unique())[:3])
            return old[~foreign], [f"the forecast ledger {path} held {int(foreign.sum())} row(s) "
                                   f"of {others}, not {ticker}: they were set aside as "
                                   f"{aside.name} and are not scored"]
    return old, []


def record_forecast(out_dir: Path, ticker: str, forecast: pd.DataFrame) -> Ledger:
    """Add a forecast to the ledger (a re-run for the same origin replaces its rows)."""
    path = ledger_path(out_dir, ticker)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = forecast.drop(columns=[c for c in ("model",) if c in forecast]).assign(ticker=ticker)
    with FileLock(str(path.with_suffix(".lock")), timeout=120):
        old, notes = _read(path, ticker)
        if old is not None and len(old):
            old = old.merge(rows[KEY], on=KEY, how="left", indicator=True)
            old = old[old["_merge"] == "left_only"].drop(columns="_merge")
            rows = pd.concat([old, rows], ignore_index=True)
        rows = rows.sort_values(KEY).reset_index(drop=True)
        tmp = path.with_name(f".{LEDGER}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        rows.to_parquet(tmp, index=False)
        tmp.replace(path)
    for note in notes:
        log.warning("%s: %s", ticker, note)
    return Ledger(path, rows, tuple(notes))


def score_ledger(ledger: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """The ledger's forecasts whose dates have arrived, with the realised close (and the
    day's range-based variance, when the prices have a range)."""
    closes = frame[["Date", "Close"]].rename(columns={"Date": "date", "Close": "actual"})
    scored = with_realised_variance(ledger.merge(closes, on="date", how="inner"), frame)
    return scored.sort_values(["date", "step"]).reset_index(drop=True)
