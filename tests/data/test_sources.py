import datetime as dt
import os
import stat

import numpy as np
import pandas as pd
import pytest
from helpers import make_prices

from stockcast.config import DataConfig
from stockcast.data import cache, files, sources, yahoo
from stockcast.data.schemas import validate_prices
from stockcast.errors import CacheCorruptError, DataSourceError

TODAY = dt.date(2016, 3, 1)


def validated(prices):
    """The prices as they leave validation (the tiny windows the tests use)."""
    from stockcast.config import ValidationConfig, WindowConfig

    return validate_prices(prices, WindowConfig(sequence_length=5, min_windows_per_split=1),
                           ValidationConfig())


def commit(checked, data_dir):
    """What the flow's commit-cache step does with validated prices."""
    return cache.commit_to_cache(checked.ticker, checked.frame, checked.prices.cache_pending,
                                 data_dir)


def cfg(tmp_path, **kw) -> DataConfig:
    base = dict(data_dir=tmp_path, retries=0, retry_backoff_seconds=0, start=dt.date(2015, 1, 1))
    return DataConfig(**(base | kw))


def test_fetch_prices_normalises_the_yfinance_frame(fake_yf):
    fake_yf.frames["MSFT"] = make_prices(50)
    df = yahoo.fetch_prices("MSFT", dt.date(2015, 1, 1), None)
    assert list(df.columns) == files.COLUMNS
    assert df["Date"].dt.tz is None
    assert df["Date"].iloc[0] == pd.Timestamp("2015-01-02")
    # Adjusted prices are requested explicitly, single-level columns, errors raised.
    call = fake_yf.calls[-1]
    assert call["auto_adjust"] is True and call["raise_errors"] is True


def test_unknown_ticker_is_a_permanent_error_naming_it(fake_yf):
    with pytest.raises(DataSourceError, match="NOPE") as err:
        yahoo.fetch_prices("NOPE", None, None)
    assert not err.value.transient


def test_network_error_is_transient_and_retried_with_backoff(fake_yf):
    fake_yf.error = ConnectionError("Could not resolve host: query2.finance.yahoo.com")
    sleeps = []
    with pytest.raises(DataSourceError, match="could not reach Yahoo Finance") as err:
        yahoo.fetch_with_retries("GOOG", None, None, retries=2, backoff_seconds=1.5,
                                  sleep=sleeps.append)
    assert err.value.transient
    assert sleeps == [1.5, 3.0]
    assert len(fake_yf.calls) == 3


def test_rate_limit_is_transient(fake_yf):
    import yfinance

    fake_yf.error = yfinance.exceptions.YFRateLimitError()
    with pytest.raises(DataSourceError, match="rate-limited") as err:
        yahoo.fetch_prices("GOOG", None, None)
    assert err.value.transient


def test_permanent_error_is_not_retried(fake_yf):
    sleeps = []
    with pytest.raises(DataSourceError):
        yahoo.fetch_with_retries("NOPE", None, None, retries=3, backoff_seconds=1,
                                  sleep=sleeps.append)
    assert sleeps == [] and len(fake_yf.calls) == 1


def test_adj_close_rescales_ohlc_for_splits():
    raw = pd.DataFrame({
        "Date": ["2020-01-02", "2020-01-03"], "Open": [200.0, 101.0], "High": [202.0, 102.0],
        "Low": [198.0, 99.0], "Close": [200.0, 100.0], "Adj Close": [100.0, 100.0],
        "Volume": [10, 20],
    })
    df = files.normalize_prices(raw)
    assert df["Close"].tolist() == [100.0, 100.0]  # the 2:1 split no longer looks like a crash
    assert df["Open"].tolist() == [100.0, 101.0]
    assert "Adj Close" not in df.columns


def test_bundled_aapl_sample_is_split_adjusted():
    df = files.read_price_file(files.sample_path("AAPL"))
    moves = df["Close"].pct_change().abs()
    june_2000 = df["Date"].between("2000-06-19", "2000-06-23")
    assert moves[june_2000].max() < 0.2  # raw closes halve here


def test_csv_any_column_order_spellings_and_dates(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(
        "volume,Close/Last,open,HIGH,low,Date\n"
        "1000,$10.5,10.0,11.0,9.5,01/02/2020\n"
        "1200,$10.7,10.5,10.9,10.4,01/03/2020\n"
    )
    df = files.read_price_file(path)
    assert list(df.columns) == files.COLUMNS
    assert df["Close"].tolist() == [10.5, 10.7]
    assert df["Date"].tolist() == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")]


def test_a_newest_first_export_is_read_oldest_first_and_nothing_else_is_reordered(tmp_path,
                                                                                  caplog):
    # Nasdaq's export: Close/Last, dollar signs, month-first dates, newest first.
    rows = [("03/04/2020", "$10.9"), ("03/03/2020", "$10.7"), ("03/02/2020", "$10.5")]
    path = tmp_path / "nasdaq.csv"
    path.write_text("Date,Close/Last,Volume,Open,High,Low\n" + "".join(
        f"{d},{c},1000,10.0,11.0,9.5\n" for d, c in rows))
    with caplog.at_level("INFO", logger="stockcast.data.files"):
        df = files.read_price_file(path)
    assert df["Date"].tolist() == pd.to_datetime(["2020-03-02", "2020-03-03", "2020-03-04"]).tolist()
    assert df["Close"].tolist() == [10.5, 10.7, 10.9] and df.index.tolist() == [0, 1, 2]
    assert "newest first (2020-03-04 .. 2020-03-02): read oldest first" in caplog.text
    # Any other order stays as written, for the validator to refuse: one pair swapped, or
    # a repeated date in a file otherwise newest first.
    for order in ([0, 2, 1], [0, 1, 1, 2]):
        path.write_text("Date,Close/Last,Volume,Open,High,Low\n" + "".join(
            f"{rows[i][0]},{rows[i][1]},1000,10.0,11.0,9.5\n" for i in order))
        dates = files.read_price_file(path)["Date"]
        assert dates.tolist() == pd.to_datetime([rows[i][0] for i in order]).tolist()


def test_an_investing_com_export_reads_price_as_the_close_and_volumes_with_suffixes(tmp_path):
    path = tmp_path / "investing.csv"
    path.write_text('"Date","Price","Open","High","Low","Vol.","Change %"\n'
                    '"Mar 04, 2020","1,010.90","1,000.00","1,011.00","999.50","1.23M","1.87%"\n'
                    '"Mar 03, 2020","1,010.70","1,000.00","1,011.00","999.50","980.50K","1.90%"\n'
                    '"Mar 02, 2020","1,010.50","1,000.00","1,011.00","999.50","2.1B","0.50%"\n')
    df = files.read_price_file(path)
    assert list(df.columns) == files.COLUMNS
    assert df["Close"].tolist() == [1010.5, 1010.7, 1010.9]
    assert df["Volume"].tolist() == pytest.approx([2.1e9, 980_500, 1_230_000])
    # A Price column is the close only where no column is named as one; suffixes count only
    # in the volume (a price of 12K stays text, for the validator to show).
    path.write_text("Date,Price,Close,Open,High,Low,Volume\n2020-03-02,1,10.5,10,11,9.5,5K\n"
                    "2020-03-03,2,10.7,10,11,9.5,1200\n")
    df = files.read_price_file(path)
    assert df["Close"].tolist() == [10.5, 10.7] and df["Volume"].tolist() == [5000, 1200]
    path.write_text("Date,Open,High,Low,Close,Volume\n2020-03-02,10,11,9.5,12K,1\n")
    assert files.read_price_file(path)["Close"].tolist() == ["12K"]


def test_a_file_of_several_tickers_or_of_intraday_bars_is_refused_saying_so(tmp_path):
    day = make_prices(30)
    path = tmp_path / "prices.csv"
    # A long-format export: two symbols in one file. One symbol in the column is fine.
    both = pd.concat([day.assign(Symbol="IBM"), day.assign(Symbol="AAPL")])
    both.sort_values("Date").to_csv(path, index=False)
    with pytest.raises(DataSourceError, match=r"holds 2 tickers in its 'Symbol' column "
                                              r"\(AAPL, IBM\); .* each ticker's rows"):
        files.read_price_file(path)
    day.assign(Symbol="IBM").to_csv(path, index=False)
    assert len(files.read_price_file(path)) == 30
    # Hourly bars: several rows for most dates (a daily file with one repeated date is left
    # to the validator, which lists it).
    hours = pd.date_range("2024-01-02 09:30", periods=30, freq="h")  # 15 on each of two days
    day.assign(Date=hours).to_csv(path, index=False)
    with pytest.raises(DataSourceError, match=r"several rows for most of its dates \(up to 15 "
                                              r"a day\): intraday bars"):
        files.read_price_file(path)
    day.assign(Date=day["Date"].where(day.index != 5, day["Date"][4])).to_csv(path, index=False)
    assert files.read_price_file(path)["Date"].duplicated().sum() == 1


def test_incremental_cache_fetches_only_new_days_and_merges(tmp_path, fake_yf):
    full = make_prices(300, start="2015-01-02")
    fake_yf.frames["MSFT"] = full.iloc[:200]
    first = sources.load_prices("MSFT", cfg(tmp_path, source="yfinance"), today=TODAY)
    assert len(first.frame) == 200 and first.source == "yfinance" and first.cache_pending
    assert cache.read_cache(tmp_path, "MSFT") is None  # not cached before validation
    commit(validated(first), tmp_path)
    fake_yf.frames["MSFT"] = full
    fake_yf.calls.clear()
    second = sources.load_prices("MSFT", cfg(tmp_path, source="yfinance"), today=TODAY)
    # Only the days after the last cached date (plus a short overlap) were requested.
    requested = pd.Timestamp(fake_yf.calls[0]["start"])
    assert requested > full["Date"].iloc[190]
    pd.testing.assert_frame_equal(second.frame, full, check_dtype=False)
    commit(validated(second), tmp_path)
    assert len(cache.read_cache(tmp_path, "MSFT")) == 300


def test_changed_adjustment_basis_refetches_full_history(tmp_path, fake_yf):
    full = make_prices(300)
    fake_yf.frames["MSFT"] = full.iloc[:200]
    first = sources.load_prices("MSFT", cfg(tmp_path, source="yfinance"), today=TODAY)
    commit(validated(first), tmp_path)
    rescaled = full.copy()
    rescaled[["Open", "High", "Low", "Close"]] *= 0.5  # a split re-based the whole history
    fake_yf.frames["MSFT"] = rescaled
    out = sources.load_prices("MSFT", cfg(tmp_path, source="yfinance"), today=TODAY)
    np.testing.assert_allclose(out.frame["Close"], rescaled["Close"])


def test_every_run_keeps_an_immutable_snapshot(tmp_path):
    a = sources.load_prices("GOOG", cfg(tmp_path, source="sample", start=None))
    b = sources.load_prices("GOOG", cfg(tmp_path, source="sample", start=None))
    assert a.snapshot_path != b.snapshot_path
    assert stat.S_IMODE(os.stat(a.snapshot_path).st_mode) & 0o222 == 0  # read-only
    pd.testing.assert_frame_equal(pd.read_parquet(a.snapshot_path), a.frame)
    peek = sources.load_prices("GOOG", cfg(tmp_path, source="sample", start=None), snapshot=False)
    assert peek.snapshot_path is None
    assert len(list((tmp_path / "raw" / "GOOG").iterdir())) == 2


def test_auto_falls_back_to_cache_then_sample_and_says_so(tmp_path, fake_yf):
    fake_yf.error = ConnectionError("Could not resolve host")
    out = sources.load_prices("GOOG", cfg(tmp_path, source="auto", start=None))
    assert out.source == "sample" and out.fallback == "sample"
    assert any("yfinance failed" in n for n in out.notes)
    assert any("bundled sample" in n for n in out.notes)
    cache.write_cache(tmp_path, "GOOG", make_prices(200))
    out = sources.load_prices("GOOG", cfg(tmp_path, source="auto", start=None))
    assert out.source == "cache" and out.fallback == "cache" and len(out.frame) == 200
    asked = sources.load_prices("GOOG", cfg(tmp_path, source="sample", start=None))
    assert asked.fallback is None  # asked for, not fallen back to


def test_auto_does_not_fall_back_for_an_unknown_ticker(tmp_path, fake_yf):
    with pytest.raises(DataSourceError, match="ZZZZ"):
        sources.load_prices("ZZZZ", cfg(tmp_path, source="auto"))


def test_auto_offline_without_cache_or_sample_is_a_clear_error(tmp_path, fake_yf):
    fake_yf.error = ConnectionError("Could not resolve host")
    with pytest.raises(DataSourceError, match="no local cache and no bundled sample"):
        sources.load_prices("MSFT", cfg(tmp_path, source="auto"))


def test_corrupt_cache_is_detected_and_never_used(tmp_path, fake_yf):
    path = cache.write_cache(tmp_path, "GOOG", make_prices(200))
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.raises(CacheCorruptError, match="corrupt"):
        cache.read_cache(tmp_path, "GOOG")
    with pytest.raises(CacheCorruptError):
        sources.load_prices("GOOG", cfg(tmp_path, source="cache"))
    # Online, the full history is re-fetched and the cache repaired.
    fake_yf.frames["GOOG"] = make_prices(250)
    out = sources.load_prices("GOOG", cfg(tmp_path, source="yfinance"), today=TODAY)
    assert out.source == "yfinance" and len(out.frame) == 250
    commit(validated(out), tmp_path)
    assert len(cache.read_cache(tmp_path, "GOOG")) == 250


def test_sample_for_unknown_ticker_lists_the_available_ones():
    with pytest.raises(DataSourceError, match="AAPL, GOOG, IBM"):
        files.sample_path("MSFT")


@pytest.mark.network
def test_real_yfinance_download():
    df = yahoo.fetch_prices("MSFT", dt.date(2024, 1, 1), dt.date(2024, 2, 1))
    assert len(df) > 15


def test_an_invalid_download_never_replaces_the_cache(tmp_path, fake_yf):
    from stockcast.config import build_config
    from stockcast.errors import DataValidationError

    good = make_prices(300)
    path = cache.write_cache(tmp_path, "MSFT", good)
    before = path.read_bytes()
    bad = make_prices(320)
    bad.loc[310, "Close"] = -1.0  # yfinance hands back a broken bar
    fake_yf.frames["MSFT"] = bad
    full_cfg = build_config({"data": {"data_dir": str(tmp_path), "source": "yfinance",
                                      "start": "2015-01-01", "retries": 0}})
    prices = sources.load_prices("MSFT", full_cfg.data, today=TODAY)
    with pytest.raises(DataValidationError):
        validate_prices(prices, full_cfg.window, full_cfg.validation, tmp_path / "reports")
    assert path.read_bytes() == before


def test_a_repeated_latest_bar_from_yahoo_keeps_the_latest_copy(fake_yf, caplog):
    frame = make_prices(30)
    last = frame.iloc[[-1]].copy()
    last["Close"] = last["Close"] * 1.01  # the settled copy of the same day
    last["High"] = last[["High", "Close"]].max(axis=1)
    fake_yf.frames["MSFT"] = pd.concat([frame, last], ignore_index=True)
    df = yahoo.fetch_prices("MSFT", None, None)
    assert len(df) == 30 and df["Date"].is_unique
    assert df["Close"].iloc[-1] == pytest.approx(last["Close"].iloc[0])
    assert "repeated bar" in caplog.text


def test_links_are_followed_for_reads_and_never_written_through(tmp_path, fake_yf):
    """One policy: a link the user made is read through; a write never goes through a link
    that leaves the home (a link at the file itself is replaced inside the home)."""
    from stockcast.errors import ConfigError

    home, outside = tmp_path / "home", tmp_path / "outside"
    outside.mkdir()
    # A cache file linked out of the home is read, and auto mode uses it when Yahoo is down.
    cache.write_cache(outside, "GOOG", make_prices(200))
    (home / "cache").mkdir(parents=True)
    (home / "cache" / "GOOG.parquet").symlink_to(outside / "cache" / "GOOG.parquet")
    fake_yf.error = ConnectionError("Could not resolve host")
    out = sources.load_prices("GOOG", cfg(home, source="auto", start=None))
    assert out.source == "cache" and len(out.frame) == 200
    # Replacing that cache writes a file in the home; the file outside is untouched.
    before = (outside / "cache" / "GOOG.parquet").read_bytes()
    cache.write_cache(home, "GOOG", make_prices(150))
    assert not (home / "cache" / "GOOG.parquet").is_symlink()
    assert (outside / "cache" / "GOOG.parquet").read_bytes() == before
    # A snapshot folder linked out of the home is refused before anything is written.
    import shutil

    shutil.rmtree(home / "raw", ignore_errors=True)
    (home / "raw").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ConfigError, match=r"is a link that leads outside .*Reads follow links"):
        cache.write_snapshot(home, "GOOG", make_prices(50), "yfinance")
    assert not (outside / "GOOG").exists()


def test_the_console_gets_the_cause_in_a_few_words_and_the_log_the_rest():
    detail = ("Failed to get ticker 'GOOG' reason: Failed to perform, curl: (6) Could not "
              "resolve host: query2.finance.yahoo.com. See https://curl.se/libcurl/c/libcurl-"
              "errors.html first for more details." + " x" * 200)
    assert yahoo.short_detail(detail) == ("curl: (6) Could not resolve host: "
                                          "query2.finance.yahoo.com")
    assert len(yahoo.short_detail("y" * 500)) == yahoo.DETAIL_CHARS
    assert yahoo.short_detail("timed out") == "timed out"


def test_a_watchlist_downloads_at_once_and_each_ticker_keeps_its_own_error(tmp_path, fake_yf):
    fake_yf.frames = {"GOOG": make_prices(300), "IBM": make_prices(300, seed=1)}
    cfg = DataConfig(source="yfinance", data_dir=tmp_path, start=dt.date(2015, 1, 1))
    fetched = sources.prefetch_yahoo(("GOOG", "NOPE", "IBM"), cfg, today=dt.date(2016, 3, 1))
    assert len(fetched["GOOG"]) == len(fetched["IBM"]) == 300
    assert isinstance(fetched["NOPE"], DataSourceError) and "NOPE" in str(fetched["NOPE"])
    calls = len(fake_yf.calls)
    prices = sources.load_prices("GOOG", cfg, prefetched=fetched["GOOG"])
    assert len(fake_yf.calls) == calls  # its own download, not another request
    assert prices.source == "yfinance" and prices.cache_pending and len(prices.frame) == 300
    with pytest.raises(DataSourceError, match="NOPE"):
        sources.load_prices("NOPE", cfg, prefetched=fetched["NOPE"])
    # A transient failure in the batch still falls back per ticker (auto: cache, then sample).
    auto = cfg.model_copy(update={"source": "auto"})
    down = yahoo.classify_error("AAPL", ConnectionError("Could not resolve host"))
    fallback = sources.load_prices("AAPL", auto, prefetched=down)
    assert fallback.source == "sample" and "yfinance failed" in fallback.notes[0]
