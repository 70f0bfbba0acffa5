import pandas as pd

from stockcast.market_calendar import next_trading_days


def test_forecast_dates_skip_weekends_and_nyse_holidays():
    # Thursday 2024-03-28 -> Good Friday closed -> Monday 1 April
    assert next_trading_days(pd.Timestamp("2024-03-28"), 2).strftime("%Y-%m-%d").tolist() == [
        "2024-04-01", "2024-04-02"]
    # Friday before Christmas 2023 (Monday 25th closed)
    assert next_trading_days(pd.Timestamp("2023-12-22"), 1)[0] == pd.Timestamp("2023-12-26")
    # Thanksgiving 2025 is Thursday 27 November
    assert next_trading_days(pd.Timestamp("2025-11-26"), 1)[0] == pd.Timestamp("2025-11-28")
    # Juneteenth applies from 2022 on
    assert next_trading_days(pd.Timestamp("2024-06-18"), 1)[0] == pd.Timestamp("2024-06-20")
    assert next_trading_days(pd.Timestamp("2021-06-17"), 1)[0] == pd.Timestamp("2021-06-18")
    # New Year's Day 2022 was a Saturday: NYSE traded on Friday 31 December 2021
    assert next_trading_days(pd.Timestamp("2021-12-30"), 1)[0] == pd.Timestamp("2021-12-31")


def test_one_off_closures_are_known():
    # 5 December 2018: national day of mourning for President G. H. W. Bush
    assert next_trading_days(pd.Timestamp("2018-12-04"), 1)[0] == pd.Timestamp("2018-12-06")
    # Hurricane Sandy closed NYSE on 29 and 30 October 2012
    assert next_trading_days(pd.Timestamp("2012-10-26"), 1)[0] == pd.Timestamp("2012-10-31")


def test_forecasts_from_old_histories_skip_the_holidays_of_their_time():
    days = next_trading_days(pd.Timestamp("1987-12-24"), 2)
    assert [d.date().isoformat() for d in days] == ["1987-12-28", "1987-12-29"]
