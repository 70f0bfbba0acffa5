"""prefect.yaml and `make serve` agree: same flows, same cron, same timezone."""

from pathlib import Path

import yaml

from flows.serve import deployments

ROOT = Path(__file__).resolve().parents[1]


def test_deployments_point_at_real_flows_on_weekday_evenings():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    by_name = {d["name"]: d for d in spec["deployments"]}
    assert set(by_name) == {"nightly-retrain", "daily-forecast"}
    for d in by_name.values():
        path, func = d["entrypoint"].split(":")
        assert f"def {func}(" in (ROOT / path).read_text()
        (schedule,) = d["schedules"]
        assert schedule["timezone"] == "America/New_York"
        minute, hour, _, _, weekdays = schedule["cron"].split()
        assert weekdays == "1-5" and int(hour) >= 16  # after the 16:00 close
        assert d["work_pool"]["name"] == "stockcast-pool"
    # the forecast runs after the retraining
    assert int(by_name["daily-forecast"]["schedules"][0]["cron"].split()[1]) > int(
        by_name["nightly-retrain"]["schedules"][0]["cron"].split()[1])


def test_serve_uses_the_same_schedules():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    crons = {d["name"]: d["schedules"][0]["cron"] for d in spec["deployments"]}
    served = {d.name: d.schedules for d in deployments()}
    assert set(served) == set(crons)
    for name, schedules in served.items():
        (sched,) = schedules
        assert sched.schedule.cron == crons[name]
        assert sched.schedule.timezone == "America/New_York"
