"""The command line in-process: help everywhere, exit codes, one clear message on error."""

import pytest

from stockcast import cli
from stockcast.cli import main
from stockcast.cli_parser import build_parser

COMMANDS = ["run", "forecast", "validate", "models", "promote", "report", "backtest"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: stockcast " + command in capsys.readouterr().out


def test_parser_lists_every_command():
    help_text = build_parser(cli.COMMANDS).format_help()
    for command in COMMANDS:
        assert command in help_text


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A project root for the CLI; ``home(name, frame)`` writes a CSV there."""
    monkeypatch.setenv("STOCKCAST_HOME", str(tmp_path))

    def write(name, frame):
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return str(path)

    return write


def test_validate_exits_0_on_valid_and_1_on_invalid(home, capsys, prices):
    assert main(["validate", "--csv", home("good.csv", prices)]) == 0
    assert "-> VALID" in capsys.readouterr().out
    bad = prices.copy()
    bad.loc[3, "Low"] = -1
    assert main(["validate", "--csv", home("bad.csv", bad)]) == 1
    out = capsys.readouterr().out
    assert "-> INVALID" in out and "Low must be > 0" in out


def test_errors_print_one_message_without_traceback(tmp_path, home, capsys):
    assert main(["validate", "--csv", str(tmp_path / "missing.csv")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: price file") and "Traceback" not in err
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("train:\n  epochs: -3\n")
    assert main(["run", "--config", str(bad_cfg)]) == 1
    err = capsys.readouterr().err
    assert "train.epochs" in err and "Traceback" not in err


def test_report_command_writes_the_figures(tmp_path, home, capsys):
    assert main(["report", "--ticker", "GOOG", "--source", "sample", "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "GOOG" / "price_history.png").exists()
    assert "largest one-day moves" in capsys.readouterr().out


def test_a_csv_without_ticker_is_named_after_its_file(home, capsys, prices):
    path = home("my_fund.csv", prices)
    assert main(["validate", "--csv", path]) == 0
    assert "validation of MY-FUND" in capsys.readouterr().out
    assert main(["validate", "--csv", path, "--ticker", "A", "--ticker", "B"]) == 1
    assert "at most one --ticker" in capsys.readouterr().err


def test_help_does_not_import_torch_or_mlflow():
    import subprocess
    import sys

    code = ("import sys; from stockcast.cli import COMMANDS; from stockcast.cli_parser import "
            "build_parser; build_parser(COMMANDS); "
            "heavy = [m for m in ('torch', 'mlflow', 'prefect', 'pandas') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_tool_state_is_kept_under_the_project_home(tmp_path, monkeypatch):
    import os

    from stockcast.console import apply_env_defaults

    for key in ("MPLCONFIGDIR", "PREFECT_HOME", "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))  # no Prefect profile of their own
    apply_env_defaults(tmp_path / "project")
    assert os.environ["MPLCONFIGDIR"].startswith(str(tmp_path / "project"))
    assert os.environ["PREFECT_HOME"] == str(tmp_path / "project" / ".prefect")
    assert os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] == "WARNING"  # quiet console
    # A user's own Prefect profile wins.
    monkeypatch.delenv("PREFECT_HOME")
    (tmp_path / "user" / ".prefect").mkdir(parents=True)
    (tmp_path / "user" / ".prefect" / "profiles.toml").write_text("")
    apply_env_defaults(tmp_path / "project")
    assert "PREFECT_HOME" not in os.environ


def test_the_run_summary_says_plainly_when_there_is_no_champion(capsys):
    from stockcast.cli import _print_summary

    base = {"version": "1", "source": "sample", "last_date": "2013-03-01", "pvalue": None,
            "skill_rmse_pct": -0.1, "dm_pvalue_naive": 0.98, "test_coverage_95": 0.95,
            "test_interval_score_95": 10.7, "ewma_interval_score_95": 10.8,
            "garch_interval_score_95": 10.9, "dm_pvalue_is95_garch": 0.03}
    _print_summary({"IBM": {**base, "promoted": False, "champion_version": None,
                            "reason": "refused by the sanity gate: ..."}})
    first = capsys.readouterr().out
    assert "no champion yet: this version was refused" in first and "kept" not in first
    assert "H1: beats persistence" in first
    _print_summary({"IBM": {**base, "version": "2", "promoted": False, "champion_version": "1",
                            "pvalue": 0.4, "reason": "refused: not significantly better"}})
    assert "kept champion v1 (promotion p 0.4" in capsys.readouterr().out
    _print_summary({"IBM": {**base, "promoted": True, "champion_version": None,
                            "reason": "promoted: no champion yet", "forecaster": "garch_t",
                            "forecaster_reason": "LSTM worse than GARCH(1,1)-t (...)"}})
    out = capsys.readouterr().out
    assert "GARCH(1,1)-t 10.900 (DM p 0.03, H1: beats GARCH)" in out
    assert "\n  LSTM worse than GARCH(1,1)-t (...)" in out


def test_models_prints_each_versions_decision_and_live_record(capsys):
    from stockcast.cli import _print_version

    live = {"live_scored": 12.0, "live_cusum": 4.6, "live_cusum_threshold": 4.25,
            "live_tail_exceedances": 2.0, "live_tail_forecasts": 12.0,
            "live_kupiec_pvalue": 0.03, "live_christoffersen_pvalue": 0.5, "zone": "yellow",
            "statistic": "range CUSUM (reference: v3's test span, 322 one-step forecasts)",
            "drift": "the range CUSUM is 4.60 > threshold 4.25"}
    _print_version({"version": 3, "aliases": "champion", "decided_at": "2026-12-01T10:00:00.1",
                    "decided_by": "pipeline", "skill_rmse_pct": 0.1, "test_coverage_95": 0.95,
                    "test_interval_score_95": 28.9, "ewma_interval_score_95": 28.8,
                    "garch_interval_score_95": 28.1, "dm_pvalue_is95_garch": 0.99,
                    "forecaster": "garch_t", "forecaster_reason": "LSTM worse than GARCH(1,1)-t",
                    "decision": "promoted: interval_score ... p = 0.01", "live": live})
    out = capsys.readouterr().out
    assert "serves garch_t" in out and "forecaster: LSTM worse than GARCH(1,1)-t" in out
    assert "GARCH(1,1)-t 28.1000, LSTM better: DM p 0.99" in out
    assert "decided 2026-12-01 10:00:00.1 by pipeline" in out and "p = 0.01" in out
    assert "range CUSUM 4.60 (threshold 4.25)" in out and "exceeded 2/12" in out
    assert "yellow zone" in out and "drift: the range CUSUM is 4.60" in out


def test_the_backtest_ends_with_a_table_and_one_verdict():
    from stockcast.cli_tables import backtest_verdict

    pooled = {"test_interval_score_95": 9.67, "test_coverage_95": 0.957, "skill_rmse_pct": 0.19,
              "dm_pvalue_naive": 0.07, "ewma_interval_score_95": 10.88,
              "dm_pvalue_is95_ewma": 0.006, "har_interval_score_95": 10.28,
              "dm_pvalue_is95_har": 0.077, "garch_interval_score_95": 10.94,
              "dm_pvalue_is95_garch": 0.001}
    text = backtest_verdict({**{f"pooled_{k}": v for k, v in pooled.items()},
                             "folds_beating_ewma_interval_score": 4}, 4)
    lines = text.splitlines()
    assert lines[1].split()[:2] == ["LSTM", "9.6700"] and "GARCH(1,1)-t" in lines[4]
    assert lines[-1].startswith("The LSTM's intervals beat every volatility baseline pooled "
                                "over 4 folds, but not significantly (against the best, HAR: "
                                "one-sided DM p 0.077)")
    worse = backtest_verdict({**{f"pooled_{k}": v for k, v in pooled.items()},
                              "pooled_har_interval_score_95": 9.0, "pooled_dm_pvalue_is95_har": 0.99,
                              "folds_beating_ewma_interval_score": 1}, 4)
    # The winner named, and the p-value of the winner being better: never "significantly: 0.99".
    assert ("HAR's intervals beat the LSTM's pooled over 4 folds, significantly (HAR against the "
            "LSTM: one-sided DM p 0.010)") in worse


def test_the_backtest_table_fits_120_columns_with_every_baseline():
    import pandas as pd

    from stockcast.cli_tables import BACKTEST_COLUMNS, backtest_table

    row = {k: 123.4567 for k in BACKTEST_COLUMNS} | {
        "fold": 4, "test_start": pd.Timestamp("2012-01-03").date(),
        "test_end": pd.Timestamp("2013-03-01").date(), "windows": 322, "best_epoch": 17}
    text = backtest_table(pd.DataFrame([row] * 4))
    assert max(len(line) for line in text.splitlines()) <= 120
    assert "IS95_har" in text.splitlines()[0]
