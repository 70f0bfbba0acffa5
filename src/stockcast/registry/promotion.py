"""Promotion: the decision (pure) whether a new version becomes `champion`, and its action
under a per-model lock, recorded on the version."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
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
from stockcast.evaluation.metrics import price_metrics
from stockcast.evaluation.scoring import Evaluation
from stockcast.modeling.windows import PreparedData
from stockcast.registry.store import with_retries
from stockcast.registry.versions import CHAMPION, champion_version

log = logging.getLogger(__name__)


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


def rescore_champion(name: str, version: str, frame, origins: np.ndarray, actual: np.ndarray,
                     tracking_uri: str) -> float:
    """RMSE of the champion's forecasts at exactly the candidate's test origins and targets."""
    mlflow.set_tracking_uri(tracking_uri)
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


def promote_if_better(version: str, name: str, data: PreparedData, evaluation: Evaluation,
                      cfg: PromotionConfig, tracking_uri: str, retries: int = 2) -> Decision:
    """Decide against the current champion re-scored on the candidate's test data, move the
    alias, and record the decision as tags on the version. One lock per store and model:
    whoever moves `champion` (a pipeline or ``set_champion``) holds it, so the champion cannot
    change between scoring and moving. Every step is idempotent, so a retry is safe."""
    return with_retries("promotion", lambda: _promote(version, name, data, evaluation, cfg,
                                                      tracking_uri), retries)


def _promote(version: str, name: str, data: PreparedData, evaluation: Evaluation,
             cfg: PromotionConfig, tracking_uri: str) -> Decision:
    client = MlflowClient(tracking_uri)
    with _lock_for(tracking_uri, name):
        current = champion_version(client, name)
        champ_rmse = None
        if current is not None and current != version:
            champ_rmse = rescore_champion(name, current, data.frame, evaluation.origins,
                                          evaluation.actual, tracking_uri)
        decision = decide_promotion(evaluation.metrics["test_rmse"],
                                    evaluation.metrics["skill_rmse"], champ_rmse, cfg, current)
        if decision.promote:
            client.set_registered_model_alias(name, CHAMPION, version)
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


def set_champion(name: str, version: str, tracking_uri: str) -> Decision:
    """Manual promotion or rollback: point `champion` at ``version`` and record it."""
    client = MlflowClient(tracking_uri)
    try:
        mv = client.get_model_version(name, version)
    except MlflowException as exc:
        raise RegistryError(f"{name} has no version {version}: {exc.message}") from exc
    with _lock_for(tracking_uri, name):
        previous = champion_version(client, name)
        client.set_registered_model_alias(name, CHAMPION, mv.version)
    run = client.get_run(mv.run_id) if mv.run_id else None
    rmse = run.data.metrics.get("test_rmse", float("nan")) if run else float("nan")
    skill = run.data.metrics.get("skill_rmse", float("nan")) if run else float("nan")
    decision = Decision(True, f"promoted by hand (champion was v{previous})", rmse, skill,
                        None, previous)
    record_decision(client, name, version, decision, by="manual")
    return decision
