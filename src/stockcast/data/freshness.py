"""The freshness policy: prices that end too long ago (a fallback to an old cache, or to the
bundled 2013 sample in a scheduled run) must not become a new champion."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from stockcast.config import DataConfig
from stockcast.data.schemas import ValidatedPrices
from stockcast.errors import DataSourceError
from stockcast.market_calendar import sessions_between


class StaleDataError(DataSourceError):
    """The prices end too long ago to train a model that may become champion."""


@dataclass(frozen=True)
class Freshness:
    """How old the prices are and whether a model trained on them may be registered."""

    last_date: str
    sessions_behind: int  # NYSE sessions between the last price and today
    stale: bool
    registrable: bool
    reason: str


def check_freshness(validated: ValidatedPrices, cfg: DataConfig, scheduled: bool,
                    today: dt.date | None = None) -> Freshness:
    """Apply ``data.max_staleness_days``. In an interactive run, historical files asked for
    explicitly (``--source sample``/``csv``/``cache``) are accepted as they are; so is the
    bundled sample when the run falls back to it on a machine that never had a cache (a first
    ``make run-flow`` offline). A deployment run (``scheduled``) gets no such exception: a
    ``source`` override in its parameters is held to the rule like any other source (to
    train on old files there on purpose, raise ``data.max_staleness_days`` in the same
    parameters). Anything stale is refused (``data.on_stale: fail``, the ticker fails) or
    trained without registering (``warn``)."""
    prices = validated.prices
    last = pd.Timestamp(validated.frame["Date"].iloc[-1])
    behind = sessions_between(last, pd.Timestamp(today or dt.date.today()))
    stale = behind > cfg.max_staleness_days
    common = dict(last_date=str(last.date()), sessions_behind=behind, stale=stale)
    if not stale:
        return Freshness(**common, registrable=True, reason="fresh")
    explicit = (not scheduled and cfg.source == prices.source
                and prices.source in ("sample", "csv", "cache"))
    # The sample is fallen back to only when there is no cache either.
    first_offline = not scheduled and prices.fallback == "sample"
    if explicit or first_offline:
        why = ("asked for explicitly" if explicit
               else "interactive run on a machine that never had a cache")
        return Freshness(**common, registrable=True,
                         reason=f"prices end {last.date()} ({behind} sessions ago): accepted, {why}")
    reason = (f"{prices.ticker}: prices from source={prices.source} end {last.date()}, "
              f"{behind} trading sessions ago (data.max_staleness_days is "
              f"{cfg.max_staleness_days}"
              f"{'; a deployment run holds a source override to it too' if scheduled else ''}"
              f"); a model trained on them is not registered or promoted")
    if cfg.on_stale == "fail":
        raise StaleDataError(reason + ". Restore the network or the data source and run "
                             "again, or set data.on_stale: warn.")
    return Freshness(**common, registrable=False, reason=reason)
