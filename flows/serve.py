"""One-process scheduling for a single laptop: serve both flows on the prefect.yaml schedules.

`make serve` runs this; stop it with Ctrl-C (its schedules pause when it exits).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect import serve

from flows.forecast import forecast_pipeline
from flows.train import train_pipeline


def _schedule(name: str) -> dict:
    spec = yaml.safe_load((Path(__file__).resolve().parent.parent / "prefect.yaml").read_text())
    deployment = next(d for d in spec["deployments"] if d["name"] == name)
    return deployment["schedules"][0]


def main() -> None:
    """Serve `nightly-retrain` and `daily-forecast` with the same cron and timezone."""
    train = _schedule("nightly-retrain")
    forecast = _schedule("daily-forecast")
    serve(
        train_pipeline.to_deployment(name="nightly-retrain", cron=train["cron"],
                                     timezone=train["timezone"]),
        forecast_pipeline.to_deployment(name="daily-forecast", cron=forecast["cron"],
                                        timezone=forecast["timezone"]),
    )


if __name__ == "__main__":
    main()
