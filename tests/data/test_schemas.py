import numpy as np
import pandas as pd
import pytest

from stockcast.config import ValidationConfig, WindowConfig
from stockcast.data.schemas import check_prices, validate_prices
from stockcast.data.sources import PriceData
from stockcast.errors import DataValidationError

WIN = WindowConfig(sequence_length=10, min_windows_per_split=5)
VAL = ValidationConfig()


def as_prices(frame):
    return PriceData("TEST", frame, "csv", "test.csv")


def failures(frame):
    report = check_prices(frame, "TEST", WIN, VAL)
    return report


def test_valid_frame_passes_and_is_not_mutated(prices):
    before = prices.copy()
    checked = validate_prices(as_prices(prices), WIN, VAL)
    assert checked.report.valid and len(checked.frame) == len(prices)
    pd.testing.assert_frame_equal(prices, before)


@pytest.mark.parametrize(
    ("mutate", "column", "check"),
    [
        (lambda d: d.assign(Close=d["Close"].where(d.index != 5, np.nan)), "Close", "not_nullable"),
        (lambda d: d.assign(Open=d["Open"].where(d.index != 7, -1.0)), "Open", "> 0"),
        (lambda d: d.assign(Close=d["Close"].where(d.index != 8, 0.0)), "Close", "> 0"),
        (lambda d: d.assign(High=d["High"].where(d.index != 9, 1e-3)), "High", "High must be"),
        (lambda d: d.assign(Low=d["Low"].where(d.index != 9, 1e6)), "Low", "Low must be"),
        (lambda d: d.assign(Volume=d["Volume"].where(d.index != 3, -5)), "Volume", ">= 0"),
        (lambda d: d.assign(Date=d["Date"].where(d.index != 10, d["Date"][9])), "Date", "unique"),
        (lambda d: d.iloc[::-1].reset_index(drop=True), "Date", "increasing"),
        (lambda d: d.drop(columns="Volume"), "(frame)", "column_in_dataframe"),
        (lambda d: d.head(20), "(frame)", "rows of history"),
        (lambda d: d.assign(Close=d["Close"].astype(object).where(d.index != 4, "n/a")), "Close",
         "coerce"),
    ],
    ids=["nan", "negative", "zero", "high<max", "low>min", "volume", "duplicate", "unsorted",
         "missing-column", "too-short", "non-numeric"],
)
def test_each_rule_rejects_a_minimal_bad_frame(prices, mutate, column, check):
    report = failures(mutate(prices))
    assert not report.valid
    hits = report.failures[(report.failures["column"] == column)
                           & report.failures["check"].astype(str).str.contains(check, regex=False)]
    assert len(hits) >= 1, report.to_text()


def test_lazy_report_lists_every_failure_with_dates(prices):
    bad = prices.copy()
    bad.loc[5, "Close"] = np.nan
    bad.loc[20, "Low"] = -1.0
    with pytest.raises(DataValidationError) as err:
        validate_prices(as_prices(bad), WIN, VAL)
    report = err.value.report
    assert set(report.failures["row"]) >= {5, 20}
    assert pd.Timestamp(bad.loc[20, "Date"]) in set(report.failures["date"])
    assert "TEST" in str(err.value) and "nothing was dropped" in str(err.value)


def test_report_saves_a_failure_table(prices, tmp_path):
    bad = prices.copy()
    bad.loc[5, "Close"] = np.nan
    report = failures(bad)
    txt = report.save(tmp_path / "validation")
    table = pd.read_csv(tmp_path / "validation.csv")
    assert txt.exists() and len(table) >= 1 and "row" in table.columns


def test_suspicious_but_legal_data_is_a_warning(prices):
    odd = prices.copy()
    odd.loc[100:, ["Open", "High", "Low", "Close"]] *= 0.5  # an unadjusted 2:1 split
    odd.loc[200:, "Date"] = odd.loc[200:, "Date"] + pd.Timedelta(days=30)  # a month-long gap
    report = validate_prices(as_prices(odd), WIN, VAL).report
    assert report.valid
    assert any("one-day move of -50%" in w for w in report.warnings)
    assert any("calendar gap" in w for w in report.warnings)


def test_sessions_without_a_trade_are_a_warning_naming_them(prices):
    def still(frame, rows):  # the bar before repeated, nothing traded
        frame.loc[rows, ["Open", "High", "Low", "Close"]] = frame.loc[rows[0] - 1, "Close"]
        frame.loc[rows, "Volume"] = 0

    halted = prices.copy()
    still(halted, list(range(100, 110)))  # a halt of ten sessions
    still(halted, list(range(150, 154)))  # four: a holiday or two a vendor filled, no warning
    still(halted, list(range(len(halted) - 6, len(halted))))  # the feed stopped moving
    report = validate_prices(as_prices(halted), WIN, VAL).report
    assert report.valid
    runs = [w for w in report.warnings if "without a trade" in w]
    dates = halted["Date"].dt.date
    assert len(runs) == 2
    assert runs[0].startswith(f"10 sessions in a row without a trade (unchanged prices, zero "
                              f"volume) from {dates[100]} to {dates[109]}, a trading halt")
    assert runs[1].startswith(f"6 sessions in a row without a trade (unchanged prices, zero "
                              f"volume) from {dates.iloc[-6]} to {dates.iloc[-1]}, up to the "
                              "last date: the latest prices may be stale")
    # Unchanged prices on volume, or zero volume on moving prices, are ordinary days.
    traded = halted.copy()
    traded.loc[100:109, "Volume"] = 1000
    assert len([w for w in validate_prices(as_prices(traded), WIN, VAL).report.warnings
                if "without a trade" in w]) == 1
    assert not [w for w in validate_prices(as_prices(prices.assign(Volume=0)), WIN,
                                           VAL).report.warnings if "without a trade" in w]


def test_a_move_no_stock_makes_in_a_day_is_an_error_unless_accepted(prices):
    reverse = prices.copy()
    reverse.loc[150:, ["Open", "High", "Low", "Close"]] *= 1000  # an unadjusted 1:1000 reverse split
    with pytest.raises(DataValidationError, match=r"one-day move beyond x10 or /10") as err:
        validate_prices(as_prices(reverse), WIN, VAL)
    failed = err.value.report.failures
    assert failed["row"].tolist() == [150] and failed["column"].tolist() == ["Close"]
    assert "max_move_factor: null" in str(err.value)
    # The user says the data are as intended: a warning, as for ordinary jumps.
    report = validate_prices(as_prices(reverse), WIN, ValidationConfig(max_move_factor=None)).report
    assert report.valid and any("one-day move of +99" in w for w in report.warnings)


def test_a_flat_series_is_refused_with_its_reason(prices):
    flat = prices.copy()
    for col in ("Open", "High", "Low", "Close"):
        flat[col] = 12.5
    with pytest.raises(DataValidationError, match="a flat series has nothing to forecast"):
        validate_prices(as_prices(flat), WIN, VAL)


@pytest.mark.parametrize("kind, message", [("dir", "is a directory"),
                                           ("fifo", "is not a regular file"),
                                           ("missing", "does not exist")])
def test_a_csv_path_that_is_not_a_file_says_what_it_is(tmp_path, kind, message):
    import os

    from stockcast.data.files import read_price_file
    from stockcast.errors import DataSourceError

    path = tmp_path / "prices.csv"
    if kind == "dir":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(DataSourceError, match=message):
        read_price_file(path)
