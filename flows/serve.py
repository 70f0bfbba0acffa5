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


def schedule_of(name: str, spec_path: Path = PREFECT_YAML) -> Cron:
    """The cron schedule (with its timezone) that prefect.yaml gives deployment ``name``."""
    spec = yaml.safe_load(Path(spec_path).read_text())
    found = [d for d in spec.get("deployments") or [] if d.get("name") == name]
    if not found or not found[0].get("schedules"):
        raise ValueError(f"{spec_path} has no deployment {name!r} with a schedule; "
                         "`make serve` serves the schedules prefect.yaml defines")
    entry = found[0]["schedules"][0]
    return Cron(entry["cron"], timezone=entry.get("timezone", "UTC"))


def deployments(spec_path: Path = PREFECT_YAML) -> list:
    """`nightly-retrain` and `daily-forecast`, with the schedules ``spec_path`` gives them."""
    return [
        train_pipeline.to_deployment(name="nightly-retrain",
                                     schedule=schedule_of("nightly-retrain", spec_path)),
        forecast_pipeline.to_deployment(name="daily-forecast",
                                        schedule=schedule_of("daily-forecast", spec_path)),
    ]


def main() -> None:
    """Serve both deployments until interrupted."""
    serve(*deployments())


if __name__ == "__main__":
    main()
