"""Nightly warm start: tonight's data differ from last night's by a day, so tonight's
evaluation fit starts from the champion's evaluation-fit network when the window and model
settings match, instead of from scratch (from the latest version's while there is no
champion, and from the network a champion trained even when it serves a volatility model).

The champion's *evaluation* fit, never its served refit: the evaluation fit's weights saw only
rows before its validation end, which lies before tonight's test span, so tonight's test
metrics and the promotion test stay out of sample. (The served refit has seen tonight's test
span.) With a model key the fit is loaded only when its signature matches.
"""

from __future__ import annotations

import logging

from stockcast.config import PipelineConfig
from stockcast.errors import RegistryError
from stockcast.modeling.recipe import WarmStart
from stockcast.registry.evaluation_fit import load_evaluation_lstm
from stockcast.registry.store import MlflowStore
from stockcast.registry.versions import champion_record, latest_version

log = logging.getLogger(__name__)

# What must match for the weights to mean the same thing: the inputs, their windows and
# scaling, the target and the network's shape.
MATCHED = ("window.", "model.")


def settings(params: dict[str, object]) -> dict[str, str]:
    """The matched settings of flattened config ``params``, as MLflow stores params (text)."""
    return {k: "" if v is None else str(v) for k, v in params.items() if k.startswith(MATCHED)}


def champion_start(name: str, cfg: PipelineConfig, store: MlflowStore,
                   key: str | None = None) -> WarmStart:
    """Where tonight's fit of ``name`` starts: the network the champion's evaluation fit
    trained (kept even when it serves a volatility model), or, with no champion yet (a first
    version the gate refused), the latest version's; scratch with the reason otherwise (other
    settings, an older run, an unsigned fit, ``train.warm_start_epochs: 0``)."""
    if cfg.train.warm_start_epochs == 0:
        return WarmStart(None, "scratch: train.warm_start_epochs is 0")
    if cfg.model.scope != "ticker":
        return WarmStart(None, "scratch: a global model is trained on every series at once")
    store.open()
    record = store.call("registry read", lambda: champion_record(store.client, name))
    if record is not None:
        label, why = f"champion v{record.version}", ""
    else:
        record = store.call("registry read", lambda: latest_version(store.client, name))
        if record is None:
            return WarmStart(None, "scratch: no version yet")
        label, why = f"v{record.version}", "; the latest version, no champion yet"
    run = store.call("run read", lambda: store.client.get_run(record.run_id))
    theirs, ours = settings(run.data.params), settings(cfg.flat())
    differ = sorted(k for k in ours if theirs.get(k) != ours[k])
    if differ:
        changes = ", ".join(f"{k} {theirs.get(k, '?')} -> {ours[k]}" for k in differ[:3])
        return WarmStart(None, f"scratch: {label}'s settings differ ({changes}"
                               f"{', ...' if len(differ) > 3 else ''}{why})")
    try:
        network = load_evaluation_lstm(store, run, key)  # the run read once
    except RegistryError as exc:
        return WarmStart(None, f"scratch: {label}: {exc}")
    if network is None:
        return WarmStart(None, f"scratch: {label} has no evaluation-fit network (an older "
                               "stockcast)")
    return WarmStart(network.model, f"{label} (run {record.run_id[:8]}{why})")
