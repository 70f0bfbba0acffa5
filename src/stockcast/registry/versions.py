"""Registered models: one per ticker, its versions and the `champion` / `challenger` aliases."""

from __future__ import annotations

import contextlib
import io
import logging

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from stockcast.errors import ConfigError
from stockcast.registry.store import MlflowStore
from stockcast.tickers import clean_ticker

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"


def model_name(prefix: str, ticker: str) -> str:
    """The registered model of a ticker: ``<prefix>-<TICKER>``, e.g. ``stockcast-GOOG``,
    ``stockcast-^GSPC``. Tickers are validated symbols (letters, digits, . - ^ =), all of
    which MLflow accepts in names, so the mapping is one-to-one."""
    try:
        return f"{prefix}-{clean_ticker(ticker)}"
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def champion_record(client: MlflowClient, name: str, alias: str = CHAMPION):
    """The record (version, run id...) an alias points at, or None: one registry read."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
            return None
        raise


def champion_version(client: MlflowClient, name: str, alias: str = CHAMPION) -> str | None:
    """The version an alias points at, or None."""
    record = champion_record(client, name, alias)
    return None if record is None else str(record.version)


def latest_version(client: MlflowClient, name: str):
    """The record (version, run id...) of the highest version registered under ``name``
    (promoted or not), or None: one registry read."""
    versions = client.search_model_versions(f"name='{name}'")
    return max(versions, key=lambda mv: int(mv.version)) if versions else None


def version_of_run(client: MlflowClient, name: str, run_id: str) -> str | None:
    """The version already registered from ``run_id`` (a retried registration finds it)."""
    try:
        found = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code):
            return None
        raise
    return str(max(int(mv.version) for mv in found)) if found else None


def register_version(model_uri: str, run_id: str, name: str, store: MlflowStore) -> str:
    """Register the logged model as a new version and point `challenger` at it; the version
    carries its run's ``forecaster`` tag (lstm, har, ...: what the Models page shows is
    served). Idempotent: a retry after a transient failure never adds a second version for
    the same run."""

    def attempt() -> str:
        client = store.client
        version = version_of_run(client, name, run_id)
        if version is None:
            # register_model resolves MLflow 3 logged-model URIs (models:/m-...) on any store;
            # its "Successfully registered model" prints go to our log, not the console.
            printed = io.StringIO()
            with contextlib.redirect_stderr(printed):
                run_tags = client.get_run(run_id).data.tags
                tags = {"run_id": run_id, "forecaster": run_tags.get("forecaster", "lstm"),
                        "forecaster.reason": run_tags.get("forecaster.reason", "")[:5000]}
                version = str(mlflow.register_model(model_uri, name, tags=tags).version)
            for line in printed.getvalue().splitlines():
                log.info("%s", line)
        client.set_registered_model_alias(name, CHALLENGER, version)
        return version

    return store.call("registration", attempt)


def list_versions(prefix: str, ticker: str | None, store: MlflowStore) -> list[dict]:
    """Every registered version with aliases, key metrics, its promotion decision and, for a
    version that has served, its latest live monitoring (drift CUSUM, tail backtests)."""
    store.open()
    rows = store.call("listing", lambda: _list_versions(store.client, prefix, ticker))
    live = store.call("listing", lambda: _live_by_version(store, {r["model"] for r in rows},
                                                          prefix))
    return [{**r, "live": live.get((r["model"], str(r["version"])), {})} for r in rows]


def _live_by_version(store: MlflowStore, names: set[str], prefix: str) -> dict:
    """(model, version) -> the metrics and zone of the latest forecast run it made."""
    exp = store.client.get_experiment_by_name(f"{store.experiment}-forecasts")
    if exp is None or not names:
        return {}
    out: dict = {}
    for name in names:
        ticker = name.removeprefix(f"{prefix}-").replace("'", "")
        runs = store.client.search_runs([exp.experiment_id], f"tags.ticker = '{ticker}'",
                                        order_by=["attributes.start_time DESC"], max_results=500)
        for run in runs:
            key = (name, run.data.tags.get("champion_version", ""))
            if key not in out:
                out[key] = {**run.data.metrics,
                            "zone": run.data.tags.get("monitor.basel_zone", ""),
                            "statistic": run.data.tags.get("monitor.statistic", ""),
                            "drift": run.data.tags.get("monitor.drift", "")}
    return out


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _list_versions(client: MlflowClient, prefix: str, ticker: str | None) -> list[dict]:
    if ticker:
        names = [model_name(prefix, ticker)]
    else:
        names = [m.name for m in client.search_registered_models()
                 if m.name.startswith(f"{prefix}-")]
    rows = []
    for name in names:
        try:
            aliases = client.get_registered_model(name).aliases or {}
        except MlflowException:
            continue
        by_version: dict[str, list[str]] = {}
        for alias, v in aliases.items():
            by_version.setdefault(str(v), []).append(alias)
        for mv in client.search_model_versions(f"name='{name}'"):
            run = client.get_run(mv.run_id).data if mv.run_id else None
            metrics, tags = (run.metrics, run.tags) if run else ({}, {})
            rows.append({
                "model": name,
                "version": int(mv.version),
                "aliases": ",".join(sorted(by_version.get(str(mv.version), []))),
                "test_rmse": metrics.get("test_rmse"),
                "naive_rmse": metrics.get("naive_rmse"),
                "skill_rmse": metrics.get("skill_rmse"),
                "skill_rmse_pct": metrics.get("skill_rmse_pct"),
                "test_coverage_95": metrics.get("test_coverage_95"),
                "test_interval_score_95": metrics.get("test_interval_score_95"),
                "ewma_interval_score_95": metrics.get("ewma_interval_score_95"),
                "garch_interval_score_95": metrics.get("garch_interval_score_95"),
                "har_interval_score_95": metrics.get("har_interval_score_95"),
                "dm_pvalue_is95_garch": metrics.get("dm_pvalue_is95_garch"),
                "forecaster": tags.get("forecaster", "lstm"),
                "forecaster_reason": tags.get("forecaster.reason", ""),
                "decision": mv.tags.get("promotion.reason", ""),
                "decided_at": mv.tags.get("promotion.decided_at", "")[:19],
                "decided_by": mv.tags.get("promotion.decided_by", ""),
                "promotion_p": _number(mv.tags.get("promotion.pvalue")),
                "pairs": _number(mv.tags.get("promotion.pairs")),
                "span": mv.tags.get("promotion.span", ""),
                "run_id": mv.run_id,
            })
    return sorted(rows, key=lambda r: (r["model"], r["version"]))
