"""Promotion: whether a new version becomes `champion` (a pure decision on out-of-sample
forecasts, with a significance test) and its action under a per-model lock, recorded on the
version (tags and description)."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from stockcast.config import PromotionConfig
from stockcast.errors import RegistryError
from stockcast.evaluation.earlier_folds import WalkForward, test_span_table
from stockcast.evaluation.scorecard import Evaluation
from stockcast.evaluation.significance import TEST_NAME, pooled_dm_test, training_noise
from stockcast.registry.decision_record import Decision, record_decision
from stockcast.registry.evaluation_fit import load_evaluation_fit, logged_recipe, rescore
from stockcast.registry.store import MlflowStore
from stockcast.registry.versions import CHAMPION, champion_record, champion_version
from stockcast.stopping import RunStopped

log = logging.getLogger(__name__)

TABLE_ARTIFACT = "forecasts/test_forecasts.parquet"
RESCORED = "champion's evaluation fit re-scored on the candidate's test span"
LOGGED = "champion's own logged test-span forecasts (an older stockcast)"
UNUSED = "champion's own logged test-span forecasts (its evaluation fit was not used"


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


def paired_losses(candidate: pd.DataFrame, champion: pd.DataFrame, loss: str) -> pd.DataFrame:
    """Both tables' losses on the (date, step) pairs both forecast: date, step, loss_cand,
    loss_champ."""
    common = ["date", "step"]
    return candidate.assign(loss=row_losses(candidate, loss))[[*common, "loss"]].merge(
        champion.assign(loss=row_losses(champion, loss))[[*common, "loss"]],
        on=common, suffixes=("_cand", "_champ")).dropna()


def compare(candidate: pd.DataFrame, champion: pd.DataFrame, cfg: PromotionConfig,
            champion_version: str, evidence: str = "",
            earlier: Sequence[tuple[pd.DataFrame, pd.DataFrame]] = ()) -> Decision:
    """One-sided DM test on the (date, step) pairs both forecast out of sample: promote when the
    candidate's loss is lower than (1 - margin) x the champion's with p < alpha, the test's
    variance including both fits' training noise (2 x (seed_sd x the champion's loss)^2).
    ``earlier``: the (candidate, champion) tables of earlier walk-forward folds, each forecast
    by its own fits: the test pools them with tonight's (``pooled_dm_test``), each fold's
    training noise (``walk_forward_seed_sd``: fits on shorter histories and turbulent spans
    vary more) weighted by its share of the dates."""
    h_cand, h_champ = int(candidate["step"].max()), int(champion["step"].max())
    seed_sd = cfg.walk_forward_seed_sd if earlier else cfg.seed_sd
    base = dict(loss=cfg.loss, champion_version=champion_version, evidence=evidence,
                margin=cfg.margin, seed_sd=seed_sd)
    if h_cand < h_champ and not cfg.allow_horizon_change:
        return Decision(False, f"refused: the candidate forecasts {h_cand} step(s), champion "
                        f"v{champion_version} forecasts {h_champ}; set "
                        "promotion.allow_horizon_change to accept a shorter horizon", **base)
    folds = [m for m in (paired_losses(c, k, cfg.loss) for c, k in (*earlier, (candidate, champion)))
             if len(m)]
    pairs = sum(len(m) for m in folds)
    if pairs < cfg.min_pairs:
        return Decision(False, f"refused: only {pairs} (date, step) pair(s) forecast out of "
                        f"sample by both this version and champion v{champion_version} "
                        f"(promotion.min_pairs is {cfg.min_pairs})", pairs=pairs, **base)
    by_date = [m.groupby("date")[["loss_cand", "loss_champ"]].mean().sort_index() for m in folds]
    merged = pd.concat(folds)
    h = int(merged["step"].max())
    cand, champ = float(merged["loss_cand"].mean()), float(merged["loss_champ"].mean())
    noise = training_noise([b["loss_champ"] for b in by_date], seed_sd, fits=2)  # both fits
    result = pooled_dm_test([(b["loss_cand"], b["loss_champ"] * (1 - cfg.margin)) for b in by_date],
                            h, noise)
    span = f"{by_date[0].index[0].date()}..{by_date[-1].index[-1].date()}"
    found = dict(candidate_loss=cand, champion_loss=champ, pairs=pairs, pvalue=result.pvalue,
                 span=span, folds=len(folds), **base)
    summary = _summary(found, by_date, cfg, evidence)
    if result.pvalue < cfg.alpha:
        return Decision(True, f"promoted: {summary} < alpha {cfg.alpha}", **found)
    return Decision(False, f"refused: not significantly better: {summary} >= alpha {cfg.alpha}",
                    **found)


def _summary(found: dict, by_date: list[pd.DataFrame], cfg: PromotionConfig,
             evidence: str) -> str:
    """The comparison in words, per fold when there are several, for the decision's reason."""
    per_fold = ", ".join(f"{100 * (b['loss_cand'].mean() / b['loss_champ'].mean() - 1):+.1f} %"
                         for b in by_date)
    return (f"{cfg.loss} per unit of price {found['candidate_loss']:.5g} vs champion "
            f"v{found['champion_version']} {found['champion_loss']:.5g} on {found['pairs']} "
            f"common out-of-sample (date, step) pairs {found['span']}"
            + (f" in {len(by_date)} walk-forward folds (per fold {per_fold})"
               if len(by_date) > 1 else "")
            + (f", margin {cfg.margin:.3g}" if cfg.margin else "")
            + (f", training noise {found['seed_sd']:.3g} per fit" if found["seed_sd"] else "")
            + f"; {TEST_NAME} p = {found['pvalue']:.3g}"
            + (f"; the champion's side: {evidence}" if evidence.startswith(UNUSED) else ""))


def decide_promotion(candidate: pd.DataFrame, metrics: dict[str, float],
                     champion: pd.DataFrame | None, champion_version: str | None,
                     cfg: PromotionConfig, evidence: str = "",
                     earlier: Sequence[tuple[pd.DataFrame, pd.DataFrame]] = ()) -> Decision:
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
    return compare(candidate, champion, cfg, champion_version, evidence, earlier)


# ---------------------------------------------------------------------------- the action


def champion_table(store: MlflowStore, run_id: str) -> pd.DataFrame | None:
    """The out-of-sample forecast table logged with a version's run, or None (older runs)."""
    data = store.run_artifact(run_id, TABLE_ARTIFACT)
    return None if data is None else pd.read_parquet(io.BytesIO(data))


def champion_evidence(store: MlflowStore, champion, frame: pd.DataFrame, origins: np.ndarray,
                      key: str | None) -> tuple[pd.DataFrame | None, str]:
    """The out-of-sample forecasts of ``champion`` (its registry record) to compare against,
    and where they came from: its evaluation fit re-scored on the candidate's test span
    (``origins`` of ``frame``), or, for a version of an older stockcast without one, its own
    logged test-span table."""
    name, version, run_id = champion.name, champion.version, champion.run_id
    try:
        fit = load_evaluation_fit(store, run_id, key) if run_id else None
    except RegistryError as exc:  # unsigned with this key (never unpickled), or unloadable
        log.warning("%s v%s: %s; comparing on its logged forecasts instead", name, version, exc)
        return champion_table(store, run_id), f"{UNUSED}: {exc})"
    if fit is not None:
        return rescore(fit, frame, origins), RESCORED
    return champion_table(store, run_id), LOGGED


def walk_forward_evidence(store: MlflowStore, name: str, champion_run: str | None,
                          frame: pd.DataFrame, tonight: tuple[pd.DataFrame, pd.DataFrame],
                          walk: WalkForward, loss: str
                          ) -> tuple[list[tuple[pd.DataFrame, pd.DataFrame]], str]:
    """The earlier walk-forward folds' (candidate, champion) tables, each configuration fit
    cold on each fold, and what was done, when the champion was trained with other settings
    and the candidate's loss is lower on tonight's span; else none and why. The same settings
    (a reseeded rerun, a night's new data) gain nothing from folds: both would refit the one
    configuration, and tonight's span (with the training noise) decides."""
    theirs = logged_recipe(store, champion_run) if champion_run else None
    if theirs is None:
        return [], "; walk-forward: the champion's configuration could not be read"
    differ = walk.recipe.differences(theirs)
    if not differ:
        return [], ""
    paired = paired_losses(*tonight, loss)
    if not len(paired) or paired["loss_cand"].mean() >= paired["loss_champ"].mean():
        return [], "; walk-forward not run: the candidate is not ahead on tonight's span"
    try:
        earlier = [(test_span_table(walk.recipe.fit(frame, end, walk.workers)),
                    test_span_table(theirs.fit(frame, end, walk.workers)))
                   for end in walk.ends(len(frame))]
    except RunStopped:
        raise
    except Exception as exc:  # a fold that cannot be fit leaves tonight's span to decide
        log.warning("%s: walk-forward folds not fit (%s); tonight's span decides", name, exc)
        return [], f"; walk-forward folds could not be fit ({type(exc).__name__}: {exc})"[:300]
    return earlier, (f"; {len(earlier)} earlier walk-forward fold(s), both configurations fit "
                     f"cold ({', '.join(differ[:3])}{', ...' if len(differ) > 3 else ''})")


def promote_if_better(version: str, name: str, evaluation: Evaluation, frame: pd.DataFrame,
                      cfg: PromotionConfig, store: MlflowStore, model_key: str | None = None,
                      walk: WalkForward | None = None) -> Decision:
    """Decide against the current champion on the candidate's test span (the champion's
    evaluation fit re-scored there; with ``walk``, and a champion of other settings, pooled
    with earlier walk-forward folds), move the alias, and record the decision on the version.
    The evidence is gathered before the lock (folds fit); under the lock, a champion that moved
    meanwhile is judged on tonight's span. One lock per store and model: whoever moves
    `champion` (a pipeline or ``set_champion``) holds it, so the champion cannot change
    between reading and moving. Every step is idempotent, so a retry is safe."""

    decided: list[Decision] = []

    def decide(current, folds: WalkForward | None) -> Decision:  # current: champion's record
        theirs, source = (champion_evidence(store, current, frame, evaluation.origins, model_key)
                          if current else (None, ""))
        earlier: list[tuple[pd.DataFrame, pd.DataFrame]] = []
        if (folds is not None and theirs is not None and source == RESCORED
                and sanity_gate(evaluation.decision_metrics, cfg) is None):
            earlier, note = walk_forward_evidence(store, name, current.run_id, frame,
                                                  (evaluation.table, theirs), folds, cfg.loss)
            source += note
        return decide_promotion(evaluation.table, evaluation.decision_metrics, theirs,
                                str(current.version) if current else None, cfg, source, earlier)

    def attempt() -> Decision:
        client = store.client
        if not decided:
            decided.append(decide(champion_record(client, name), walk))
        with store.lock(f"promotion|{name}"):
            current = champion_record(client, name)
            now = str(current.version) if current else None
            if now not in (decided[-1].champion_version, version):  # it moved meanwhile
                decided.append(decide(current, None))
            if decided[-1].promote:
                client.set_registered_model_alias(name, CHAMPION, version)
        served = evaluation.choice if evaluation.served_label else None
        record_decision(client, name, version, decided[-1], serves=served.tag if served else "",
                        why=served.reason if served else "")
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

