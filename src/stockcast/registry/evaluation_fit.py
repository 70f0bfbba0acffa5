"""The evaluation fit kept beside every registered version, so promotion can re-score a
champion on the candidate's (recent) test span.

Every day after a fit's validation end is out of sample for it: its weights saw only training
rows, early stopping and calibration only validation rows. So a champion of any age can be
scored again on tonight's candidate's test span, and the two compare on the same, most recent
days, which never shrink with the champion's age. The fit is a pickle (model, transform,
conformal quantiles); with a model key it is signed when logged and verified before it is
unpickled, like the served model.
"""

from __future__ import annotations

import hmac
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.entities import Run
from pydantic import ValidationError

from stockcast.config import PipelineConfig
from stockcast.errors import RegistryError
from stockcast.evaluation.earlier_folds import FoldFit, Recipe
from stockcast.evaluation.forecast_tables import forecast_table
from stockcast.modeling.forecaster import Forecaster, ServedForecaster
from stockcast.modeling.recipe import TickerFit
from stockcast.registry.signing import sign_bytes
from stockcast.registry.store import MlflowStore
from stockcast.registry.versions import latest_version

ARTIFACT_DIR = "evaluation_fit"
ARTIFACT = f"{ARTIFACT_DIR}/forecaster.pkl"
SIGNATURE_TAG = "stockcast.eval_fit_hmac"
LSTM_ARTIFACT = f"{ARTIFACT_DIR}/lstm.pkl"  # the LSTM, when a baseline was served instead
LSTM_SIGNATURE_TAG = "stockcast.eval_lstm_hmac"
VAL_END_TAG = "fit.val_end"
FOLDS_TAG = "fit.fold_val_ends"  # the kept earlier-fold fits' validation ends, oldest first
FOLD_SIGNATURE_TAG = "stockcast.fold_fit_hmac."  # + the fold's number
CONFIG_ARTIFACT = "config/config.yaml"  # every run logs its effective configuration


def validation_end(fit: TickerFit) -> pd.Timestamp:
    """The last date the fit's early stopping and calibration saw."""
    return pd.Timestamp(fit.data.frame["Date"].iloc[fit.data.bounds.val_end - 1])


def _log_signed(data: bytes, artifact: str, tag: str, run_id: str, key: str | None,
                store: MlflowStore) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact).name
        path.write_bytes(data)
        mlflow.log_artifact(str(path), artifact_path=ARTIFACT_DIR)
    if key:
        store.client.set_tag(run_id, tag, sign_bytes(data, key))


def log_evaluation_fit(fit: TickerFit, run_id: str, key: str | None, store: MlflowStore,
                       forecaster: ServedForecaster | None = None,
                       folds: tuple[FoldFit, ...] = ()) -> None:
    """Inside a run: the evaluated forecaster (the fit's LSTM, or the baseline served in its
    place) as an artifact, the fit's validation end as a tag, and (with a key) its signature.
    When a baseline is served, the fit's LSTM is kept beside it (``lstm.pkl``): tomorrow's
    fit can still start from its weights. The earlier walk-forward folds' LSTM fits the
    serving choice used (``folds``) are kept too (``fold-N.pkl``), for later nights to
    re-score."""
    served = forecaster if forecaster is not None else fit.forecaster
    _log_signed(pickle.dumps(served), ARTIFACT, SIGNATURE_TAG, run_id, key, store)
    if served is not fit.forecaster:
        _log_signed(pickle.dumps(fit.forecaster), LSTM_ARTIFACT, LSTM_SIGNATURE_TAG, run_id,
                    key, store)
    for number, fold in enumerate(folds):
        _log_signed(pickle.dumps(fold.forecaster), _fold_artifact(number),
                    f"{FOLD_SIGNATURE_TAG}{number}", run_id, key, store)
    tags = {VAL_END_TAG: str(validation_end(fit).date())}
    if folds:
        tags[FOLDS_TAG] = ",".join(str(fold.val_end.date()) for fold in folds)
    for name, value in tags.items():
        store.client.set_tag(run_id, name, value)


def _fold_artifact(number: int) -> str:
    return f"{ARTIFACT_DIR}/fold-{number}.pkl"


def kept_fold_fits(store: MlflowStore, name: str, key: str | None, recipe: Recipe
                   ) -> tuple[FoldFit, ...]:
    """The earlier folds' LSTM fits the latest version of ``name`` kept, when its run was
    trained with ``recipe`` (none otherwise, or for runs that kept none); verified like the
    evaluation fit before unpickling."""
    latest = latest_version(store.client, name)
    if latest is None:
        return ()
    run = store.client.get_run(latest.run_id)
    val_ends = run.data.tags.get(FOLDS_TAG, "")
    theirs = logged_recipe(store, run) if val_ends else None
    if theirs is None or recipe.differences(theirs):
        return ()
    kept = []
    for number, val_end in enumerate(val_ends.split(",")):
        artifact = _fold_artifact(number)
        data = _verified(store, run, artifact, f"{FOLD_SIGNATURE_TAG}{number}", key)
        if data is not None:
            kept.append(FoldFit(_unpickled(data, run.info.run_id, artifact), pd.Timestamp(val_end)))
    return tuple(kept)


@dataclass(frozen=True)
class EvaluationFit:
    """A version's evaluation fit and the last date it saw out of sample."""

    forecaster: ServedForecaster
    val_end: pd.Timestamp


def _verified(store: MlflowStore, run, artifact: str, tag: str, key: str | None) -> bytes | None:
    """A pickled artifact of ``run`` (None if absent), checked against its signature first."""
    data = store.run_artifact(run, artifact)
    if data is not None and key and not hmac.compare_digest(run.data.tags.get(tag, ""),
                                                            sign_bytes(data, key)):
        raise RegistryError(
            f"the evaluation fit of run {run.info.run_id} is not signed with this deployment's "
            "STOCKCAST_MODEL_KEY: refusing to unpickle it, nothing was promoted")
    return data


def load_evaluation_fit(store: MlflowStore, run_id: str, key: str | None,
                        run=None) -> EvaluationFit | None:
    """The evaluation fit logged with ``run_id`` (``run``: its record, if already read); None
    for runs of an older stockcast. With a key, RegistryError unless its signature matches
    (checked before unpickling)."""
    run = run or store.client.get_run(run_id)
    val_end = run.data.tags.get(VAL_END_TAG)
    if val_end is None:
        return None
    data = _verified(store, run, ARTIFACT, SIGNATURE_TAG, key)
    if data is None:
        return None
    return EvaluationFit(_unpickled(data, run.info.run_id, ARTIFACT), pd.Timestamp(val_end))


def load_evaluation_lstm(store: MlflowStore, run, key: str | None) -> Forecaster | None:
    """The LSTM a run's evaluation fit trained: its evaluation fit itself, or the network kept
    beside the baseline it served; None for older runs. Verified like the evaluation fit."""
    fit = load_evaluation_fit(store, run.info.run_id, key, run)
    if fit is None or fit.forecaster.network is not None:
        return None if fit is None else fit.forecaster.network
    data = _verified(store, run, LSTM_ARTIFACT, LSTM_SIGNATURE_TAG, key)
    return None if data is None else _unpickled(data, run.info.run_id, LSTM_ARTIFACT)


def _unpickled(data: bytes, run_id: str, artifact: str):
    """The object in a (verified or unsigned) pickle; RegistryError naming the run and the file
    when it does not load (truncated, corrupt, made by an incompatible stockcast)."""
    try:
        return pickle.loads(data)
    except Exception as exc:  # any unpickling failure is the artifact's, not the caller's
        raise RegistryError(f"{artifact} of run {run_id} cannot be loaded "
                            f"({type(exc).__name__}: {exc})"[:400]) from exc


def rescore(fit: EvaluationFit, frame: pd.DataFrame, origins: np.ndarray) -> pd.DataFrame:
    """The fit's forecast table at those of ``origins`` (rows of ``frame``) whose targets all
    lie after its validation end: out of sample for it, whatever its age."""
    frame = frame.reset_index(drop=True)
    dates = pd.to_datetime(frame["Date"])
    origins = np.asarray(origins, dtype=np.int64)
    h = fit.forecaster.horizon
    keep = origins[(dates.iloc[origins].to_numpy() >= np.datetime64(fit.val_end))
                   & (origins + h < len(frame))]
    forecast = fit.forecaster.forecast_at(frame, keep)
    close = frame["Close"].to_numpy(dtype=np.float64)
    actual = (np.stack([close[keep + k] for k in range(1, h + 1)], axis=1) if len(keep)
              else np.empty((0, h)))
    return forecast_table(dates, keep, forecast, actual)


def logged_recipe(store: MlflowStore, run: str | Run) -> Recipe | None:
    """The configuration a run (its id or record) was trained with (its logged
    ``config/config.yaml``), as the walk-forward folds fit it; None when it is missing or no
    longer reads as a configuration (a run of an older stockcast)."""
    data = store.run_artifact(run, CONFIG_ARTIFACT)
    if data is None:
        return None
    try:
        return Recipe.of(PipelineConfig.model_validate(yaml.safe_load(data)))
    except (ValidationError, yaml.YAMLError, TypeError):
        return None
