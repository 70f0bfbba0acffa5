"""A promotion decision and its record on the version: the ``promotion.*`` tags and a
description that says it in its first 40 characters (what the registry's list shows)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from mlflow.tracking import MlflowClient

from stockcast.evaluation.significance import TEST_NAME


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
    folds: int = 1  # the out-of-sample spans pooled (earlier walk-forward folds and tonight's)


def record_decision(client: MlflowClient, name: str, version: str, decision: Decision,
                    by: str = "pipeline", serves: str = "", why: str = "") -> None:
    """Audit trail: the test, the loss, both losses, the pairs, the p-value and the reason as
    ``promotion.*`` tags, and the reason in the version's description (the registry list
    truncates tags), which names first the volatility model the version serves (``serves``:
    its ``forecaster`` tag) and ends with why it is served (``why``)."""
    tags = {f"promotion.{k}": "n/a" if v is None else str(v) for k, v in asdict(decision).items()}
    tags["promotion.decided_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    tags["promotion.decided_by"] = by
    # The public call checks once that the name is a model, not a prompt; the tags then go
    # through the registry client behind MlflowClient.set_model_version_tag, which would
    # re-read the whole registered model (every version) for each of the ~18 tags.
    reason = f" · serves: {why}" if why else ""
    client.update_model_version(name, version, description=f"{headline(decision, by, serves)} · "
                                f"{decision.reason} (decided by {by}){reason}")
    registry = client._get_registry_client()  # MLflow is pinned; the promotion tests read these
    for key, value in tags.items():
        registry.set_model_version_tag(name, version, key, value)


def headline(decision: Decision, by: str = "pipeline", serves: str = "") -> str:
    """The decision in a few words, first in the version's description (the registry's
    version list shows about 40 characters of it): ``CHAMPION: -6.1 % vs v3, p 0.004``,
    ``v3 stays champion: -0.8 %, p 0.310``, ``no champion: sanity gate refused``; with a
    volatility model served, its name first: ``CHAMPION (serves HAR): first version``,
    ``(serves HAR) v3 stays champion: ...``."""
    label = ""
    if serves and serves != "lstm":  # the served volatility model in a few letters
        from stockcast.modeling.volatility_forecasters import BY_TAG  # (a rollback needs none)

        label = f"serves {BY_TAG[serves].short if serves in BY_TAG else serves}"
    previous = decision.champion_version
    change = ""
    if decision.candidate_loss is not None and decision.champion_loss:
        change = f"{100 * (decision.candidate_loss / decision.champion_loss - 1):+.1f} %"
    if decision.promote:
        head = f"CHAMPION ({label})" if label else "CHAMPION"
        if by == "manual":
            return f"{head} by hand" + (f" (was v{previous})" if previous else "")
        if decision.pvalue is not None:
            return f"{head}: {change} vs v{previous}, p {_p(decision.pvalue)}"
        return f"{head}: replaces v{previous}" if previous else f"{head}: first version"
    kept = f"v{previous} stays champion" if previous else "no champion"
    kept = f"({label}) {kept}" if label else kept
    if decision.reason.startswith("refused by the sanity gate"):
        return f"{kept}: sanity gate refused"
    if decision.pvalue is not None:
        return f"{kept}: {change}, p {_p(decision.pvalue)}"
    return f"{kept}: refused"


def _p(pvalue: float) -> str:
    return f"{pvalue:.3f}" if pvalue >= 0.001 else f"{pvalue:.0e}"
