"""Manual promotion or rollback (`stockcast promote`): the `champion` alias moved by hand under
the model's promotion lock, and recorded on the version like the pipeline's decisions. Kept
apart from the pipeline's promotion (``promotion.py``), which re-scores fits with torch, so
that an operator's rollback imports only MLflow and the registry's own modules."""

from __future__ import annotations

from mlflow.exceptions import MlflowException

from stockcast.errors import RegistryError
from stockcast.registry.decision_record import Decision, record_decision
from stockcast.registry.retries import is_transient
from stockcast.registry.store import MlflowStore
from stockcast.registry.versions import CHAMPION, champion_version


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
        # The description names a served volatility model first, as the pipeline's does (the
        # registry's list shows its first 40 characters); naming it imports the forecasters.
        served = mv.tags.get("forecaster", "lstm")
        baseline = served != "lstm"
        record_decision(client, name, version, decision, by="manual",
                        serves=served if baseline else "",
                        why=mv.tags.get("forecaster.reason", "") if baseline else "")
        return decision

    return store.call("manual promotion", attempt)
