"""The US equity market calendar, for dating forecasts: NYSE sessions from exchange_calendars,
which knows the regular holidays and the one-off closures (national days of mourning,
hurricanes) as well."""

from __future__ import annotations

import functools

import pandas as pd


@functools.cache
def _nyse():
    import exchange_calendars as xcals

    # exchange_calendars knows sessions up to one year ahead of today by default.
    # From 1885 (its earliest rules; a 1987 history's forecasts skip that Christmas) up to one
    # year ahead of today (exchange_calendars' default end).
    return xcals.get_calendar("XNYS", start="1885-01-01")


def next_trading_days(after: pd.Timestamp, periods: int) -> pd.DatetimeIndex:
    """The ``periods`` NYSE trading days after ``after`` (weekdays beyond the calendar's range)."""
    after = pd.Timestamp(after).normalize()
    cal = _nyse()
    if cal.first_session <= after < cal.last_session:
        sessions = cal.sessions_in_range(after + pd.Timedelta(days=1), cal.last_session)
        if len(sessions) >= periods:
            return pd.DatetimeIndex(sessions[:periods]).tz_localize(None).rename(None)
    return pd.bdate_range(after + pd.offsets.BDay(1), periods=periods)


def sessions_between(after: pd.Timestamp, before: pd.Timestamp) -> int:
    """NYSE trading days strictly after ``after`` and strictly before ``before``."""
    after, before = pd.Timestamp(after).normalize(), pd.Timestamp(before).normalize()
    if before <= after + pd.Timedelta(days=1):
        return 0
    first, last = after + pd.Timedelta(days=1), before - pd.Timedelta(days=1)
    cal = _nyse()
    if cal.first_session <= first and last <= cal.last_session:
        return len(cal.sessions_in_range(first, last))
    return len(pd.bdate_range(first, last))
