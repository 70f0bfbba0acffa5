"""Telling someone when a run fails: a flow state hook that sends the failure through an
Apprise URL (Slack, e-mail, Teams, a generic JSON webhook ``json://host:port/path`` ...).

The URL comes from ``notify.url`` in the run's config or, at the edge, the
``STOCKCAST_NOTIFY_URL`` environment variable of the process that runs the flow (a worker,
``make serve`` or the CLI). With a Prefect server, an automation on "flow run Failed/Crashed"
with a notification block works too, without this hook."""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger("stockcast.notify")


def configured_url(url: str | None) -> str | None:
    """``notify.url`` if set, else $STOCKCAST_NOTIFY_URL of this process, else None."""
    return url or os.environ.get("STOCKCAST_NOTIFY_URL") or None


def notify_url(parameters: dict[str, Any]) -> str | None:
    """The notification URL of a flow run from its parameters (a failure hook sees only
    those: the ``config`` parameter, as a PipelineConfig or as the JSON a deployment sent)."""
    config = parameters.get("config") or {}
    if hasattr(config, "model_dump"):
        config = config.model_dump(mode="json")
    url = (config.get("notify") or {}).get("url") if isinstance(config, dict) else None
    return configured_url(url)


def send(url: str, title: str, body: str, failure: bool = True) -> bool:
    """Send one notification through Apprise; False (and a log line) when it could not."""
    import apprise

    client = apprise.Apprise()
    if not client.add(url):
        log.error("notification URL is not understood by Apprise (check notify.url)")
        return False
    # Apprise's type sets the colour and icon a receiver shows: a failure or drift is not "info".
    kind = apprise.NotifyType.FAILURE if failure else apprise.NotifyType.INFO
    ok = bool(client.notify(title=title, body=body, notify_type=kind))
    if not ok:
        log.error("the failure notification could not be delivered")
    return ok


def notify_failure(flow, flow_run, state) -> None:
    """Prefect on_failure / on_crashed hook: report the failed run and why."""
    url = notify_url(dict(flow_run.parameters or {}))
    if not url:
        return
    title = f"stockcast: {flow.name} run {flow_run.name} {state.name}"
    body = (f"Flow run {flow_run.name} ({flow_run.id}) ended {state.name}.\n"
            f"{state.message or ''}\n"
            "Open the flow run in the Prefect UI for its logs and the train-summary artifact; "
            "nothing that was good was lost (see the README's 'Operating it').")
    if getattr(flow_run, "deployment_id", None) is not None:
        body += DEPLOYMENT_REMEDY
    send(url, title, body)


# Error messages name CLI options; a deployment is changed in prefect.yaml instead.
DEPLOYMENT_REMEDY = (
    "\nThis run came from a deployment: where the message names a command-line option "
    "(--source, --csv, --start, --ticker), set the matching key under the deployment's "
    "parameters in prefect.yaml (config: data.source, data.csv_path, data.start; tickers) "
    "and run `make deploy` again.")
