"""The US equity market calendar, for dating forecasts: weekdays minus NYSE holidays."""

from __future__ import annotations

import pandas as pd
from pandas.tseries.holiday import (
    AbstractHolidayCalendar,
    GoodFriday,
    Holiday,
    USLaborDay,
    USMartinLutherKingJr,
    USMemorialDay,
    USPresidentsDay,
    USThanksgivingDay,
    nearest_workday,
    sunday_to_monday,
)
from pandas.tseries.offsets import CustomBusinessDay


class NYSEHolidayCalendar(AbstractHolidayCalendar):
    """Full-day NYSE closures (regular rules; one-off closures are not predictable)."""

    rules = [
        # A Saturday New Year's Day is not moved to Friday: NYSE stays open on 31 December.
        Holiday("New Year's Day", month=1, day=1, observance=sunday_to_monday),
        USMartinLutherKingJr,
        USPresidentsDay,
        GoodFriday,
        USMemorialDay,
        Holiday("Juneteenth", month=6, day=19, start_date="2022-01-01",
                observance=nearest_workday),
        Holiday("Independence Day", month=7, day=4, observance=nearest_workday),
        USLaborDay,
        USThanksgivingDay,
        Holiday("Christmas", month=12, day=25, observance=nearest_workday),
    ]


def next_trading_days(after: pd.Timestamp, periods: int) -> pd.DatetimeIndex:
    """The ``periods`` NYSE trading days after ``after``."""
    day = CustomBusinessDay(calendar=NYSEHolidayCalendar())
    start = pd.Timestamp(after).normalize() + day
    return pd.date_range(start, periods=periods, freq=day)
