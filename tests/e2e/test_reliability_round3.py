"""Reliability round 3 (issue #21), each case through the real CLI or flow: the message, the
exit code, and what must stay as it was (cache, registry, champion, ledger). The REST
service's cases (3, 5) are driven over HTTP in test_operations.py."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest
from cli_project import cli_process, fails_cleanly, state, store_uri, write_cfg
from mlflow.tracking import MlflowClient

from stockcast.cli import main
from stockcast.data.files import read_price_file, sample_path
from stockcast.errors import ConfigError
from stockcast.market_calendar import next_trading_days

pytestmark = pytest.mark.slow


def forecast(project, capsys, frame: pd.DataFrame | None = None, source: str = "cache",
             **cfg) -> tuple[int, str]:
    """`stockcast forecast` for GOOG from ``frame`` (as a CSV) or from ``source``."""
    args = ["forecast", "--config", write_cfg(project, **cfg), "--ticker", "GOOG"]
    if frame is None:
        args += ["--source", source]
    else:
        path = project / "prices.csv"
        frame.to_csv(path, index=False)
        args += ["--csv", str(path)]
    code = main(args)
    out = capsys.readouterr()
    return code, out.out + out.err


def last_forecast_run(project):
    client = MlflowClient(store_uri(project))
    exp = client.get_experiment_by_name("stockcast-forecasts")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])[0]


def ledger_of(project):
    return project / "forecasts" / "GOOG" / "ledger.parquet"


# 1 ---------------------------------------------------------------------------------------
def test_a_corrupt_ledger_is_kept_aside_and_forecasting_goes_on(project, capsys):
    assert forecast(project, capsys)[0] == 0
    ledger = ledger_of(project)
    half = ledger.read_bytes()[: ledger.stat().st_size // 2]
    ledger.write_bytes(half)
    code, text = forecast(project, capsys)
    assert code == 0, text
    assert "LEDGER: the forecast ledger" in text and "kept aside as ledger.corrupt-" in text
    [aside] = ledger.parent.glob("ledger.corrupt-*.parquet")
    assert aside.read_bytes() == half  # the bad file, as it was
    assert len(pd.read_parquet(ledger)) > 0  # a new ledger with today's forecast
    assert "kept aside" in last_forecast_run(project).data.tags["monitor.ledger"]


# 2 ---------------------------------------------------------------------------------------
def test_two_forecasts_at_once_keep_one_readable_ledger(project, prefect_api):
    history = read_price_file(sample_path("GOOG"))
    cfg = write_cfg(project)
    paths = []
    for end in (-2, -1):  # two origins, so both writers' rows must survive
        path = project / f"through{end}.csv"
        history.iloc[:end].to_csv(path, index=False)
        paths.append(path)
    procs = [cli_process(project, prefect_api, "forecast", "--config", cfg, "--ticker", "GOOG",
                         "--csv", str(p)) for p in paths]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    rows = pd.read_parquet(ledger_of(project))
    assert sorted(rows["last_date"].dt.date.unique()) == [history["Date"].iloc[-3].date(),
                                                         history["Date"].iloc[-2].date()]
    folder = ledger_of(project).parent
    assert not list(folder.glob("*.tmp")) and not list(folder.glob("ledger.corrupt-*"))


# 4 ---------------------------------------------------------------------------------------
def test_a_ledger_of_another_ticker_is_set_aside_not_scored(project, capsys):
    history = read_price_file(sample_path("GOOG"))
    assert forecast(project, capsys, history.iloc[:-3])[0] == 0
    ledger = ledger_of(project)
    copied = pd.read_parquet(ledger).assign(ticker="IBM")  # as if IBM's ledger were copied in
    copied.to_parquet(ledger, index=False)
    code, text = forecast(project, capsys, history.iloc[:-2])  # its dates have arrived
    assert code == 0, text
    assert "of IBM, not GOOG: they were set aside" in text
    [aside] = ledger.parent.glob("ledger.foreign-*.parquet")
    assert len(pd.read_parquet(aside)) == len(copied)
    run = last_forecast_run(project)
    assert run.data.metrics.get("live_scored", 0) == 0 and run.data.tags["monitor.drift"] == "none"
    assert set(pd.read_parquet(ledger)["ticker"]) == {"GOOG"}


# 6 ---------------------------------------------------------------------------------------
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


# 7 ---------------------------------------------------------------------------------------
def test_an_empty_or_undecodable_model_key_is_refused(project, capsys, monkeypatch):
    monkeypatch.setenv("STOCKCAST_MODEL_KEY", "")
    fails_cleanly(capsys, ["forecast", "--source", "cache"], project,
                  "STOCKCAST_MODEL_KEY is set but empty", "verification off")
    monkeypatch.setenv("STOCKCAST_MODEL_KEY", "caf\udce9")  # a Latin-1 byte, UTF-8 locale
    fails_cleanly(capsys, ["forecast", "--source", "cache"], project, "not valid UTF-8")
    assert not ledger_of(project).exists()  # refused before anything ran


# 8 ---------------------------------------------------------------------------------------
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


# 9 ---------------------------------------------------------------------------------------
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


# 10 --------------------------------------------------------------------------------------
def test_flow_parameters_are_bounded_like_the_cli(project):
    from flows.forecast import forecast_pipeline

    with pytest.raises(ConfigError, match="days must be a whole number of at least 1"):
        forecast_pipeline(tickers=["GOOG"], days=-5)
    assert not ledger_of(project).exists()


# 11 --------------------------------------------------------------------------------------
def test_the_same_ticker_twice_trains_once(project, capsys):
    assert main(["run", "--config", write_cfg(project), "--source", "cache", "--ticker", "GOOG",
                 "--ticker", "goog"]) == 0
    assert state(project)[0]["stockcast-GOOG"][0] == ["1", "2"]


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


def test_a_1987_history_is_dated_by_the_nyse_calendar(project, capsys):
    recent = read_price_file(sample_path("GOOG")).tail(300).reset_index(drop=True)
    sessions = next_trading_days(pd.Timestamp("1986-06-02"), 500)
    recent["Date"] = sessions[sessions <= "1987-12-24"][-300:]
    assert recent["Date"].iloc[-1] == pd.Timestamp("1987-12-24")
    code, text = forecast(project, capsys, recent, data={"start": "1980-01-01"})
    assert code == 0, text
    assert (project / "forecasts" / "GOOG" / "GOOG-1987-12-28.csv").is_file()  # not the 25th


def test_a_champion_without_model_files_names_the_version(project, capsys):
    client = MlflowClient(store_uri(project))
    empty = project / "hand-registered"
    empty.mkdir()
    mv = client.create_model_version("stockcast-GOOG", source=str(empty))
    client.set_registered_model_alias("stockcast-GOOG", "champion", mv.version)
    fails_cleanly(capsys, ["forecast", "--source", "cache"], project,
                  f"stockcast-GOOG v{mv.version} (the champion) has no model files",
                  "stockcast promote")


def test_a_champion_whose_model_file_is_corrupt_names_the_version_file_and_remedy(
        project, capsys):
    """No key, nothing verified: the pickle itself is broken. The forecast refuses with the
    version, the file and what to do; the registry is left as it was."""
    import shutil
    from urllib.parse import urlparse

    client = MlflowClient(store_uri(project))
    champion = client.get_model_version_by_alias("stockcast-GOOG", "champion")
    broken = project / "broken-model"
    shutil.copytree(urlparse(client.get_model_version_download_uri(
        "stockcast-GOOG", champion.version)).path, broken)
    (broken / "python_model.pkl").write_bytes(b"\x80\x04 truncated")
    mv = client.create_model_version("stockcast-GOOG", source=str(broken))
    client.set_registered_model_alias("stockcast-GOOG", "champion", mv.version)
    try:
        fails_cleanly(capsys, ["forecast", "--source", "cache"], project,
                      f"stockcast-GOOG v{mv.version} (the champion) cannot be loaded",
                      "python_model.pkl", "stockcast promote --ticker GOOG --version N")
    finally:
        client.set_registered_model_alias("stockcast-GOOG", "champion", champion.version)


# issue #19: the wave's downloads at once, each ticker with its own error ------------------
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
