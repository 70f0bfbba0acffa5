"""Bad input through the real CLI or flow: an unknown ticker, a network that is down, short,
malformed or impossible price files, odd spellings and formats. Each case ends with one clear
message naming the cause and a non-zero exit, or is read correctly, and loses nothing: the
cache bytes, the registered versions and the `champion` alias stay as they were. (Refused
configurations: tests/test_config_refusals.py.)"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_project import cli_process, fails_cleanly, forecast, ledger_of, state, store_uri, write_cfg
from helpers import make_prices
from mlflow.tracking import MlflowClient

from stockcast.cli import main
from stockcast.data.files import read_price_file, sample_path
from stockcast.errors import ConfigError
from stockcast.market_calendar import next_trading_days

pytestmark = pytest.mark.slow

START = dt.date(2004, 1, 1)  # the bundled GOOG history starts in 2004


def _bad(kind: str, frame):
    f = frame.copy()
    if kind == "nan":
        f.loc[50, "Close"] = np.nan
    elif kind == "duplicate":
        f.loc[60, "Date"] = f.loc[59, "Date"]
    elif kind == "unsorted":  # two days swapped (a file newest first throughout is read)
        f.iloc[[100, 101]] = f.iloc[[101, 100]].to_numpy()
    elif kind == "negative":
        f.loc[70, "Open"] = -3.0
        f.loc[71, "Close"] = 0.0
    elif kind == "high-low":
        f.loc[80, "High"] = f.loc[80, "Low"] / 2
    elif kind == "missing-column":
        f = f.drop(columns=["High"])
    elif kind == "non-numeric":
        f["Volume"] = f["Volume"].astype(object)
        f.loc[90, "Volume"] = "lots"
    return f


def european_csv(path: Path, thousands: bool = True) -> pd.DataFrame:
    frame = read_price_file(sample_path("GOOG")).tail(600).reset_index(drop=True)
    out = frame.copy()
    out["Date"] = frame["Date"].dt.strftime("%d.%m.%Y")
    for col in ["Open", "High", "Low", "Close"]:
        values = frame[col] * (10 if thousands else 1)  # above 1,000: 1.234,56
        out[col] = [f"{v:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
                    for v in values]
    out.to_csv(path, sep=";", index=False)
    return frame


def _listing(*dirs: Path) -> set[str]:
    return {str(p) for d in dirs if d.exists() for p in d.iterdir()}


def test_unknown_ticker(project, capsys):
    fails_cleanly(capsys, ["run", "--config", write_cfg(project), "--ticker", "ZZZZ"], project,
                  "ZZZZ", "unknown or delisted")


def test_unknown_tickers_fail_once_each_and_the_good_one_registers(project, capsys):
    unknown = [f"ZZQ{i}" for i in range(9)]  # more than one wave (4 x max_workers)
    args = ["run", "--config", write_cfg(project), "--source", "sample", "--ticker", "GOOG"]
    for t in unknown:
        args += ["--ticker", t]
    assert main(args) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "9 of 10 ticker(s) failed (succeeded: GOOG)" in text
    for t in unknown:
        assert f"{t}: prices: DataSourceError: no bundled sample for '{t}'" in text, text[-2000:]
    models, _ = state(project)
    assert models["stockcast-GOOG"][0] == ["1", "2"] and len(models) == 1


def test_a_failing_ticker_is_one_error_line_on_the_console(project, prefect_api):
    """As a user sees it in a terminal: the failure once, in the command's summary (Prefect's
    own three or four lines per failure stay in the Prefect UI and the log file)."""
    proc = cli_process(project, prefect_api, "run", "--config", write_cfg(project), "--source",
                       "sample", "--ticker", "NOPE")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out
    assert out.count("no bundled sample for 'NOPE'") == 1, out
    assert "NOPE: prices: DataSourceError" in out and "Traceback" not in out
    assert "no bundled sample for 'NOPE'" in (project / "logs" / "stockcast.log").read_text()


def test_one_bad_symbol_in_a_batched_download_fails_only_itself(project, capsys, fake_yf):
    args = ["run", "--config", write_cfg(project), "--source", "yfinance", "--ticker", "GOOG",
            "--ticker", "NOPE"]
    assert main(args) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "1 of 2 ticker(s) failed (succeeded: GOOG)" in text
    assert "NOPE: prices: DataSourceError: Yahoo Finance returned no rows for 'NOPE'" in text
    symbols = [c["symbol"] for c in fake_yf.calls]
    assert symbols.count("NOPE") == 1 and "GOOG" in symbols  # no retry of a permanent error
    assert state(project)[0]["stockcast-GOOG"][0] == ["1", "2"]


def test_the_same_ticker_twice_trains_once(project, capsys):
    assert main(["run", "--config", write_cfg(project), "--source", "cache", "--ticker", "GOOG",
                 "--ticker", "goog"]) == 0
    assert state(project)[0]["stockcast-GOOG"][0] == ["1", "2"]


def test_network_down_is_retried_then_fails_clearly(project, capsys, fake_yf):
    fake_yf.error = ConnectionError("Failed to perform, curl: (6) Could not resolve host")
    cfg = write_cfg(project, data={"retries": 2, "retry_backoff_seconds": 0.01})
    fails_cleanly(capsys, ["run", "--config", cfg, "--source", "yfinance"], project,
                  "could not reach Yahoo Finance", "GOOG")
    assert len(fake_yf.calls) == 3  # retried with backoff, then gave up


def test_rate_limit_is_retried_then_fails_clearly(project, capsys, fake_yf):
    import yfinance

    fake_yf.error = yfinance.exceptions.YFRateLimitError()
    cfg = write_cfg(project, data={"retries": 1, "retry_backoff_seconds": 0.01})
    fails_cleanly(capsys, ["run", "--config", cfg, "--source", "yfinance"], project,
                  "rate-limited")
    assert len(fake_yf.calls) == 2


def test_network_down_in_auto_mode_falls_back_to_the_cache_and_records_it(project, capsys,
                                                                           fake_yf):
    fake_yf.error = ConnectionError("Could not resolve host")
    assert main(["run", "--config", write_cfg(project)]) == 0
    out = capsys.readouterr().out
    assert "data: cache" in out
    client = MlflowClient(store_uri(project))
    mv = client.get_model_version("stockcast-GOOG", "2")
    tags = client.get_run(mv.run_id).data.tags
    assert tags["data.source"] == "cache" and "yfinance failed" in tags["data.fallback"]


def test_corrupt_cache_is_never_used_silently(project, capsys):
    cache = project / "data" / "cache" / "GOOG.parquet"
    cache.write_bytes(cache.read_bytes()[:200])
    fails_cleanly(capsys, ["run", "--config", write_cfg(project), "--source", "cache"], project,
                  "corrupt", "GOOG.parquet")
    # Online, the history is re-fetched and the cache repaired.
    assert main(["run", "--config", write_cfg(project), "--source", "yfinance"]) == 0
    import pandas as pd

    assert len(pd.read_parquet(cache)) == len(read_price_file(sample_path("GOOG")))


def test_history_too_short(project, capsys):
    path = project / "short.csv"
    make_prices(25).to_csv(path, index=False)
    fails_cleanly(capsys, ["run", "--config", write_cfg(project), "--csv", str(path),
                           "--ticker", "GOOG"], project, "need at least", "rows of history")


def test_small_cases_name_their_cause(project, capsys):
    flat = read_price_file(sample_path("GOOG")).tail(400)
    for col in ("Open", "High", "Low", "Close"):
        flat[col] = 100.0
    path = project / "flat.csv"
    flat.to_csv(path, index=False)
    fails_cleanly(capsys, ["run", "--config", write_cfg(project), "--csv", str(path),
                           "--ticker", "FLAT"], project, "flat series")
    fifo = project / "prices.fifo"
    os.mkfifo(fifo)
    fails_cleanly(capsys, ["run", "--csv", str(fifo), "--ticker", "X"], project,
                  "is not a regular file")
    fails_cleanly(capsys, ["run", "--csv", str(project), "--ticker", "X"], project,
                  "is a directory")


def test_a_history_too_long_is_refused_before_training(project, capsys):
    path = project / "long.csv"
    n = 60_000
    close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, n)))
    pd.DataFrame({"Date": pd.date_range("1800-01-01", periods=n, freq="D"), "Open": close,
                  "High": close * 1.01, "Low": close * 0.99, "Close": close,
                  "Volume": 1e6}).to_csv(path, index=False)
    started = time.monotonic()
    fails_cleanly(capsys, ["run", "--csv", str(path), "--ticker", "LONG"], project, "max_rows")
    assert time.monotonic() - started < 60


@pytest.mark.parametrize(("kind", "needle"), [
    ("nan", "not_nullable"), ("duplicate", "field_uniqueness"),
    ("unsorted", "strictly increasing"), ("negative", "Open must be > 0"),
    ("high-low", "High must be >= max(Open, Close)"), ("missing-column", "High"),
    ("non-numeric", "coerce"),
])
def test_bad_rows_are_reported_not_dropped(project, capsys, kind, needle):
    path = project / f"{kind}.csv"
    _bad(kind, make_prices(300)).to_csv(path, index=False)
    err = fails_cleanly(capsys, ["run", "--config", write_cfg(project), "--csv", str(path),
                                 "--ticker", "GOOG"], project, "price data is invalid", needle)
    assert "Full report:" in err  # the failure-cases table was saved for the run


def test_malformed_csv(project, capsys):
    path = project / "garbage.csv"
    path.write_bytes(b"\x00\x01\x02garbage\n\xff\xfe;;;\n")
    fails_cleanly(capsys, ["run", "--config", write_cfg(project), "--csv", str(path),
                           "--ticker", "GOOG"], project, "garbage.csv")


def test_a_leading_blank_line_is_read_and_an_empty_file_is_named(project, capsys):
    frame = read_price_file(sample_path("GOOG")).tail(400)
    path = project / "blank.csv"
    path.write_text("\n\n" + frame.to_csv(index=False))
    assert main(["validate", "--csv", str(path), "--ticker", "BLANK"]) == 0
    empty = project / "empty.csv"
    empty.write_text("")
    fails_cleanly(capsys, ["run", "--csv", str(empty), "--ticker", "EMPTY"], project, "is empty")


def test_european_decimal_commas_and_day_first_dates_are_read_correctly(project, capsys):
    path = project / "euro.csv"
    frame = european_csv(path)
    assert main(["validate", "--csv", str(path), "--ticker", "EURO"]) == 0
    from stockcast.data.files import read_price_file as read

    df = read(path)
    np.testing.assert_allclose(df["Close"], (frame["Close"] * 10).round(2))
    assert (df["Date"] == frame["Date"]).all()


def test_an_ambiguous_decimal_separator_is_refused_with_the_option(project, capsys):
    path = project / "ambiguous.csv"
    pd.DataFrame({"Date": pd.bdate_range("2020-01-01", periods=300).strftime("%Y-%m-%d"),
                  "Open": "1,250", "High": "1,300", "Low": "1,200", "Close": "1,275",
                  "Volume": "1000"}).to_csv(path, index=False)
    fails_cleanly(capsys, ["run", "--csv", str(path), "--ticker", "AMB"], project,
                  "--decimal")
    from stockcast.data.files import read_price_file as read

    assert read(path, decimal=",")["Close"].iloc[0] == pytest.approx(1.275)
    assert read(path, decimal=".")["Close"].iloc[0] == pytest.approx(1275)


def test_timezone_aware_dates_across_daylight_saving_are_read(project, capsys):
    frame = read_price_file(sample_path("GOOG")).tail(400).reset_index(drop=True)
    stamped = frame.assign(Date=frame["Date"].dt.tz_localize("America/New_York"))
    path = project / "tz.csv"
    stamped.to_csv(path, index=False)  # what yfinance's frames give with .to_csv()
    assert {"-05:00", "-04:00"} <= {d[-6:] for d in pd.read_csv(path)["Date"]}
    assert main(["validate", "--csv", str(path), "--ticker", "TZ"]) == 0
    assert (read_price_file(path)["Date"] == frame["Date"]).all()


def test_dates_past_2262_are_reported_not_a_traceback(project, capsys):
    frame = read_price_file(sample_path("GOOG")).tail(400).reset_index(drop=True)
    out = frame.assign(Date=frame["Date"].dt.strftime("%Y-%m-%d"))
    out.loc[len(out) - 1, "Date"] = "2300-01-02"
    path = project / "far.csv"
    out.to_csv(path, index=False)
    fails_cleanly(capsys, ["run", "--csv", str(path), "--ticker", "FAR"], project,
                  "price data is invalid", "Date")


def test_dates_in_the_future_are_refused(project, capsys):
    frame = read_price_file(sample_path("GOOG")).tail(400).reset_index(drop=True)
    future = frame.assign(Date=pd.bdate_range(pd.Timestamp.today().normalize() -
                                              pd.Timedelta(days=300), periods=len(frame)))
    path = project / "future.csv"
    future.to_csv(path, index=False)
    fails_cleanly(capsys, ["run", "--csv", str(path), "--ticker", "FUT"], project,
                  "in the future")


def test_a_1987_history_is_dated_by_the_nyse_calendar(project, capsys):
    recent = read_price_file(sample_path("GOOG")).tail(300).reset_index(drop=True)
    sessions = next_trading_days(pd.Timestamp("1986-06-02"), 500)
    recent["Date"] = sessions[sessions <= "1987-12-24"][-300:]
    assert recent["Date"].iloc[-1] == pd.Timestamp("1987-12-24")
    code, text = forecast(project, capsys, recent, data={"start": "1980-01-01"})
    assert code == 0, text
    assert (project / "forecasts" / "GOOG" / "GOOG-1987-12-28.csv").is_file()  # not the 25th


def test_an_unadjusted_reverse_split_is_refused_unless_declared(project, capsys):
    frame = read_price_file(sample_path("GOOG"))
    cut = len(frame) - 300
    for col in ("Open", "High", "Low", "Close"):
        frame.loc[cut:, col] *= 1000.0  # a 1:1000 reverse split, unadjusted
    path = project / "split.csv"
    frame.to_csv(path, index=False)
    fails_cleanly(capsys, ["run", "--config", write_cfg(project), "--csv", str(path),
                           "--ticker", "GOOG"], project, "one-day move beyond x10 or /10",
                  "max_move_factor")
    declared = write_cfg(project, validation={"max_move_factor": None})
    assert main(["validate", "--config", declared, "--csv", str(path), "--ticker", "GOOG"]) == 0
    assert "VALID" in capsys.readouterr().out


@pytest.mark.parametrize("ticker", ["../../../tmp/x/evil", "/tmp/evil", "A" * 500, "_GSPC"])
def test_a_ticker_cannot_write_outside_the_project(project, capsys, ticker):
    watched = [Path(tempfile.gettempdir()), Path("/"), project.parent]
    before = _listing(*watched)
    err = fails_cleanly(capsys, ["run", "--config", write_cfg(project), "--ticker", ticker],
                        project, "not a ticker symbol")
    assert len(err.splitlines()) <= 4 and "File name too long" not in err
    # nothing named after the ticker appeared (other test processes write to /tmp meanwhile)
    stem = Path(ticker).name[:20]
    assert not {p for p in _listing(*watched) - before if stem in Path(p).name}


def test_links_out_of_the_home_are_read_but_never_written_through(project, capsys, tmp_path,
                                                                 fake_yf):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cache = project / "data" / "cache" / "GOOG.parquet"
    shutil.move(cache, elsewhere / "GOOG.parquet")
    cache.symlink_to(elsewhere / "GOOG.parquet")
    before = (elsewhere / "GOOG.parquet").read_bytes()
    assert forecast(project, capsys, source="cache")[0] == 0  # reads follow the link
    fake_yf.error = ConnectionError("Could not resolve host: query2.finance.yahoo.com")
    code, text = forecast(project, capsys, source="auto")
    assert code == 0 and "FALLING BACK" in text  # auto mode still falls back to it

    raw = project / "data" / "raw"
    if raw.exists():
        shutil.rmtree(raw)
    (elsewhere / "raw").mkdir()
    raw.symlink_to(elsewhere / "raw")
    fake_yf.error = None
    fails_cleanly(capsys, ["run", "--config", write_cfg(project), "--source", "yfinance"],
                  project, "refusing to write", "writes never leave the home")
    assert list((elsewhere / "raw").iterdir()) == []
    assert (elsewhere / "GOOG.parquet").read_bytes() == before


def test_flow_parameters_are_bounded_like_the_cli(project):
    from flows.forecast import forecast_pipeline

    with pytest.raises(ConfigError, match="days must be a whole number of at least 1"):
        forecast_pipeline(tickers=["GOOG"], days=-5)
    assert not ledger_of(project).exists()
