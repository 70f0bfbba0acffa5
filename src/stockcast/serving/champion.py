"""Forecasting with a ticker's champion: load it, forecast the next days, write the results."""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from pydantic import SecretStr

from stockcast.errors import RegistryError
from stockcast.plot_style import new_figure, save, serialized
from stockcast.registry.promotion import champion_table
from stockcast.registry.pyfunc import MAX_REQUEST_ROWS
from stockcast.registry.signing import verified_download
from stockcast.registry.store import MlflowStore
from stockcast.registry.versions import champion_record, champion_version
from stockcast.runtime import path_inside
from stockcast.serving.drift import RangeReference, range_reference
from stockcast.serving.following import ChampionApp, Served
from stockcast.serving.rest import scoring_app

BAND_COLUMNS = ("forecast", "lower_80", "upper_80", "lower_95", "upper_95")
# What the adaptive calibration did (models logged before it have none of these columns).
ADAPTATION_COLUMNS = ("adapted_on", "band_ratio_80", "band_ratio_95")


@dataclass
class Champion:
    """A ticker's champion: its registered name, version, run and pyfunc model."""

    name: str
    version: str
    run_id: str
    model: object  # mlflow.pyfunc.PyFuncModel


def load_champion(name: str, store: MlflowStore, model_key: SecretStr | None = None) -> Champion:
    """Load ``models:/<name>@champion``; RegistryError if there is none, or if a key is set
    and the champion's files are not signed with it (checked before anything is unpickled)."""
    store.open()
    try:
        record = store.call("registry read", lambda: champion_record(store.client, name))
    except MlflowException as exc:
        raise RegistryError(f"could not read the registry at {store.tracking_uri}: {exc}") from exc
    if record is None:
        raise RegistryError(f"{name} has no champion yet: run the training pipeline "
                            "(`make run-flow`) first, or promote a version by hand")
    version = str(record.version)
    key = model_key.get_secret_value() if model_key is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        local = verified_download(name, version, key, store, Path(tmp))
        if not (Path(local) / "MLmodel").is_file():
            raise RegistryError(
                f"{name} v{version} (the champion) has no model files (no MLmodel in its "
                "artifacts; registered by hand?): promote a version the pipeline logged "
                f"(`stockcast promote --ticker ... --version N`), or run `make run-flow`")
        try:
            model = mlflow.pyfunc.load_model(str(local))
        except Exception as exc:  # a corrupt or incompatible file: the version's, say which
            ticker = name.split("-", 1)[-1]
            raise RegistryError(
                f"{name} v{version} (the champion) cannot be loaded from its model files "
                f"(models:/{name}/{version}: MLmodel, python_model.pkl and artifacts/; "
                f"{type(exc).__name__}: {exc})"[:500] + ". Promote a version that loads "
                f"(`stockcast models --ticker {ticker}` lists them; `stockcast promote "
                f"--ticker {ticker} --version N`), or run `make run-flow` to train a new "
                "one") from exc
        return Champion(name, version, record.run_id, model)


def served_champion(name: str, store: MlflowStore, model_key: SecretStr | None = None) -> Served:
    """The champion loaded (signature verified) as a scoring app, labelled with its version."""
    champion = load_champion(name, store, model_key)
    return Served(scoring_app(champion.model), f"{name} v{champion.version}", champion.version)


def follow_champion(name: str, store: MlflowStore, model_key: SecretStr | None,
                    reload_seconds: float) -> ChampionApp:
    """The REST service's app: the champion now, and the next one within ``reload_seconds``
    of the alias moving (``following``)."""
    return ChampionApp(served_champion(name, store, model_key),
                       lambda: store.call("registry read",
                                          lambda: champion_version(store.client, name)),
                       lambda _: served_champion(name, store, model_key),
                       reload_seconds).start()


def drift_reference(champion: Champion, store: MlflowStore,
                    frame: pd.DataFrame) -> RangeReference | None:
    """The calm the drift monitor measures against: the champion's own out-of-sample test
    span (its logged forecast table, one-step rows) with each day's range from ``frame``;
    None for a version without a table (the monitor then uses the size of each move)."""
    table = store.call("test table read",
                       lambda: champion_table(store, champion.run_id))
    return range_reference(table, frame, f"v{champion.version}'s test span")


def forecast_next(champion: Champion, frame: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """Forecast the next NYSE trading days after the frame's last date: point forecast, 80 %
    and 95 % intervals and the quantiles, with the ticker and the model that made them."""
    # The served model reads the window and its volatility warm-up only (and refuses requests
    # beyond MAX_REQUEST_ROWS): a long cached history is sent as its recent rows.
    out = champion.model.predict(frame.tail(MAX_REQUEST_ROWS).reset_index(drop=True))
    out.insert(0, "ticker", ticker)
    out["model"] = champion.name
    out["model_version"] = champion.version
    out["last_close"] = float(frame["Close"].iloc[-1])
    out["last_date"] = pd.to_datetime(frame["Date"].iloc[-1])
    return out


@serialized
def write_forecast(forecast: pd.DataFrame, frame: pd.DataFrame, out_dir: Path, ticker: str,
                   history_days: int = 120) -> dict[str, Path]:
    """Write the forecast as CSV and Parquet plus a fan chart with recent history; the files
    are named by the first forecast date (the day the forecast is for, not today)."""
    out_dir = path_inside(Path(out_dir), ticker)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = pd.Timestamp(forecast["date"].iloc[0]).date().isoformat()
    paths = {
        "csv": out_dir / f"{ticker}-{stamp}.csv",
        "parquet": out_dir / f"{ticker}-{stamp}.parquet",
        "plot": out_dir / f"{ticker}-{stamp}.png",
    }
    forecast.to_csv(paths["csv"], index=False)
    forecast.to_parquet(paths["parquet"], index=False)
    recent = frame.tail(history_days)
    fig, ax = new_figure(figsize=(10, 4.5))
    ax.plot(recent["Date"], recent["Close"], color="0.2", label="close (adjusted)")
    last_date, last_close = recent["Date"].iloc[-1], recent["Close"].iloc[-1]
    x = [last_date, *forecast["date"]]
    for cov, alpha in (("95", 0.18), ("80", 0.3)):
        ax.fill_between(x, [last_close, *forecast[f"lower_{cov}"]],
                        [last_close, *forecast[f"upper_{cov}"]], color="tab:blue", alpha=alpha,
                        lw=0, label=f"{cov} % interval")
    ax.plot([recent["Date"].iloc[-1], *forecast["date"]],
            [recent["Close"].iloc[-1], *forecast["forecast"]], color="tab:blue", marker="o",
            ms=3, label=f"forecast (champion v{forecast['model_version'].iloc[0]})")
    ax.set(title=f"{ticker}: next {len(forecast)} trading day(s)", xlabel="date",
           ylabel="price (currency units)")
    ax.legend()
    fig.autofmt_xdate()
    save(fig, paths["plot"])
    return paths


def log_forecast(ticker: str, paths: dict[str, Path], version: str, store: MlflowStore,
                 experiment: str, tags: dict[str, str] | None = None,
                 metrics: dict[str, float] | None = None,
                 forecast: pd.DataFrame | None = None) -> str:
    """Record a forecast as an MLflow run in ``experiment`` (one run per ticker per day): its
    files, where its prices came from, the champion's live metrics, and the forecast itself
    (``forecast``, ``lower_95`` ... as metrics whose step is the horizon step, with the
    adaptive calibration's state: ``adapted_on`` realised past forecasts, ``band_ratio_80`` /
    ``band_ratio_95`` the adapted width over the static one's); returns the
    run id. The run is named by the day forecast and when: ``GOOG for 2013-03-04 (v2) ·
    2026-12-01 07:30:12``."""

    def body(run_id: str) -> str:
        mlflow.set_tags({"ticker": ticker, "champion_version": version, "kind": "forecast",
                         **(tags or {})})
        if metrics:
            mlflow.log_metrics(metrics)
        if forecast is not None:
            mlflow.log_metric("last_close", float(forecast["last_close"].iloc[0]))
            logged = [c for c in (*BAND_COLUMNS, *ADAPTATION_COLUMNS) if c in forecast.columns]
            for row in forecast.itertuples():
                mlflow.log_metrics({c: float(getattr(row, c)) for c in logged},
                                   step=int(row.step))
        for path in paths.values():
            mlflow.log_artifact(str(path), artifact_path="forecast")
        return run_id

    target = (f" for {pd.Timestamp(forecast['date'].iloc[0]).date()}"
              if forecast is not None else "")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return store.log_run("forecast logging", f"{ticker}{target} (v{version}) · {stamp}", body,
                         experiment=experiment)
