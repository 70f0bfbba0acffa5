"""The model registry: one registered model per ticker, `champion` / `challenger` aliases,
and the promotion decision (pure) with its compare-and-set action."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import numpy as np
from filelock import FileLock
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from stockcast.config import PromotionConfig
from stockcast.errors import RegistryError
from stockcast.evaluate import price_metrics

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"


def model_name(prefix: str, ticker: str) -> str:
    """The registered model of a ticker: ``<prefix>-<TICKER>``, e.g. ``stockcast-GOOG``."""
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9_.]+', '_', ticker.upper())}"


# ---------------------------------------------------------------------------- the decision


@dataclass(frozen=True)
class Decision:
    """Whether a candidate becomes champion, and why."""

    promote: bool
    reason: str
    candidate_rmse: float
    candidate_skill: float
    champion_rmse: float | None = None
    champion_version: str | None = None


def decide_promotion(
    candidate_rmse: float,
    candidate_skill: float,
    champion_rmse: float | None,
    cfg: PromotionConfig,
    champion_version: str | None = None,
) -> Decision:
    """Promote when the candidate passes the sanity gate (skill vs persistence >= min_skill) and
    there is no champion, or it beats the champion's RMSE on the same data by ``cfg.margin``."""
    common = dict(candidate_rmse=candidate_rmse, candidate_skill=candidate_skill,
                  champion_rmse=champion_rmse, champion_version=champion_version)
    if not np.isfinite(candidate_rmse) or not np.isfinite(candidate_skill):
        return Decision(False, "refused: candidate metrics are not finite", **common)
    if candidate_skill < cfg.min_skill:
        return Decision(
            False,
            f"refused by the sanity gate: skill_rmse {candidate_skill:.4f} < min_skill "
            f"{cfg.min_skill} (clearly worse than naive persistence)",
            **common,
        )
    if champion_rmse is None:
        return Decision(True, "promoted: no champion yet and the sanity gate passed", **common)
    threshold = champion_rmse * (1.0 - cfg.margin)
    if candidate_rmse < threshold:
        return Decision(
            True,
            f"promoted: test RMSE {candidate_rmse:.4f} beats champion v{champion_version} "
            f"{champion_rmse:.4f} on the same data (margin {cfg.margin:.1%})",
            **common,
        )
    return Decision(
        False,
        f"refused: test RMSE {candidate_rmse:.4f} does not beat champion v{champion_version} "
        f"{champion_rmse:.4f} on the same data (needs < {threshold:.4f})",
        **common,
    )


# ---------------------------------------------------------------------------- the action


def _client(tracking_uri: str | None) -> MlflowClient:
    return MlflowClient(tracking_uri or mlflow.get_tracking_uri())


def champion_version(client: MlflowClient, name: str, alias: str = CHAMPION) -> str | None:
    """The version an alias points at, or None."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
            return None
        raise


def register_version(model_uri: str, name: str, run_id: str, tracking_uri: str | None) -> str:
    """Register the logged model as a new version and point `challenger` at it."""
    mlflow.set_tracking_uri(tracking_uri or mlflow.get_tracking_uri())
    # register_model resolves MLflow 3 logged-model URIs (models:/m-...) on any store.
    mv = mlflow.register_model(model_uri, name, tags={"run_id": run_id})
    _client(tracking_uri).set_registered_model_alias(name, CHALLENGER, mv.version)
    return str(mv.version)


def rescore_champion(name: str, version: str, frame, origins: np.ndarray, actual: np.ndarray,
                     tracking_uri: str | None) -> float:
    """RMSE of the champion's forecasts at exactly the candidate's test origins and targets."""
    mlflow.set_tracking_uri(tracking_uri or mlflow.get_tracking_uri())
    champion = mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()
    pred = champion.forecast_at(frame, origins)
    steps = min(pred.shape[1], actual.shape[1])  # compare on the steps both forecast
    return price_metrics(pred[:, :steps], actual[:, :steps])["rmse"]


def _lock_for(tracking_uri: str, name: str) -> FileLock:
    # One lock per store and model, so concurrent pipelines decide one at a time.
    key = hashlib.sha256(f"{tracking_uri}|{name}".encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / "stockcast-locks" / f"{key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path), timeout=600)


def promote_if_better(
    name: str,
    version: str,
    candidate_rmse: float,
    candidate_skill: float,
    frame,
    origins: np.ndarray,
    actual: np.ndarray,
    cfg: PromotionConfig,
    tracking_uri: str | None = None,
) -> Decision:
    """Decide against the current champion re-scored on the candidate's test data, move the
    alias by compare-and-set, and record the decision as tags on the version."""
    uri = tracking_uri or mlflow.get_tracking_uri()
    client = _client(uri)
    with _lock_for(uri, name):
        for _ in range(5):
            current = champion_version(client, name)
            champ_rmse = None
            if current is not None and current != version:
                champ_rmse = rescore_champion(name, current, frame, origins, actual, uri)
            decision = decide_promotion(candidate_rmse, candidate_skill, champ_rmse, cfg, current)
            # Compare-and-set: only move the alias if nobody moved it while we were scoring.
            if champion_version(client, name) != current:
                log.info("%s: champion changed while deciding; deciding again", name)
                continue
            if decision.promote:
                client.set_registered_model_alias(name, CHAMPION, version)
            break
        else:
            raise RegistryError(f"{name}: the champion kept changing; promotion gave up")
    record_decision(client, name, version, decision)
    log.info("%s v%s: %s", name, version, decision.reason)
    return decision


def record_decision(client: MlflowClient, name: str, version: str, decision: Decision,
                    by: str = "pipeline") -> None:
    """Audit trail: the decision, both scores and the reason, as tags on the version."""
    tags = {f"promotion.{k}": "" if v is None else str(v) for k, v in asdict(decision).items()}
    tags["promotion.decided_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    tags["promotion.decided_by"] = by
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def set_champion(name: str, version: str, tracking_uri: str | None = None) -> Decision:
    """Manual promotion or rollback: point `champion` at ``version`` and record it."""
    client = _client(tracking_uri)
    try:
        mv = client.get_model_version(name, version)
    except MlflowException as exc:
        raise RegistryError(f"{name} has no version {version}: {exc.message}") from exc
    with _lock_for(tracking_uri or mlflow.get_tracking_uri(), name):
        previous = champion_version(client, name)
        client.set_registered_model_alias(name, CHAMPION, mv.version)
    run = client.get_run(mv.run_id) if mv.run_id else None
    rmse = run.data.metrics.get("test_rmse", float("nan")) if run else float("nan")
    skill = run.data.metrics.get("skill_rmse", float("nan")) if run else float("nan")
    decision = Decision(True, f"promoted by hand (champion was v{previous})", rmse, skill,
                        None, previous)
    record_decision(client, name, version, decision, by="manual")
    return decision


def list_versions(prefix: str, ticker: str | None, tracking_uri: str | None = None) -> list[dict]:
    """Every registered version with aliases, key metrics and its promotion decision."""
    client = _client(tracking_uri)
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
            run = client.get_run(mv.run_id) if mv.run_id else None
            metrics = run.data.metrics if run else {}
            rows.append({
                "model": name,
                "version": int(mv.version),
                "aliases": ",".join(sorted(by_version.get(str(mv.version), []))),
                "test_rmse": metrics.get("test_rmse"),
                "naive_rmse": metrics.get("naive_rmse"),
                "skill_rmse": metrics.get("skill_rmse"),
                "decision": mv.tags.get("promotion.reason", ""),
                "run_id": mv.run_id,
            })
    return sorted(rows, key=lambda r: (r["model"], r["version"]))
