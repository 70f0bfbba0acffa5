"""The `stockcast` argument parser: every sub-command, its options and their help. Choices
come from the config's own types; the commands themselves live in ``stockcast.cli``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import get_args

from stockcast.config import Device, Source, TaskRunner


def positive(text: str) -> int:
    """An argparse type: a whole number >= 1 (argparse prints the message and exits 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _data_options(p: argparse.ArgumentParser, tickers: bool = True) -> None:
    if tickers:
        p.add_argument("--ticker", action="append", metavar="T",
                       help="ticker symbol; repeat for several (default: GOOG)")
    p.add_argument("--source", choices=get_args(Source),
                   help="price source (default auto: yfinance, then cache, then bundled sample)")
    p.add_argument("--csv", type=Path, metavar="PATH", help="your own OHLCV file (implies csv)")
    p.add_argument("--decimal", choices=[".", ","],
                   help="the CSV's decimal separator, when the file cannot tell (detected otherwise)")
    order = p.add_mutually_exclusive_group()
    order.add_argument("--dayfirst", dest="dayfirst", action="store_true", default=None,
                       help="the CSV's dates are day-first (31.01.2013), when it cannot tell")
    order.add_argument("--monthfirst", dest="dayfirst", action="store_false",
                       help="the CSV's dates are month-first (01/31/2013), when it cannot tell")
    p.add_argument("--config", type=Path, metavar="FILE", help="YAML config file")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="cache directory (default data/)")
    p.add_argument("--start", metavar="YYYY-MM-DD", help="first date to use")
    p.add_argument("--end", metavar="YYYY-MM-DD", help="end date (exclusive)")


def _tracking_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or mlflow/mlflow.db)")
    p.add_argument("--experiment", metavar="NAME", help="MLflow experiment (default stockcast)")


Commands = dict[str, Callable[[argparse.Namespace], int]]


def _pipeline_commands(sub, commands: Commands) -> None:
    """`run` and `forecast`: the two flows."""
    p = sub.add_parser("run", help="run the training pipeline once (the Prefect flow)",
                       description="Ingest, validate, window, train, evaluate, track, register "
                       "and promote, per ticker.")
    _data_options(p)
    _tracking_options(p)
    p.add_argument("--epochs", type=positive, help="maximum training epochs")
    p.add_argument("--horizon", type=positive, help="days ahead to forecast")
    p.add_argument("--device", choices=get_args(Device), help="training device")
    p.add_argument("--task-runner", choices=get_args(TaskRunner), help="Prefect task runner")
    p.add_argument("--dask-address", metavar="ADDR", help="existing Dask scheduler (implies dask)")
    p.set_defaults(func=commands["run"])

    p = sub.add_parser("forecast", help="forecast the next days with each ticker's champion",
                       description="Load the champion, fetch fresh validated prices, write the "
                       "forecast (CSV, Parquet, plot) and print it.")
    _data_options(p)
    _tracking_options(p)
    p.add_argument("--days", type=positive, help="print only the first N forecast days")
    p.add_argument("--out", type=Path, metavar="DIR", help="output directory (default forecasts/)")
    p.set_defaults(func=commands["forecast"])


def _registry_commands(sub, commands: Commands) -> None:
    """`models` and `promote`: reading and moving the registry."""
    p = sub.add_parser("models", help="list registered versions, aliases, metrics and decisions")
    p.add_argument("--ticker", action="append", metavar="T", help="only this ticker")
    p.add_argument("--config", type=Path, metavar="FILE", help="YAML config file")
    _tracking_options(p)
    p.set_defaults(func=commands["models"])

    p = sub.add_parser("promote", help="point `champion` at a version (promote or roll back)")
    p.add_argument("--ticker", action="append", metavar="T", required=True)
    p.add_argument("--version", type=positive, required=True)
    p.add_argument("--config", type=Path, metavar="FILE", help="YAML config file")
    _tracking_options(p)
    p.set_defaults(func=commands["promote"])

    p = sub.add_parser("serve-model", help="a ticker's champion as a REST service (MLflow's "
                       "scoring protocol: JSON or text/csv at /invocations)")
    p.add_argument("--ticker", action="append", metavar="T", required=True)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=positive, default=5001, help="port (default 5001)")
    p.add_argument("--max-request-mb", type=positive, default=16, metavar="MB",
                   help="refuse request bodies larger than this (default 16)")
    p.add_argument("--reload-seconds", type=positive, default=30, metavar="S",
                   help="check this often whether the champion moved, and serve the new one "
                   "(default 30)")
    p.add_argument("--config", type=Path, metavar="FILE", help="YAML config file")
    _tracking_options(p)
    p.set_defaults(func=commands["serve-model"])


def _validate_command(sub, commands: Commands) -> None:
    p = sub.add_parser("validate", help="validate prices and print the report (exit 1 if invalid)")
    _data_options(p)
    p.set_defaults(func=commands["validate"])


def _study_commands(sub, commands: Commands) -> None:
    """`backtest` and `report`: looking at data and configurations, no registry."""
    p = sub.add_parser("backtest", help="walk-forward backtest: retrain at k rolling origins",
                       description="Retrain at each of k rolling origins over the test span "
                       "and score every block against persistence.")
    _data_options(p)
    p.add_argument("--folds", type=positive, default=4, help="rolling origins (default 4)")
    p.add_argument("--epochs", type=positive, help="maximum training epochs per fold")
    p.set_defaults(func=commands["backtest"])

    p = sub.add_parser("report", help="write the exploratory data report without training")
    _data_options(p)
    p.add_argument("--out", dest="out_dir", type=Path, metavar="DIR",
                   help="output directory (default reports/)")
    p.set_defaults(func=commands["report"])


def build_parser(commands: Commands) -> argparse.ArgumentParser:
    """The argument parser of every sub-command; ``commands`` maps each name to its function."""
    parser = argparse.ArgumentParser(
        prog="stockcast", description="Nightly-retrained LSTM price forecaster.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _pipeline_commands(sub, commands)
    _validate_command(sub, commands)
    _registry_commands(sub, commands)
    _study_commands(sub, commands)
    return parser
