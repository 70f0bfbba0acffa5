"""The forecast ledger (what live monitoring scores) survives what breaks it: a corrupt file
is kept aside and forecasting goes on, two forecasts at once keep one readable ledger, another
ticker's ledger is set aside, not scored."""

from __future__ import annotations

import pandas as pd
import pytest
from cli_project import cli_process, forecast, last_forecast_run, ledger_of, write_cfg

from stockcast.data.files import read_price_file, sample_path

pytestmark = pytest.mark.slow


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
