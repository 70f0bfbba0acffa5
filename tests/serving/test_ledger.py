"""The forecast ledger survives corruption, concurrent writers and foreign rows."""

import multiprocessing

import pandas as pd
from serving.test_monitoring import forecast, prices

from stockcast.serving.ledger import ledger_path, record_forecast


def test_a_corrupt_ledger_is_kept_aside_and_a_new_one_started(tmp_path):
    frame = prices([100.0, 101.0, 102.0])
    path = ledger_path(tmp_path, "T")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00garbage, not parquet" * 10)
    out = record_forecast(tmp_path, "T", forecast(frame["Date"].iloc[0], 100.0))
    assert len(out.rows) == 1 and len(pd.read_parquet(path)) == 1
    (aside,) = path.parent.glob("ledger.corrupt-*.parquet")
    assert aside.read_bytes().startswith(b"\x00garbage")  # the bad file is kept as it was
    assert out.notes and "could not be read" in out.notes[0] and aside.name in out.notes[0]
    again = record_forecast(tmp_path, "T", forecast(frame["Date"].iloc[1], 101.0))
    assert len(again.rows) == 2 and not again.notes


def test_another_tickers_rows_are_refused_not_scored(tmp_path):
    frame = prices([100.0, 101.0, 102.0])
    record_forecast(tmp_path, "AAPL", forecast(frame["Date"].iloc[0], 50.0))
    ledger_path(tmp_path, "T").parent.mkdir(parents=True)
    ledger_path(tmp_path, "AAPL").replace(ledger_path(tmp_path, "T"))  # a renamed ledger
    out = record_forecast(tmp_path, "T", forecast(frame["Date"].iloc[1], 101.0))
    assert out.rows["ticker"].tolist() == ["T"]
    assert out.notes and "AAPL" in out.notes[0] and "not scored" in out.notes[0]
    assert list(ledger_path(tmp_path, "T").parent.glob("ledger.foreign-*.parquet"))


def _append_many(out_dir: str, start: int, n: int) -> None:
    days = pd.bdate_range("2024-01-01", periods=400)
    for i in range(start, start + n):
        record_forecast(out_dir, "T", forecast(days[i], 100.0 + i))


def test_two_concurrent_writers_keep_every_forecast(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), k * 100, 40)) for k in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    rows = pd.read_parquet(ledger_path(tmp_path, "T"))
    assert len(rows) == 80 and rows["last_date"].is_unique
    assert not list(tmp_path.rglob("*.tmp"))
