"""The second adversarial round: each case fails with one clear message and a non-zero exit,
or is handled, and loses nothing (cache bytes, registered versions, the champion alias)."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_project import fails_cleanly, state, store_uri, write_cfg
from mlflow.tracking import MlflowClient

from stockcast.cli import main
from stockcast.data.files import read_price_file, sample_path

pytestmark = pytest.mark.slow


def _configure(uri: str, queue) -> None:
    from stockcast.registry.store import MlflowStore

    try:
        queue.put(MlflowStore(uri).experiment_id())
    except Exception as exc:  # reported to the parent, which fails the test with it
        queue.put(f"{type(exc).__name__}: {exc}")


# 1 ---------------------------------------------------------------------------------------
def test_concurrent_first_runs_create_one_healthy_store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}?timeout=30"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_configure, args=(uri, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(60)
    assert len(set(results)) == 1 and results[0].isdigit(), results  # one experiment id
    client = MlflowClient(uri)
    assert client.get_experiment_by_name("stockcast").tags["mlflow.experimentKind"] == \
        "custom_model_development"


def test_a_half_migrated_store_is_repaired(project):
    db = project / "mlflow" / "mlflow.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE _alembic_tmp_latest_metrics AS SELECT * FROM latest_metrics")
    con.commit()
    con.close()
    before = state(project)
    assert main(["models"]) == 0  # opens the store: repaired, nothing lost
    assert state(project) == before
    with sqlite3.connect(db) as con:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert not any(n.startswith("_alembic_tmp_") for n in names)


# 2 ---------------------------------------------------------------------------------------
def _listing(*dirs: Path) -> set[str]:
    return {str(p) for d in dirs if d.exists() for p in d.iterdir()}


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


# 3 ---------------------------------------------------------------------------------------
def test_a_horizon_change_is_refused_cleanly(project, capsys):
    # An h=3 champion (promoted by hand), then the nightly h=1 run.
    assert main(["run", "--config", write_cfg(project, window={"horizon": 3}),
                 "--source", "cache"]) == 0
    assert main(["promote", "--ticker", "GOOG", "--version", "2"]) == 0
    client = MlflowClient(store_uri(project))
    champion = str(client.get_model_version_by_alias("stockcast-GOOG", "champion").version)
    assert champion == "2"
    assert main(["run", "--config", write_cfg(project), "--source", "cache"]) == 0
    out = capsys.readouterr().out
    assert "allow_horizon_change" in out and "Traceback" not in out
    assert str(client.get_model_version_by_alias("stockcast-GOOG", "champion").version) == champion
    newest = max(client.search_model_versions("name='stockcast-GOOG'"), key=lambda v: int(v.version))
    assert newest.tags["promotion.promote"] == "False"  # fully registered, decision recorded


# 4 ---------------------------------------------------------------------------------------
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


# 5 ---------------------------------------------------------------------------------------
def test_a_yaml_alias_bomb_is_refused_at_once(project, capsys):
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefghijkl", "bcdefghijklm", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    lines.append("train: *m")
    bomb = project / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    fails_cleanly(capsys, ["run", "--config", str(bomb)], project, "aliases")
    assert time.monotonic() - started < 10


# 6 ---------------------------------------------------------------------------------------
def test_timezone_aware_dates_across_daylight_saving_are_read(project, capsys):
    frame = read_price_file(sample_path("GOOG")).tail(400).reset_index(drop=True)
    stamped = frame.assign(Date=frame["Date"].dt.tz_localize("America/New_York"))
    path = project / "tz.csv"
    stamped.to_csv(path, index=False)  # what yfinance's frames give with .to_csv()
    assert {"-05:00", "-04:00"} <= {d[-6:] for d in pd.read_csv(path)["Date"]}
    assert main(["validate", "--csv", str(path), "--ticker", "TZ"]) == 0
    assert (read_price_file(path)["Date"] == frame["Date"]).all()


# 7 ---------------------------------------------------------------------------------------
def test_an_absurd_learning_rate_is_refused_before_any_work(project, capsys):
    fails_cleanly(capsys, ["run", "--config", write_cfg(project, train={"lr": 1e9}),
                           "--source", "cache"], project, "train.lr", "less than or equal")


def test_negative_days_are_refused_by_the_parser(project, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["forecast", "--days", "-1"])
    assert exit_.value.code == 2 and "must be at least 1" in capsys.readouterr().err


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


@pytest.mark.parametrize("section,key,value", [("window", "min_windows_per_split", 10**9),
                                               ("window", "sequence_length", 10**9),
                                               ("train", "epochs", 10**9)])
def test_absurd_sizes_are_refused_by_the_config(project, capsys, section, key, value):
    fails_cleanly(capsys, ["run", "--config", write_cfg(project, **{section: {key: value}})],
                  project, f"{section}.{key}", "less than or equal")


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


def test_a_read_only_store_fails_before_training(project):
    db = project / "mlflow" / "mlflow.db"
    before = state(project)
    for path in [db, db.parent, db.parent / "artifacts"]:
        os.chmod(path, 0o555 if path.is_dir() else 0o444)
    try:
        code = (
            "import os, sys\n"
            "from pathlib import Path\n"
            "from stockcast.registry.sqlite_upkeep import check_writable\n"
            "if os.geteuid() == 0:\n"
            "    os.setgid(65534); os.setuid(65534)  # root writes anything: test as nobody\n"
            f"check_writable(Path({str(db)!r}))\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    finally:
        for path in [db, db.parent, db.parent / "artifacts"]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert out.returncode != 0 and "cannot be written" in out.stderr, out.stderr
    assert "nothing was trained" in out.stderr
    assert state(project) == before


# 10 / 11 ---------------------------------------------------------------------------------
def test_a_leading_blank_line_is_read_and_an_empty_file_is_named(project, capsys):
    frame = read_price_file(sample_path("GOOG")).tail(400)
    path = project / "blank.csv"
    path.write_text("\n\n" + frame.to_csv(index=False))
    assert main(["validate", "--csv", str(path), "--ticker", "BLANK"]) == 0
    empty = project / "empty.csv"
    empty.write_text("")
    fails_cleanly(capsys, ["run", "--csv", str(empty), "--ticker", "EMPTY"], project, "is empty")


def test_the_dask_dashboard_listens_on_loopback_only():
    from flows.train import task_runner_for
    from stockcast.config import PipelineConfig

    runner = task_runner_for(PipelineConfig.model_validate({"orchestration": {"task_runner": "dask"}}))
    assert runner.cluster_kwargs["dashboard_address"].startswith("127.0.0.1:")


# 8 ---------------------------------------------------------------------------------------
def test_with_a_key_only_signed_champions_are_loaded(project, capsys, monkeypatch):
    monkeypatch.setenv("STOCKCAST_MODEL_KEY", "team-secret")
    assert main(["run", "--config", write_cfg(project), "--source", "cache"]) == 0
    client = MlflowClient(store_uri(project))
    signed = max(client.search_model_versions("name='stockcast-GOOG'"), key=lambda v: int(v.version))
    assert client.get_run(signed.run_id).data.tags["stockcast.model_hmac"]
    # The unsigned champion's evaluation fit was not unpickled: compared on its logged table.
    assert "not signed" in signed.tags["promotion.evidence"]
    assert main(["promote", "--ticker", "GOOG", "--version", str(signed.version)]) == 0
    assert main(["forecast", "--source", "cache"]) == 0  # signed with this key: loads
    capsys.readouterr()

    # v1 was logged without a key (as anyone with write access to the store could log one).
    assert main(["promote", "--ticker", "GOOG", "--version", "1"]) == 0
    fails_cleanly(capsys, ["forecast", "--source", "cache"], project, "not signed",
                  "refusing to load")
    monkeypatch.setenv("STOCKCAST_MODEL_KEY", "another-key")
    assert main(["promote", "--ticker", "GOOG", "--version", str(signed.version)]) == 0
    fails_cleanly(capsys, ["forecast", "--source", "cache"], project, "signature mismatch")
    stored = (project / "mlflow" / "mlflow.db").read_bytes()
    assert b"team-secret" not in stored and b"another-key" not in stored
