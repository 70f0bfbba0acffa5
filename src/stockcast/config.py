"""Every default of the pipeline in one place, as frozen pydantic models.

A function receives the smallest slice it needs (``train_model(..., cfg=TrainConfig)``).
Nothing here reads the environment or touches the disk (``config_files.load_config``
reads the YAML file it is given).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from stockcast.config_serving import (
    ForecastConfig,
    IntervalConfig,
    MonitorConfig,
    NotifyConfig,
)
from stockcast.config_serving import (  # the serving sections, re-exported here
    Frozen as _Frozen,
)
from stockcast.errors import ConfigError
from stockcast.model_size import model_size
from stockcast.tickers import clean_ticker

Source = Literal["auto", "yfinance", "cache", "csv", "sample"]
Feature = Literal["Open", "High", "Low", "Close", "Volume", "LogReturn", "RangeVar", "Gap", "Body",
                  "RelVolume"]
Device = Literal["auto", "cpu", "cuda", "mps"]
TaskRunner = Literal["threads", "dask"]


class DataConfig(_Frozen):
    """Where prices come from and where they are cached."""

    source: Source = "auto"
    csv_path: Path | None = None
    # How the CSV writes numbers and dates, when the file itself cannot tell (detected
    # otherwise; an ambiguous file is refused, never guessed).
    decimal: Literal[".", ","] | None = None
    dayfirst: bool | None = None
    data_dir: Path = Path("data")
    start: dt.date | None = None
    end: dt.date | None = None
    # Used only when `start` is not given and the source is yfinance.
    history_years: float = Field(default=10.0, gt=0, le=100)
    # The one retry policy for Yahoo Finance requests (transient failures only): this many
    # retries, waiting retry_backoff_seconds x 1, 2, 4 ... between them.
    retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=1.0, ge=0, le=60)
    # Freshness: prices ending more NYSE sessions before today than this are stale; a stale
    # run fails the ticker (or, with "warn", trains without registering or promoting).
    max_staleness_days: int = Field(default=3, ge=0, le=100_000)
    on_stale: Literal["fail", "warn"] = "fail"
    # Per-request timeout of the Yahoo Finance call: the hard bound on a hung download.
    request_timeout_seconds: float = Field(default=20.0, gt=0, le=600)

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.source == "csv" and self.csv_path is None:
            raise ValueError("source 'csv' needs csv_path (the OHLCV file to read)")
        if self.start and self.end and self.start >= self.end:
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self


class ValidationConfig(_Frozen):
    """Thresholds for warnings about suspicious-but-legal data."""

    max_gap_days: int = Field(default=7, ge=1, le=3650)
    max_daily_move: float = Field(default=0.5, gt=0)
    # A one-day change of the close beyond x10 or /10 is an error (an unadjusted 1:1000 reverse
    # split, prices in cents): null accepts such data as intended.
    max_move_factor: float | None = Field(default=10.0, gt=1)
    # Longest history accepted (about 200 years of trading days); longer is refused up front.
    max_rows: int = Field(default=50_000, ge=100, le=1_000_000)
    # Dates up to this many days after today pass with a warning; later ones are refused.
    max_future_days: int = Field(default=3, ge=0, le=30)


class WindowConfig(_Frozen):
    """How the series is cut into (past -> future) windows and split in time."""

    sequence_length: int = Field(default=60, ge=1, le=1000)
    horizon: int = Field(default=1, ge=1, le=250)
    train_fraction: float = Field(default=0.70, gt=0, lt=1)
    val_fraction: float = Field(default=0.15, gt=0, lt=1)
    test_fraction: float = Field(default=0.15, gt=0, lt=1)
    # Inputs per row, chosen on the walk-forward folds (docs/model-and-evaluation.md): OHLCV,
    # the close-to-close return and the range-based inputs volatility models use.
    features: tuple[Feature, ...] = ("Close", "High", "Low", "Open", "Volume", "LogReturn",
                                     "RangeVar", "Gap", "Body", "RelVolume")
    # "auto": MinMax for the `price` target (the seed's choice), Standard for return targets,
    # which are centred on zero.
    scaler: Literal["auto", "minmax", "standard"] = "auto"
    include_input: bool = False
    # Each split must hold at least this many windows, or validation refuses the data.
    min_windows_per_split: int = Field(default=10, ge=1, le=10_000)

    @model_validator(mode="after")
    def _check(self) -> WindowConfig:
        total = self.train_fraction + self.val_fraction + self.test_fraction
        if abs(total - 1.0) > 1e-6:
            raise ValueError("train_fraction + val_fraction + test_fraction must sum to 1, "
                             f"got {total:.4f}")
        if "Close" not in self.features:
            raise ValueError("features must include 'Close' (it is the forecast target)")
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"features has duplicates: {self.features}")
        return self


class ModelConfig(_Frozen):
    """The LSTM and what it predicts."""

    hidden_size: int = Field(default=50, ge=1, le=4096)
    num_layers: int = Field(default=2, ge=1, le=16)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    bidirectional: bool = False
    # log_return: predict next-day log returns, rebuild prices from the last close (default:
    # scale-free, so it holds up when the test span leaves the training price range).
    # residual: predict log(future / last close) from window-relative log prices.
    # price: the seed tutorials' scaled prices in, scaled prices out.
    target: Literal["log_return", "residual", "price"] = "log_return"
    # The daily volatility the predictive scale starts from (the head learns a correction):
    # range = EWMA of the range-based (gap + Garman-Klass) variance, har = a HAR regression of
    # that variance fit on the training rows (one per step), close = close-to-close EWMA.
    volatility: Literal["har", "range", "close"] = "range"
    # ticker: one network per ticker (trained concurrently). global: one network trained on the
    # windows of every ticker of the run plus the bundled samples, each series scaled on its
    # own training rows, then calibrated, evaluated, registered and promoted per ticker.
    scope: Literal["ticker", "global"] = "ticker"


class TrainConfig(_Frozen):
    """The optimisation loop."""

    epochs: int = Field(default=30, ge=1, le=10_000)
    batch_size: int = Field(default=96, ge=1, le=65_536)
    lr: float = Field(default=1e-3, gt=0, le=1e6)
    weight_decay: float = Field(default=0.0, ge=0)
    grad_clip: float | None = Field(default=1.0, gt=0)
    patience: int = Field(default=5, ge=1, le=10_000)
    seed: int = 42
    device: Device = "auto"
    amp: bool = True
    # CPU threads for torch. 0 = auto: the flow gives each concurrently training ticker an
    # equal share of the cores (threads collapse when oversubscribed); one training at a time
    # leaves a core to the flow's orchestration (runtime.ORCHESTRATION_CORES). One thread is
    # bit-for-bit reproducible.
    threads: int = Field(default=0, ge=0, le=1024)
    progress: bool = True
    # Refit on every row through the last date and serve that (false: the evaluation fit, which
    # never saw the last ~30 %), from the evaluated weights for `refit_epochs` (better out of
    # sample than cold; two as good as three, one worse: bench/refit.py); "scratch": fresh
    # weights for the best epoch count.
    refit: bool = True
    refit_from: Literal["evaluated", "scratch"] = "evaluated"
    refit_epochs: int = Field(default=2, ge=1, le=10_000)
    # A nightly run starts from the champion's evaluation-fit weights when its window and model
    # settings match (bench/warm_start.py), for at most this many epochs; 0: always cold.
    warm_start_epochs: int = Field(default=3, ge=0, le=10_000)


class TrackingConfig(_Frozen):
    """MLflow store and registry naming."""

    tracking_uri: str | None = None  # None: sqlite store under mlflow/ in the project root
    experiment: str = "stockcast"
    model_name_prefix: str = "stockcast"
    # Signs logged models and verifies champions before loading them; set from the
    # STOCKCAST_MODEL_KEY environment variable at the edge, never written anywhere.
    model_key: SecretStr | None = None

    def signing_key(self) -> str | None:
        """The model key's value (None when models are not signed)."""
        return self.model_key.get_secret_value() if self.model_key else None
    # The one retry policy for MLflow calls (network errors, HTTP 5xx, a busy SQLite store).
    max_retries: int = Field(default=2, ge=0, le=10)
    # Also log the network in MLflow's pytorch flavour (the pyfunc serves either way).
    log_torch_model: bool = False
    # The runs whose figures (evaluation plots, data report) are drawn: drawing is most of
    # a warm night's CPU outside training, and the operator reads the champion's.
    figures: Literal["promoted", "all", "none"] = "promoted"


class PromotionConfig(_Frozen):
    """When a new version may become `champion`: a one-sided Diebold-Mariano test on the
    out-of-sample forecasts both it and the champion made, plus a sanity gate."""

    # Promote only when the candidate's loss is lower with p < alpha (and the sanity gate
    # refuses a point forecast significantly worse than persistence at the same alpha).
    alpha: float = Field(default=0.05, gt=0, lt=1)
    # Fewest common (date, step) pairs the test needs; fewer is a refusal, not a coin flip.
    min_pairs: int = Field(default=30, ge=2, le=100_000)
    # The loss compared: the 95 % interval score or the pinball loss (calibration counts), or
    # the point forecast's squared error. Losses are relative to the realised price.
    loss: Literal["interval_score", "pinball", "squared_error"] = "interval_score"
    # Training noise: a fit's relative loss sd across seeds (bench/promotion.py), added twice to
    # the DM variance: a reseed alone is not evidence. Optionally a relative margin to beat.
    seed_sd: float = Field(default=0.012, ge=0, lt=1)
    margin: float = Field(default=0.0, ge=0, lt=1)
    # Walk-forward evidence: when tonight's test span alone would change what is served (a
    # baseline in the LSTM's place, or a champion of other settings replaced), the decision
    # pools this many consecutive out-of-sample folds ending tonight, each fit cold
    # (evaluation/earlier_folds.py); 1: tonight's span alone.
    walk_forward_folds: int = Field(default=3, ge=1, le=10)
    # A fit's training noise on the folds (relative loss sd across seeds, bench/walk_forward.py):
    # the earlier folds train on shorter, more turbulent histories, where it is larger.
    walk_forward_seed_sd: float = Field(default=0.018, ge=0, lt=1)
    # Sessions a kept fold fit is re-scored on later nights instead of fit again (0: never).
    walk_forward_reuse_sessions: int = Field(default=21, ge=0, le=250)
    # Sanity gate: the 95 % interval's test coverage must lie within this of 0.95.
    coverage_tolerance: float = Field(default=0.05, gt=0, lt=0.95)
    # A candidate with a shorter horizon than the champion would shrink the product.
    allow_horizon_change: bool = False


class OrchestrationConfig(_Frozen):
    """Prefect task runner and task policies."""

    task_runner: TaskRunner = "threads"
    dask_address: str | None = None
    # The local Dask cluster's dashboard: loopback only unless you choose otherwise.
    dask_dashboard_address: str = "127.0.0.1:8787"
    max_workers: int = Field(default=2, ge=1, le=256)


class PipelineConfig(_Frozen):
    """The whole effective configuration of one pipeline run."""

    tickers: tuple[str, ...] = ("GOOG",)
    data: DataConfig = DataConfig()
    validation: ValidationConfig = ValidationConfig()
    window: WindowConfig = WindowConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    tracking: TrackingConfig = TrackingConfig()
    promotion: PromotionConfig = PromotionConfig()
    intervals: IntervalConfig = IntervalConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    forecast: ForecastConfig = ForecastConfig()
    notify: NotifyConfig = NotifyConfig()
    monitor: MonitorConfig = MonitorConfig()

    @field_validator("tickers")
    @classmethod
    def _clean_tickers(cls, tickers: tuple[str, ...]) -> tuple[str, ...]:
        if not tickers:
            raise ValueError("tickers must name at least one ticker")
        if len(tickers) > 1000:
            raise ValueError(f"at most 1000 tickers per run, got {len(tickers)}")
        # The same ticker twice would train and register twice: keep the first, in order.
        return tuple(dict.fromkeys(clean_ticker(t) for t in tickers))

    @model_validator(mode="after")
    def _network_fits(self) -> PipelineConfig:
        w, m = self.window, self.model
        size = model_size(len(w.features), m.hidden_size, m.num_layers, m.bidirectional,
                          w.horizon, w.sequence_length, self.train.batch_size)
        if size.problem():
            raise ValueError(size.problem())
        return self

    def with_tickers(self, tickers: list[str] | tuple[str, ...] | None) -> PipelineConfig:
        """This config for other tickers (validated and cleaned like the field); unchanged
        when ``tickers`` is empty."""
        if not tickers:
            return self
        return PipelineConfig.model_validate({**self.model_dump(), "tickers": tuple(tickers)})

    def flat(self) -> dict[str, Any]:
        """The config flattened to dotted keys (`model.hidden_size`) for MLflow params."""
        out: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            else:
                out[prefix] = ",".join(map(str, value)) if isinstance(value, list) else value

        walk("", self.model_dump(mode="json"))
        return out


def _format_errors(exc: ValidationError) -> str:
    return "\n".join(f"  - {'.'.join(str(p) for p in err['loc']) or '(top level)'}: "
                     f"{err['msg']}" for err in exc.errors())


def build_config(values: dict[str, Any] | None = None) -> PipelineConfig:
    """Validate a nested dict into a PipelineConfig, raising ConfigError naming each bad field."""
    try:
        return PipelineConfig.model_validate(values or {})
    except ValidationError as exc:
        # Not chained: the validation error's text repeats the input, which may be huge.
        raise ConfigError(
            "invalid configuration:\n" + _format_errors(exc) + "\nFix these fields and run again."
        ) from None


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into a copy of ``base``."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
