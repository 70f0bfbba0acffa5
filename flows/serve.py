"""One-process scheduling for a single laptop: serve both flows on the prefect.yaml schedules.

`make serve` runs this; stop it with Ctrl-C (its schedules pause when it exits).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect import serve
from prefect.schedules import Cron

from flows.forecast import forecast_pipeline
from flows.train import train_pipeline

PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"


def schedule_of(name: str) -> Cron:
    """The cron schedule (with its timezone) that prefect.yaml gives deployment ``name``."""
    spec = yaml.safe_load(PREFECT_YAML.read_text())
    deployment = next(d for d in spec["deployments"] if d["name"] == name)
    entry = deployment["schedules"][0]
    return Cron(entry["cron"], timezone=entry["timezone"])


def deployments() -> list:
    """`nightly-retrain` and `daily-forecast`, with the same schedules as prefect.yaml."""
    return [
        train_pipeline.to_deployment(name="nightly-retrain",
                                     schedule=schedule_of("nightly-retrain")),
        forecast_pipeline.to_deployment(name="daily-forecast",
                                        schedule=schedule_of("daily-forecast")),
    ]


def main() -> None:
    """Serve both deployments until interrupted."""
    serve(*deployments())


if __name__ == "__main__":
    main()
