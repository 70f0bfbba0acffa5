"""Logging one training run to MLflow: params, per-epoch and final metrics, artifacts, data
lineage, the config and the model. A retried log replaces its own failed run."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import pickle
import re
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import mlflow
import torch
import yaml
from mlflow.entities import Metric
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import AnyType, ColSpec, Schema

from stockcast.config import PipelineConfig
from stockcast.data.exploration import summarize, summary_files
from stockcast.data.schemas import ValidatedPrices
from stockcast.evaluation.scorecard import Evaluation
from stockcast.modeling.adaptive import Tracking
from stockcast.modeling.recipe import ServingFit, TickerFit
from stockcast.modeling.trainer import TrainResult
from stockcast.modeling.windows import PreparedData
from stockcast.registry.evaluation_fit import log_evaluation_fit
from stockcast.registry.pyfunc import StockcastForecaster
from stockcast.registry.signing import sign_logged_model
from stockcast.registry.store import MlflowStore

log = logging.getLogger(__name__)

# What the served model needs, at the versions installed here (read, not copied by hand):
# explicit requirements also spare MLflow ~10 s of inferring them by importing the model.
_REQUIRED = ("torch", "pandas", "numpy", "scikit-learn", "scipy", "mlflow", "exchange_calendars",
             "arch")


def pip_requirements() -> list[str]:
    """``stockcast`` plus its serving dependencies pinned to the installed versions (read
    once per process: every run of a portfolio night logs the same list)."""
    return list(_pinned())


@functools.cache
def _pinned() -> tuple[str, ...]:
    return ("stockcast", *(f"{pkg}=={metadata.version(pkg)}" for pkg in _REQUIRED))


def git_commit(cwd: Path | None = None) -> str:
    """The current git commit (with -dirty), or 'unknown' outside a checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass(frozen=True)
class LoggedRun:
    """Where a run and its model landed."""

    run_id: str
    model_uri: str


def run_tags(validated: ValidatedPrices, result: TrainResult, evaluation: Evaluation,
             serving: ServingFit, frame) -> dict[str, str]:
    """Lineage and provenance tags of a training run."""
    prices = validated.prices
    return {
        "ticker": prices.ticker,
        "data.source": prices.source,
        "data.location": prices.location,
        "data.start": str(frame["Date"].iloc[0].date()),
        "data.end": str(frame["Date"].iloc[-1].date()),
        "data.rows": str(len(frame)),
        "data.digest": prices.digest,
        "data.snapshot": str(prices.snapshot_path or ""),
        "data.fallback": " | ".join(prices.notes) or "none",
        # The checkout stockcast runs from (a worker's cwd may be anywhere).
        "code.version": git_commit(Path(__file__).resolve().parents[3]),
        "device": result.device,
        "amp": str(result.amp_dtype),
        "train.best_epoch": str(result.best_epoch),
        "train.seconds": f"{result.seconds:.2f}",
        "split.test_start": str(frame["Date"].iloc[int(evaluation.origins[0]) + 1].date()),
        # Metrics are the evaluation fit's (trained through fit.eval_end); the registered
        # model was refit through fit.serve_end with the same settings.
        "fit.eval_end": str(serving.eval_end.date()),
        "fit.serve_end": str(serving.serve_end.date()),
        "fit.refit": str(serving.refit),
        "fit.refit_from": serving.warm_start_from,  # where the served refit's weights started
        # The refit's scale over the evaluated fit's on the test windows, per step, before its
        # quantiles were rescaled to serve the evaluated widths.
        "fit.width_ratio": " ".join(f"{r:.3f}" for r in serving.width_ratio),
    }


# Resolved per run or per machine: not a difference a person chose.
_NOT_CHOICES = ("data.", "validation.", "tracking.", "forecast.", "train.threads",
                "train.progress", "tickers", "notify.", "orchestration.")


def run_name(ticker: str, cfg: PipelineConfig, now: dt.datetime | None = None,
             warm_start_from: str = "scratch") -> str:
    """``GOOG epochs=50 hidden_size=32 · 2026-11-22 07:30:12``: the ticker, a nightly run's
    warm start (``GOOG warm from v1 · defaults · ...``) and what this config changes from the
    defaults first (``defaults`` when nothing), so a truncated runs table still tells a cold
    v1 from the warm v2; the UTC time (also MLflow's *Created*) last."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M:%S")
    warm = re.match(r"(?:champion )?(v\d+) \(run", warm_start_from or "")
    ticker = f"{ticker} warm from {warm.group(1)} ·" if warm else ticker
    defaults = PipelineConfig().flat()
    changed = [f"{k.split('.')[-1]}={v}" for k, v in cfg.flat().items()
               if not k.startswith(_NOT_CHOICES) and defaults.get(k) != v]
    what = " ".join(changed[:4]) + (" ..." if len(changed) > 4 else "") or "defaults"
    return f"{ticker} {what} · {stamp}"


def run_description(ticker: str, metrics: dict[str, float], result: TrainResult,
                    serving: ServingFit, choice: str = "", served_label: str = "") -> str:
    """The paragraph the MLflow UI shows for a run: results against the baselines, units,
    and what MLflow's Duration does not show. With ``served_label`` (a volatility model is
    served), the headline is that model's and the LSTM's follows under its own name."""
    m = metrics
    if served_label:
        head = (f"**{ticker} serves {served_label}**: 95 % interval coverage "
                f"{m['test_coverage_95']:.3f}, 80 % {m['test_coverage_80']:.3f}, interval score "
                f"{m['test_interval_score_95']:.4f} (EWMA band {m['ewma_interval_score_95']:.4f}); "
                f"point forecast: persistence. The LSTM it was preferred to: coverage "
                f"{m['lstm_coverage_95']:.3f}, interval score {m['lstm_interval_score_95']:.4f}, "
                f"point skill {m['lstm_skill_rmse_pct']:+.2f} % RMSE vs persistence "
                "(`lstm_*` metrics). ")
    else:
        head = (
            f"**{ticker}**: point forecast skill {m['skill_rmse_pct']:+.2f} % RMSE vs persistence "
            f"(one-sided DM p {m['dm_pvalue_naive']:.2f}; vs a constant drift p "
            f"{m['dm_pvalue_drift']:.2f}). 95 % interval coverage {m['test_coverage_95']:.3f} "
            f"(EWMA band {m['ewma_coverage_95']:.3f}), interval score "
            f"{m['test_interval_score_95']:.4f} vs EWMA {m['ewma_interval_score_95']:.4f}, "
            f"GARCH(1,1)-t {m['garch_interval_score_95']:.4f} (LSTM better: DM p "
            f"{m['dm_pvalue_is95_garch']:.2f}), HAR {m['har_interval_score_95']:.4f} (p "
            f"{m['dm_pvalue_is95_har']:.2f}) (price units, lower is better). ")
    return (
        head
        + (f"**{choice}.** " if choice else "")
        + "Units: `test_*` (the served forecaster's), `lstm_*`, `naive_*`, `drift_*`, `ewma*_`, "
        "`rangevol_*`, `har_*`, `garch_*` are "
        "price units on the test span; `val_*` and the losses are scaled model units. "
        f"Training took {result.seconds:.1f} s plus a {serving.seconds:.1f} s refit "
        "(`train_seconds`); MLflow's Duration covers only this logging step. Metrics are the "
        f"evaluation fit's (data to {serving.eval_end.date()}); the registered model was "
        f"refit through {serving.serve_end.date()}. The promotion decision is on the model "
        "version.")


def _data_source(location: str) -> str:
    return location if "://" in location else Path(location).resolve().as_uri()


def _log_model(data: PreparedData, serving: ServingFit, ticker: str, cfg: PipelineConfig
               ) -> tuple[str, str]:
    """The served model as a pyfunc (and the network as a pytorch model on request): its URI
    and logged-model id. It adapts its bands and validates requests as configured."""
    python_model = StockcastForecaster(serving.forecaster, ticker,
                                       tracking=Tracking.from_config(cfg.intervals),
                                       validation=cfg.validation)
    with_torch = cfg.tracking.log_torch_model
    requirements = pip_requirements()
    # The signature names what the model reads: its raw price columns, and an optional Date of
    # any type (text from a CSV or JSON, or datetimes). Every column is optional to MLflow: the
    # model itself says which one is missing (MLflow's check would answer with the whole
    # request before its reason).
    needed = serving.forecaster.input_columns
    input_frame = data.frame[["Date", *needed]].tail(
        python_model.min_rows + 5).reset_index(drop=True)
    inputs = Schema([ColSpec(AnyType(), "Date", required=False),
                     # volume comes as integers or floats: parsed by the model, like the pipeline
                     *(ColSpec(AnyType() if c == "Volume" else "double", c, required=False)
                       for c in needed),
                     # raw rows as users have them: split-adjusted by the model like the pipeline
                     ColSpec("double", "Adj Close", required=False)])
    outputs = infer_signature(input_frame, python_model.predict(None, input_frame)).outputs
    info = mlflow.pyfunc.log_model(
        name="forecaster", python_model=python_model,
        signature=ModelSignature(inputs=inputs, outputs=outputs),
        input_example=input_frame, pip_requirements=requirements)
    mlflow.set_tag("model.pyfunc_uri", info.model_uri)
    network = serving.forecaster.network
    if with_torch and network is not None:  # the network, for torch users
        model, example = network.model, data.test.x[:2]
        torch_info = mlflow.pytorch.log_model(
            model, name="lstm",
            signature=infer_signature(example, model(torch.as_tensor(example)).detach().numpy()),
            input_example=example, pip_requirements=requirements,
            serialization_format="pickle")
        mlflow.set_tag("model.torch_uri", torch_info.model_uri)
    return info.model_uri, info.model_id


def fit_tags(fit: TickerFit) -> dict[str, str]:
    """What the network was trained on (this ticker alone, or every series of a global
    model) and where its weights started (the champion's, or scratch and why)."""
    data = fit.data
    own_end = str(data.frame["Date"].iloc[data.bounds.val_end - 1].date())
    return {"fit.trained_on": ",".join(fit.trained_on) or "this ticker",
            "fit.trained_to": fit.trained_to or own_end,
            "fit.note": fit.note or "none",
            "fit.warm_start_from": fit.warm_start_from}


def choice_tags(evaluation: Evaluation) -> dict[str, str]:
    """Which forecaster the run serves and why (``forecaster``: lstm, garch_t, ...)."""
    choice = evaluation.choice
    return {"forecaster": choice.tag, "forecaster.reason": choice.reason,
            "forecaster.pvalue": f"{choice.pvalue:.4g}", "forecaster.folds": str(choice.folds),
            "forecaster.best_baseline": choice.best_baseline}


def _log_tables(data: PreparedData, evaluation: Evaluation) -> None:
    """The fitted transformer and the served forecaster's out-of-sample forecasts (what
    promotion compares across versions), as parquet and CSV."""
    with tempfile.TemporaryDirectory() as tmp:
        scaler_path = Path(tmp) / "transformer.pkl"
        scaler_path.write_bytes(pickle.dumps(data.transformer))
        mlflow.log_artifact(str(scaler_path), artifact_path="scaler")
        table = Path(tmp) / "test_forecasts.parquet"
        evaluation.table.to_parquet(table, index=False)
        evaluation.table.to_csv(table.with_suffix(".csv"), index=False)
        mlflow.log_artifact(str(table), artifact_path="forecasts")
        mlflow.log_artifact(str(table.with_suffix(".csv")), artifact_path="forecasts")


def _log(run_id: str, validated: ValidatedPrices, fit: TickerFit, evaluation: Evaluation,
         serving: ServingFit, cfg: PipelineConfig, store: MlflowStore) -> LoggedRun:
    ticker, data, result = validated.ticker, fit.data, fit.result
    with warnings.catch_warnings():
        # MLflow hints about integer columns and ambiguous local sources: noise here.
        warnings.simplefilter("ignore", UserWarning)
        mlflow.set_tags(run_tags(validated, result, evaluation, serving, data.frame)
                        | choice_tags(evaluation) | fit_tags(fit))
        mlflow.set_tag("mlflow.note.content",
                       run_description(ticker, evaluation.metrics, result, serving,
                                       evaluation.choice.reason, evaluation.served_label))
        mlflow.log_params({k: ("" if v is None else v) for k, v in cfg.flat().items()})
        mlflow.log_input(mlflow.data.from_pandas(
            data.frame, source=_data_source(validated.prices.location), targets="Close",
            name=f"{ticker}-prices"), context="training")
        if validated.report_path is not None:
            for path in validated.report_path.parent.glob(f"{validated.report_path.stem}.*"):
                mlflow.log_artifact(str(path), artifact_path="validation")
        for name, text in summary_files(summarize(data.frame), ticker).items():  # figures: run_figures
            mlflow.log_text(text, f"eda/{name}")
        mlflow.log_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False),
                        "config/config.yaml")
        _log_tables(data, evaluation)
        # The model before the metrics: MLflow links a run's existing metrics to a model it
        # logs by reading each one's history (~0.5 s a run); metrics logged with its id are
        # linked in the same batch.
        model_uri, model_id = _log_model(data, serving, ticker, cfg)
        mlflow.log_metrics({**evaluation.metrics, "best_epoch": result.best_epoch,
                            "train_seconds": result.seconds + serving.seconds,
                            "refit_seconds": serving.seconds,
                            "windows_per_second": result.windows_per_second},
                           model_id=model_id)
        # Per-epoch step metrics in one batch call, not one round trip per value.
        now = int(time.time() * 1000)
        store.client.log_batch(run_id, metrics=[
            Metric(key, float(value), now, step)
            for step, epoch_metrics in enumerate(result.history, start=1)
            for key, value in epoch_metrics.items()])
        key = cfg.tracking.signing_key()
        if key is not None:
            sign_logged_model(model_uri, run_id, key, store)
        # what promotion re-scores later: the forecaster evaluated (the LSTM or a baseline)
        log_evaluation_fit(fit, run_id, key, store, evaluation.evaluated,
                           evaluation.choice.fold_fits)
        return LoggedRun(run_id, model_uri)


def log_training_run(validated: ValidatedPrices, fit: TickerFit,
                     evaluation: Evaluation, serving: ServingFit,
                     cfg: PipelineConfig, store: MlflowStore) -> LoggedRun:
    """Log everything one ticker's run produced but its figures (``run_figures``, after the
    promotion decision) and its model (the pyfunc; the pytorch flavour on request).
    Transient store failures are retried; a retry replaces the failed attempt's run."""
    return store.log_run(
        "logging", run_name(validated.ticker, cfg, warm_start_from=fit.warm_start_from),
        lambda run_id: _log(run_id, validated, fit, evaluation, serving, cfg, store))
