"""Promotion: whether a new version becomes `champion` (a pure decision on out-of-sample
forecasts, with a significance test) and its action under a per-model lock, recorded on the
version (tags and description)."""

from __future__ import annotations

import datetime as dt
import io
import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from stockcast.config import PromotionConfig
from stockcast.errors import RegistryError
from stockcast.evaluation.scorecard import Evaluation
from stockcast.evaluation.significance import TEST_NAME, dm_test
from stockcast.registry.evaluation_fit import load_evaluation_fit, rescore
from stockcast.registry.store import MlflowStore, is_transient
from stockcast.registry.versions import CHAMPION, champion_version

log = logging.getLogger(__name__)

TABLE_ARTIFACT = "forecasts/test_forecasts.parquet"
RESCORED = "champion's evaluation fit re-scored on the candidate's test span"
LOGGED = "champion's own logged test-span forecasts (an older stockcast)"
UNVERIFIED = ("champion's own logged test-span forecasts (its evaluation fit is not signed "
              "with this deployment's key, so it was not unpickled)")


@dataclass(frozen=True)
class Decision:
    """Whether a candidate becomes champion, and the evidence."""

    promote: bool
    reason: str
    test: str = TEST_NAME
    loss: str = ""
    candidate_loss: float | None = None
    champion_loss: float | None = None
    pairs: int = 0
    pvalue: float | None = None
    champion_version: str | None = None
    evidence: str = ""  # where the champion's forecasts compared came from
    span: str = ""  # first and last target date compared
    margin: float = 0.0
    seed_sd: float = 0.0  # the training noise the test allowed for (relative, per fit)


# ---------------------------------------------------------------------------- the decision


def row_losses(table: pd.DataFrame, loss: str) -> pd.Series:
    """Each row's loss relative to its realised price (scale-free: a dividend re-adjustment of
    the history between two runs does not bias the comparison)."""
    actual = table["actual"]
    if loss == "squared_error":
        return ((table["point"] - actual) / actual) ** 2
    if loss == "interval_score":
        lo, hi = table["q0.025"], table["q0.975"]
        outside = np.maximum(lo - actual, 0) + np.maximum(actual - hi, 0)
        return ((hi - lo) + (2 / 0.05) * outside) / actual
    levels = [c for c in table.columns if c.startswith("q")]
    parts = [np.maximum(float(c[1:]) * (actual - table[c]), (float(c[1:]) - 1) * (actual - table[c]))
             for c in levels]
    return sum(parts) / len(parts) / actual


def sanity_gate(metrics: dict[str, float], cfg: PromotionConfig) -> str | None:
    """Why a candidate may not be promoted whatever the champion, or None."""
    keys = ("test_rmse", "test_coverage_95", "dm_pvalue_naive")
    if not all(np.isfinite(metrics.get(k, np.nan)) for k in keys):
        return "refused by the sanity gate: candidate metrics are not finite"
    worse_p = 1.0 - metrics["dm_pvalue_naive"]  # H1: persistence has the lower squared error
    if worse_p < cfg.alpha:
        return (f"refused by the sanity gate: the point forecast is significantly worse than "
                f"persistence (DM p {worse_p:.3g} < alpha {cfg.alpha})")
    cov = metrics["test_coverage_95"]
    if abs(cov - 0.95) > cfg.coverage_tolerance:
        return (f"refused by the sanity gate: 95 % interval coverage {cov:.3f} is not within "
                f"{cfg.coverage_tolerance} of 0.95")
    return None


def compare(candidate: pd.DataFrame, champion: pd.DataFrame, cfg: PromotionConfig,
            champion_version: str, evidence: str = "") -> Decision:
    """One-sided DM test on the (date, step) pairs both forecast out of sample: promote when the
    candidate's loss is lower than (1 - margin) x the champion's with p < alpha, the test's
    variance including both fits' training noise (2 x (seed_sd x the champion's loss)^2)."""
    common = ["date", "step"]
    h_cand, h_champ = int(candidate["step"].max()), int(champion["step"].max())
    base = dict(loss=cfg.loss, champion_version=champion_version, evidence=evidence,
                margin=cfg.margin, seed_sd=cfg.seed_sd)
    if h_cand < h_champ and not cfg.allow_horizon_change:
        return Decision(False, f"refused: the candidate forecasts {h_cand} step(s), champion "
                        f"v{champion_version} forecasts {h_champ}; set "
                        "promotion.allow_horizon_change to accept a shorter horizon", **base)
    merged = candidate.assign(loss=row_losses(candidate, cfg.loss))[[*common, "loss"]].merge(
        champion.assign(loss=row_losses(champion, cfg.loss))[[*common, "loss"]],
        on=common, suffixes=("_cand", "_champ")).dropna()
    pairs = len(merged)
    if pairs < cfg.min_pairs:
        return Decision(False, f"refused: only {pairs} (date, step) pair(s) forecast out of "
                        f"sample by both this version and champion v{champion_version} "
                        f"(promotion.min_pairs is {cfg.min_pairs})", pairs=pairs, **base)
    by_date = merged.groupby("date")[["loss_cand", "loss_champ"]].mean().sort_index()
    h = int(merged["step"].max())
    cand, champ = float(merged["loss_cand"].mean()), float(merged["loss_champ"].mean())
    training_noise = 2 * (cfg.seed_sd * float(by_date["loss_champ"].mean())) ** 2
    result = dm_test(by_date["loss_cand"], by_date["loss_champ"] * (1 - cfg.margin), h,
                     training_noise)
    span = f"{by_date.index[0].date()}..{by_date.index[-1].date()}"
    found = dict(candidate_loss=cand, champion_loss=champ, pairs=pairs, pvalue=result.pvalue,
                 span=span, **base)
    summary = (f"{cfg.loss} per unit of price {cand:.5g} vs champion v{champion_version} "
               f"{champ:.5g} on {pairs} common out-of-sample (date, step) pairs {span}"
               + (f", margin {cfg.margin:.3g}" if cfg.margin else "")
               + (f", training noise {cfg.seed_sd:.3g} per fit" if cfg.seed_sd else "")
               + f"; {TEST_NAME} p = {result.pvalue:.3g}")
    if result.pvalue < cfg.alpha:
        return Decision(True, f"promoted: {summary} < alpha {cfg.alpha}", **found)
    return Decision(False, f"refused: not significantly better: {summary} >= alpha {cfg.alpha}",
                    **found)


def decide_promotion(candidate: pd.DataFrame, metrics: dict[str, float],
                     champion: pd.DataFrame | None, champion_version: str | None,
                     cfg: PromotionConfig, evidence: str = "") -> Decision:
    """The whole rule: the sanity gate, then (when there is a champion) the significance test."""
    refused = sanity_gate(metrics, cfg)
    if refused:
        return Decision(False, refused, loss=cfg.loss, champion_version=champion_version)
    if champion_version is None:  # no test: the version's own loss on its test span recorded
        own = row_losses(candidate, cfg.loss)
        dates = pd.to_datetime(candidate["date"])
        return Decision(True, "promoted: no champion yet and the sanity gate passed",
                        test="none (no champion to compare with)", loss=cfg.loss,
                        candidate_loss=float(own.mean()), pairs=int(own.notna().sum()),
                        span=f"{dates.min().date()}..{dates.max().date()}")
    if champion is None:
        return Decision(True, f"promoted: champion v{champion_version} has no out-of-sample "
                        "forecast table (made by an older stockcast) and the sanity gate "
                        "passed", loss=cfg.loss, champion_version=champion_version)
    return compare(candidate, champion, cfg, champion_version, evidence)


# ---------------------------------------------------------------------------- the action


def champion_table(store: MlflowStore, name: str, version: str) -> pd.DataFrame | None:
    """The out-of-sample forecast table logged with a version's run, or None (older runs)."""
    run_id = store.client.get_model_version(name, version).run_id
    data = store.run_artifact(run_id, TABLE_ARTIFACT)
    return None if data is None else pd.read_parquet(io.BytesIO(data))


def champion_evidence(store: MlflowStore, name: str, version: str, frame: pd.DataFrame,
                      origins: np.ndarray, key: str | None) -> tuple[pd.DataFrame | None, str]:
    """The champion's out-of-sample forecasts to compare against, and where they came from:
    its evaluation fit re-scored on the candidate's test span (``origins`` of ``frame``), or,
    for a version of an older stockcast without one, its own logged test-span table."""
    run_id = store.client.get_model_version(name, version).run_id
    try:
        fit = load_evaluation_fit(store, run_id, key) if run_id else None
    except RegistryError as exc:  # not signed with this key: never unpickled
        log.warning("%s v%s: %s; comparing on its logged forecasts instead", name, version, exc)
        return champion_table(store, name, version), UNVERIFIED
    if fit is not None:
        return rescore(fit, frame, origins), RESCORED
    return champion_table(store, name, version), LOGGED


def promote_if_better(version: str, name: str, evaluation: Evaluation, frame: pd.DataFrame,
                      cfg: PromotionConfig, store: MlflowStore,
                      model_key: str | None = None) -> Decision:
    """Decide against the current champion on the candidate's test span (the champion's
    evaluation fit re-scored there), move the alias, and record the decision on the version.
    One lock per store and model: whoever moves `champion` (a pipeline or ``set_champion``)
    holds it, so the champion cannot change between reading and moving. Every step is
    idempotent, so a retry is safe."""

    decided: list[Decision] = []

    def attempt() -> Decision:
        client = store.client
        with store.lock(f"promotion|{name}"):
            current = champion_version(client, name)
            if not (decided and current == version):  # else: a retry after the alias moved
                theirs, source = (champion_evidence(store, name, current, frame,
                                                    evaluation.origins, model_key)
                                  if current else (None, ""))
                decided.append(decide_promotion(evaluation.table, evaluation.decision_metrics, theirs,
                                                current, cfg, source))
            if decided[-1].promote:
                client.set_registered_model_alias(name, CHAMPION, version)
        record_decision(client, name, version, decided[-1], serves=evaluation.served_label)
        return decided[-1]

    try:
        decision = store.call("promotion", attempt)
    except Exception:
        _withdraw(name, version, store)
        raise
    log.info("%s v%s: %s", name, version, decision.reason)
    return decision


def _withdraw(name: str, version: str, store: MlflowStore) -> None:
    """A ticker whose promotion failed registers no version: delete the one just registered
    (unless it already became champion). Best effort: the store may be the thing that failed."""
    try:
        client = store.client
        if champion_version(client, name) != version:
            client.delete_model_version(name, version)
            log.warning("%s: promotion failed; version %s was removed again", name, version)
    except Exception as exc:  # cleanup only, never retried: report and keep the first error
        log.warning("%s: promotion failed and version %s could not be removed (%s); it is "
                    "not champion", name, version, exc)


def record_decision(client: MlflowClient, name: str, version: str, decision: Decision,
                    by: str = "pipeline", serves: str = "") -> None:
    """Audit trail: the test, the loss, both losses, the pairs, the p-value and the reason as
    ``promotion.*`` tags, and the reason in the version's description (the registry list
    truncates tags), after what the version serves when it is a volatility model."""
    tags = {f"promotion.{k}": "n/a" if v is None else str(v) for k, v in asdict(decision).items()}
    tags["promotion.decided_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    tags["promotion.decided_by"] = by
    # The public call checks once that the name is a model, not a prompt; the tags then go
    # through the registry client behind MlflowClient.set_model_version_tag, which would
    # re-read the whole registered model (every version) for each of the ~18 tags.
    served = f" · serves {serves}" if serves else ""
    client.update_model_version(name, version, description=f"{headline(decision, by)}{served} · "
                                f"{decision.reason} (decided by {by})")
    registry = client._get_registry_client()  # MLflow is pinned; the promotion tests read these
    for key, value in tags.items():
        registry.set_model_version_tag(name, version, key, value)


def headline(decision: Decision, by: str = "pipeline") -> str:
    """The decision in a few words, first in the version's description (the registry's
    version list shows about 40 characters of it): ``CHAMPION: -6.1 % vs v3, p 0.004``,
    ``v3 stays champion: -0.8 %, p 0.310``, ``no champion: sanity gate refused``."""
    previous = decision.champion_version
    change = ""
    if decision.candidate_loss is not None and decision.champion_loss:
        change = f"{100 * (decision.candidate_loss / decision.champion_loss - 1):+.1f} %"
    if decision.promote:
        if by == "manual":
            return "CHAMPION by hand" + (f" (was v{previous})" if previous else "")
        if decision.pvalue is not None:
            return f"CHAMPION: {change} vs v{previous}, p {_p(decision.pvalue)}"
        return f"CHAMPION: replaces v{previous}" if previous else "CHAMPION: first version"
    kept = f"v{previous} stays champion" if previous else "no champion"
    if decision.reason.startswith("refused by the sanity gate"):
        return f"{kept}: sanity gate refused"
    if decision.pvalue is not None:
        return f"{kept}: {change}, p {_p(decision.pvalue)}"
    return f"{kept}: refused"


def _p(pvalue: float) -> str:
    return f"{pvalue:.3f}" if pvalue >= 0.001 else f"{pvalue:.0e}"


def set_champion(name: str, version: str, store: MlflowStore) -> Decision:
    """Manual promotion or rollback: point `champion` at ``version`` and record it."""
    store.open()
    before: list[str | None] = []  # the champion the first attempt found (a retry keeps it)

    def attempt() -> Decision:
        client = store.client
        try:
            mv = client.get_model_version(name, version)
        except MlflowException as exc:
            if is_transient(exc):
                raise
            raise RegistryError(f"{name} has no version {version}: {exc.message}") from exc
        with store.lock(f"promotion|{name}"):
            if not before:
                before.append(champion_version(client, name))
            previous = before[0]
            client.set_registered_model_alias(name, CHAMPION, mv.version)
        decision = Decision(True, f"promoted by hand (champion was v{previous})",
                            champion_version=previous)
        record_decision(client, name, version, decision, by="manual")
        return decision

    return store.call("manual promotion", attempt)
