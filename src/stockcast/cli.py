"""The `stockcast` command line. Environment variables are read here, at the edge, only."""

from __future__ import annotations

import argparse
import logging
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from stockcast.config import Device, PipelineConfig, Source, TaskRunner, clean_ticker, load_config
from stockcast.console import (
    apply_env_defaults,
    quiet_prefect_tracebacks,
    route_tool_logs,
    setup_logging,
)
from stockcast.errors import ConfigError, PipelineFailed, StockcastError
from stockcast.runtime import path_inside, project_root, resolve_runtime

log = logging.getLogger("stockcast")

# ---------------------------------------------------------------------------- config


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    o: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        if value is not None:
            o.setdefault(section, {})[key] = value

    if getattr(args, "ticker", None):
        o["tickers"] = args.ticker
    if getattr(args, "csv", None):
        # A user's own file is its own ticker: never train it into another ticker's registry.
        if getattr(args, "ticker", None) and len(args.ticker) > 1:
            raise ConfigError("--csv holds one ticker's prices; pass at most one --ticker")
        if not getattr(args, "ticker", None):
            try:  # my_fund.csv -> MY-FUND
                o["tickers"] = [clean_ticker(re.sub(r"[^A-Za-z0-9.^=-]+", "-", Path(args.csv).stem))]
            except ValueError:
                raise ConfigError(f"the file name {Path(args.csv).name!r} is not a ticker symbol "
                                  "to train it as; pass --ticker NAME") from None
    put("data", "source", getattr(args, "source", None))
    put("data", "csv_path", getattr(args, "csv", None))
    if getattr(args, "csv", None) and not getattr(args, "source", None):
        put("data", "source", "csv")
    put("data", "data_dir", getattr(args, "data_dir", None))
    put("data", "decimal", getattr(args, "decimal", None))
    put("data", "dayfirst", getattr(args, "dayfirst", None))
    put("data", "start", getattr(args, "start", None))
    put("data", "end", getattr(args, "end", None))
    put("train", "epochs", getattr(args, "epochs", None))
    put("train", "device", getattr(args, "device", None))
    put("window", "horizon", getattr(args, "horizon", None))
    put("tracking", "tracking_uri", getattr(args, "tracking_uri", None))
    put("tracking", "experiment", getattr(args, "experiment", None))
    put("orchestration", "task_runner", getattr(args, "task_runner", None))
    put("orchestration", "dask_address", getattr(args, "dask_address", None))
    if getattr(args, "dask_address", None):
        put("orchestration", "task_runner", "dask")
    put("forecast", "output_dir", getattr(args, "out", None))
    return o


def resolve_config(args: argparse.Namespace) -> PipelineConfig:
    """Config file + command-line overrides, with paths made absolute from the project root."""
    cfg = load_config(getattr(args, "config", None), _overrides(args))
    return resolve_runtime(cfg)


# ---------------------------------------------------------------------------- commands


def _run_flow(call: Callable[[], dict], show: Callable[[dict], None]) -> int:
    """Run a flow and print what succeeded, also when some tickers failed (then re-raise)."""
    try:
        result = call()
    except PipelineFailed as exc:
        show(exc.summary)
        raise
    show(result)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """`stockcast run`: the training flow once."""
    cfg = resolve_config(args)
    from flows.train import train_pipeline

    route_tool_logs(args.verbose)
    return _run_flow(lambda: train_pipeline(config=cfg), _print_summary)


def _print_summary(summary: dict) -> None:
    for ticker, s in summary.items():
        verdict = "CHAMPION" if s["promoted"] else "kept previous champion"
        if s["pvalue"] is not None:
            verdict += f" (promotion p {s['pvalue']:.3g})"
        registered = f"v{s['version']}" if s["version"] else "not registered"
        print(f"{ticker}: {registered} (data: {s['source']}, to {s['last_date']}) point skill "
              f"{s['skill_rmse_pct']:+.2f} % vs persistence (DM p {s['dm_pvalue_naive']:.2f}), "
              f"coverage_95 {s['test_coverage_95']:.3f}, interval score "
              f"{s['test_interval_score_95']:.3f} vs EWMA {s['ewma_interval_score_95']:.3f} "
              f"-> {verdict}\n  {s['reason']}")


def cmd_forecast(args: argparse.Namespace) -> int:
    """`stockcast forecast`: the forecast flow with each champion."""
    cfg = resolve_config(args)
    from flows.forecast import forecast_pipeline

    route_tool_logs(args.verbose)
    return _run_flow(lambda: forecast_pipeline(config=cfg, days=args.days), _print_forecasts)


def _print_forecasts(forecasts: dict) -> None:
    for ticker, item in forecasts.items():
        print(f"{ticker} (champion v{item['version']}, data to {item['last_date']}):")
        for row in item["rows"]:
            print(f"  {row['date']}  {row['forecast']:.4f}   80 % [{row['lower_80']:.4f}, "
                  f"{row['upper_80']:.4f}]   95 % [{row['lower_95']:.4f}, {row['upper_95']:.4f}]")
        print(f"  written to {item['path']}")
        live = item.get("live") or {}
        if live.get("live_scored"):
            print(f"  live, last {live['live_scored']:.0f} forecast(s): RMSE {live['live_rmse']:.4f}"
                  f" vs persistence {live['live_naive_rmse']:.4f}, 95 % coverage "
                  f"{live['live_coverage_95']:.2f}")
        if item.get("drift"):
            print(f"  DRIFT: {item['drift']}")


def cmd_validate(args: argparse.Namespace) -> int:
    """`stockcast validate`: print the validation report; 1 when invalid."""
    from stockcast.data.schemas import check_prices
    from stockcast.data.sources import load_prices

    cfg = resolve_config(args)
    status = 0
    for ticker in cfg.tickers:
        prices = load_prices(ticker, cfg.data, snapshot=False)
        report = check_prices(prices.frame, ticker, cfg.window, cfg.validation)
        print(f"source: {prices.source} ({prices.location})")
        print(report.to_text())
        status |= 0 if report.valid else 1
    return status


def cmd_models(args: argparse.Namespace) -> int:
    """`stockcast models`: registered versions, aliases, metrics and decisions."""
    from stockcast.registry.versions import list_versions

    cfg = resolve_config(args)
    rows = list_versions(cfg.tracking.model_name_prefix, args.ticker and args.ticker[0],
                         cfg.tracking.tracking_uri)
    if not rows:
        print("no registered models yet; run `make run-flow` first")
        return 0
    for r in rows:
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        print(f"{r['model']:<22} v{r['version']:<3} {r['aliases'] or '-':<20} "
              f"test_rmse={fmt(r['test_rmse'])} naive_rmse={fmt(r['naive_rmse'])} "
              f"skill={fmt(r['skill_rmse'])}  {r['decision']}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """`stockcast promote`: point `champion` at a version by hand."""
    from stockcast.registry.promotion import set_champion
    from stockcast.registry.versions import model_name

    cfg = resolve_config(args)
    name = model_name(cfg.tracking.model_name_prefix, args.ticker[0])
    decision = set_champion(name, str(args.version), cfg.tracking.tracking_uri)
    print(f"{name}: champion -> v{args.version} ({decision.reason})")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """`stockcast report`: the exploratory data report without training."""
    from stockcast.data.schemas import validate_prices
    from stockcast.data.sources import load_prices
    from stockcast.evaluation.report import build_report

    cfg = resolve_config(args)
    out = Path(args.out_dir or project_root() / "reports")
    for ticker in cfg.tickers:
        prices = load_prices(ticker, cfg.data, snapshot=False)
        frame = validate_prices(prices, cfg.window, cfg.validation).frame
        report = build_report(frame, ticker, path_inside(out, ticker), cfg.window)
        print(f"{ticker}: report written to {report.directory}")
        print(report.summary_text())
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    """`stockcast backtest`: walk-forward metrics per fold and pooled."""
    from stockcast.data.schemas import validate_prices
    from stockcast.data.sources import load_prices
    from stockcast.evaluation.backtest import walk_forward
    from stockcast.runtime import threads_per_training

    cfg = threads_per_training(resolve_config(args))
    for ticker in cfg.tickers:
        prices = load_prices(ticker, cfg.data, snapshot=False)
        frame = validate_prices(prices, cfg.window, cfg.validation).frame
        result = walk_forward(frame, cfg.window, cfg.model, cfg.train, args.folds)
        cols = ["fold", "test_start", "test_end", "windows", "best_epoch", "skill_rmse_pct",
                "dm_pvalue_naive", "test_coverage_80", "test_coverage_95",
                "test_interval_score_95", "ewma_interval_score_95"]
        print(f"{ticker}: walk-forward backtest, {args.folds} folds (data: {prices.source})")
        print(result.folds[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        for key, value in result.aggregate.items():
            print(f"  {key:<22} {value:.4f}" if isinstance(value, float) else
                  f"  {key:<22} {value}")
    return 0


# ---------------------------------------------------------------------------- parser


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="stockcast", description="Nightly-retrained LSTM price forecaster.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("forecast", help="forecast the next days with each ticker's champion",
                       description="Load the champion, fetch fresh validated prices, write the "
                       "forecast (CSV, Parquet, plot) and print it.")
    _data_options(p)
    _tracking_options(p)
    p.add_argument("--days", type=positive, help="print only the first N forecast days")
    p.add_argument("--out", type=Path, metavar="DIR", help="output directory (default forecasts/)")
    p.set_defaults(func=cmd_forecast)

    p = sub.add_parser("validate", help="validate prices and print the report (exit 1 if invalid)")
    _data_options(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("models", help="list registered versions, aliases, metrics and decisions")
    p.add_argument("--ticker", action="append", metavar="T", help="only this ticker")
    p.add_argument("--config", type=Path, metavar="FILE", help="YAML config file")
    _tracking_options(p)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("promote", help="point `champion` at a version (promote or roll back)")
    p.add_argument("--ticker", action="append", metavar="T", required=True)
    p.add_argument("--version", type=positive, required=True)
    p.add_argument("--config", type=Path, metavar="FILE", help="YAML config file")
    _tracking_options(p)
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("backtest", help="walk-forward backtest: retrain at k rolling origins",
                       description="Retrain at each of k rolling origins over the test span "
                       "and score every block against persistence.")
    _data_options(p)
    p.add_argument("--folds", type=positive, default=4, help="rolling origins (default 4)")
    p.add_argument("--epochs", type=positive, help="maximum training epochs per fold")
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser("report", help="write the exploratory data report without training")
    _data_options(p)
    p.add_argument("--out", dest="out_dir", type=Path, metavar="DIR",
                   help="output directory (default reports/)")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear message and a non-zero exit on error, traceback in the log."""
    args = build_parser().parse_args(argv)
    apply_env_defaults(project_root(), args.verbose)
    log_file = setup_logging(project_root() / "logs", args.verbose)
    quiet_prefect_tracebacks()
    try:
        return args.func(args)
    except StockcastError as exc:
        log.debug("failure", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        print(f"(details in {log_file})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        with open(log_file, "a") as fh:
            traceback.print_exc(file=fh)
        print(f"error: unexpected {type(exc).__name__}: {exc}\n(full traceback in {log_file})",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
