"""The `stockcast` command line. Environment variables are read here, at the edge, only."""

from __future__ import annotations

import argparse
import logging
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stockcast.cli_parser import build_parser
from stockcast.cli_tables import fmt, live_tests
from stockcast.collector import collect_from_here, run_as_command
from stockcast.config import PipelineConfig
from stockcast.config_files import load_config
from stockcast.console import (
    apply_env_defaults,
    quiet_prefect_tracebacks,
    route_tool_logs,
    setup_logging,
    stop_on_signals,
    stopped_by,
)
from stockcast.errors import ConfigError, PipelineFailed, StockcastError
from stockcast.runtime import path_inside, project_root, resolve_runtime
from stockcast.tickers import clean_ticker

log = logging.getLogger("stockcast")


# (config section, key, command-line flag)
_FLAGS = (*(("data", k, k) for k in ("source", "data_dir", "decimal", "dayfirst", "start", "end")),
          ("data", "csv_path", "csv"), ("train", "epochs", "epochs"),
          ("train", "device", "device"), ("window", "horizon", "horizon"),
          ("tracking", "tracking_uri", "tracking_uri"), ("tracking", "experiment", "experiment"),
          ("orchestration", "task_runner", "task_runner"),
          ("orchestration", "dask_address", "dask_address"))


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
    for section, key, flag in _FLAGS:
        put(section, key, getattr(args, flag, None))
    if getattr(args, "csv", None) and not getattr(args, "source", None):
        put("data", "source", "csv")
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
    collect_from_here()
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
        if s["promoted"]:
            verdict = "CHAMPION"
        elif s.get("champion_version"):
            verdict = f"kept champion v{s['champion_version']}"
        else:
            verdict = "no champion yet: this version was refused"
        if s["pvalue"] is not None:
            verdict += f" (promotion p {s['pvalue']:.3g}, H1: better than the champion)"
        registered = f"v{s['version']}" if s["version"] else "not registered"
        serves = s.get("forecaster", "lstm")
        print(f"{ticker}: {registered} serves {serves} (data: {s['source']}, to "
              f"{s['last_date']}) point skill "
              f"{s['skill_rmse_pct']:+.2f} % vs persistence (DM p {s['dm_pvalue_naive']:.2f}, "
              "H1: beats persistence), "
              f"coverage_95 {s['test_coverage_95']:.3f}, interval score "
              f"{s['test_interval_score_95']:.3f} vs EWMA {s['ewma_interval_score_95']:.3f}, "
              f"GARCH(1,1)-t {s['garch_interval_score_95']:.3f} (DM p "
              f"{s['dm_pvalue_is95_garch']:.2g}, H1: beats GARCH) "
              f"-> {verdict}\n  {s['reason']}"
              + ("" if serves == "lstm" else f"\n  {s['forecaster_reason']}"))


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
            adapted = (f"   (bands adapted on {row['adapted_on']:.0f} past forecasts: "
                       f"x{row['band_ratio_80']:.2f} / x{row['band_ratio_95']:.2f} the static "
                       "widths)" if "adapted_on" in row else "")
            print(f"  {row['date']}  {row['forecast']:.4f}   80 % [{row['lower_80']:.4f}, "
                  f"{row['upper_80']:.4f}]   95 % [{row['lower_95']:.4f}, {row['upper_95']:.4f}]"
                  + adapted)
        print(f"  written to {item['path']}")
        live = item.get("live") or {}
        if live.get("live_scored"):
            print(f"  live, last {live['live_scored']:.0f} forecast(s): RMSE {live['live_rmse']:.4f}"
                  f" vs persistence {live['live_naive_rmse']:.4f}, 95 % coverage "
                  f"{live['live_coverage_95']:.2f}; {live_tests(live, item['zone'])}")
        if item.get("stale"):
            print(f"  STALE: {item['stale']}")
        for note in item.get("ledger") or []:
            print(f"  LEDGER: {note}")
        if item.get("drift"):
            print(f"  DRIFT: {item['drift']}")


def cmd_validate(args: argparse.Namespace) -> int:
    """`stockcast validate`: print the validation report; 1 when invalid."""
    from stockcast.data.loading import load_checked

    cfg = resolve_config(args)
    status = 0
    for ticker in cfg.tickers:
        prices, report = load_checked(ticker, cfg.data, cfg.window, cfg.validation)
        print(f"source: {prices.source} ({prices.location})")
        print(report.to_text())
        status |= 0 if report.valid else 1
    return status


def cmd_models(args: argparse.Namespace) -> int:
    """`stockcast models`: registered versions, aliases, metrics and decisions."""
    from stockcast.registry.store import MlflowStore
    from stockcast.registry.versions import list_versions

    cfg = resolve_config(args)
    rows = list_versions(cfg.tracking.model_name_prefix, args.ticker and args.ticker[0],
                         MlflowStore.from_config(cfg.tracking))
    if not rows:
        print("no registered models yet; run `make run-flow` first")
        return 0
    model = None
    for r in rows:
        if r["model"] != model:
            model = r["model"]
            print(model)
        _print_version(r)
    return 0


def _print_version(r: dict) -> None:
    """One version of `stockcast models`: test metrics, the decision, the live record."""
    when = f"decided {r['decided_at'].replace('T', ' ')} by {r['decided_by']}" if r["decided_at"] else ""
    print(f"  v{r['version']:<3} {r['aliases'] or '-':<20} serves {r['forecaster']:<9} {when}")
    print(f"       test (LSTM): skill {fmt(r['skill_rmse_pct'], '+.2f')} %, coverage_95 "
          f"{fmt(r['test_coverage_95'], '.3f')}, interval score "
          f"{fmt(r['test_interval_score_95'])} (EWMA band {fmt(r['ewma_interval_score_95'])}, "
          f"GARCH(1,1)-t {fmt(r['garch_interval_score_95'])}, LSTM better: DM p "
          f"{fmt(r['dm_pvalue_is95_garch'], '.2f')}; price units)")
    if r["forecaster"] != "lstm":
        print(f"       forecaster: {r['forecaster_reason']}")
    print(f"       decision: {r['decision'] or '-'}")
    live = r.get("live") or {}
    if live.get("live_scored"):
        print(f"       live: {live['live_scored']:.0f} scored, {live_tests(live, live['zone'])}; "
              f"drift: {live['drift'] or 'none'}")


def cmd_promote(args: argparse.Namespace) -> int:
    """`stockcast promote`: point `champion` at a version by hand."""
    from stockcast.registry.manual_promotion import set_champion
    from stockcast.registry.store import MlflowStore
    from stockcast.registry.versions import model_name

    cfg = resolve_config(args)
    name = model_name(cfg.tracking.model_name_prefix, args.ticker[0])
    decision = set_champion(name, str(args.version), MlflowStore.from_config(cfg.tracking))
    print(f"{name}: champion -> v{args.version} ({decision.reason})")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """`stockcast report`: the exploratory data report without training."""
    from stockcast.data.exploration import build_report
    from stockcast.data.loading import load_validated

    cfg = resolve_config(args)
    out = Path(args.out_dir or project_root() / "reports")
    for ticker in cfg.tickers:
        frame = load_validated(ticker, cfg.data, cfg.window, cfg.validation).frame
        report = build_report(frame, ticker, path_inside(out, ticker), cfg.window)
        print(f"{ticker}: report written to {report.directory}")
        print(report.summary_text())
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    """`stockcast backtest`: walk-forward metrics per fold and pooled."""
    from stockcast.cli_tables import backtest_table, backtest_verdict
    from stockcast.data.loading import load_validated
    from stockcast.evaluation.backtest import walk_forward
    from stockcast.runtime import threads_per_training

    cfg = threads_per_training(resolve_config(args))
    collect_from_here()
    for ticker in cfg.tickers:
        validated = load_validated(ticker, cfg.data, cfg.window, cfg.validation)
        prices, frame = validated.prices, validated.frame
        print(f"{ticker}: walk-forward backtest, {args.folds} folds (data: {prices.source}); "
              "each fold trains a model, a few minutes each on a CPU", flush=True)
        result = walk_forward(frame, cfg.window, cfg.model, cfg.train, args.folds,
                              on_fold=lambda row, n: print(
                                  f"  fold {row['fold']}/{n} ({row['test_start']} .. "
                                  f"{row['test_end']}) done in {row['seconds']:.0f} s", flush=True))
        print(backtest_table(result.folds))
        print(backtest_verdict(result.aggregate, args.folds))
    return 0


def cmd_serve_model(args: argparse.Namespace) -> int:
    """`stockcast serve-model`: a ticker's champion (signature verified) as a REST service."""
    from stockcast.registry.store import MlflowStore
    from stockcast.registry.versions import model_name
    from stockcast.serving.champion import follow_champion
    from stockcast.serving.rest import serve

    cfg = resolve_config(args)
    name = model_name(cfg.tracking.model_name_prefix, args.ticker[0])
    app = follow_champion(name, MlflowStore.from_config(cfg.tracking), cfg.tracking.model_key,
                          args.reload_seconds)
    print(f"serving {app.served.label} (champion) at http://{args.host}:{args.port}/invocations;"
          f" a new champion is picked up within {args.reload_seconds:g} s", flush=True)
    collect_from_here()
    serve(app, args.host, args.port, args.max_request_mb * 2**20)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run, "forecast": cmd_forecast, "validate": cmd_validate, "models": cmd_models,
    "promote": cmd_promote, "backtest": cmd_backtest, "report": cmd_report,
    "serve-model": cmd_serve_model}


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear message and a non-zero exit on error, traceback in the log."""
    args = build_parser(COMMANDS).parse_args(argv)
    apply_env_defaults(project_root(), args.verbose)
    log_file = setup_logging(project_root() / "logs", args.verbose)
    quiet_prefect_tracebacks()
    stop_on_signals()
    try:
        return args.func(args)
    except StockcastError as exc:
        log.debug("failure", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        print(f"(details in {log_file})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        why = stopped_by()
        print(f"stopped by {why}: trainings end within a batch; nothing was registered or "
              "promoted", file=sys.stderr)
        return 143 if why == "SIGTERM" else 130
    except Exception as exc:
        with open(log_file, "a") as fh:
            traceback.print_exc(file=fh)
        print(f"error: unexpected {type(exc).__name__}: {exc}\n(full traceback in {log_file})",
              file=sys.stderr)
        return 2


def entry() -> None:
    """The ``stockcast`` command (the collector set for it: ``stockcast.collector``)."""
    run_as_command(main)


if __name__ == "__main__":
    entry()
