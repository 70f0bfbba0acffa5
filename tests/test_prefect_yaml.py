"""prefect.yaml and `make serve` agree: same flows, same cron, same timezone."""

import importlib
from pathlib import Path

import pytest
import yaml

from flows.serve import deployments, schedule_of

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


def test_serve_follows_the_schedules_the_file_gives(tmp_path):
    """`make serve` reads its schedules from prefect.yaml: a changed file changes them."""
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    for d in spec["deployments"]:
        d["schedules"] = [{"cron": "7 21 * * 1-5" if d["name"] == "nightly-retrain"
                           else "9 22 * * 1-5", "timezone": "Europe/London"}]
    edited = tmp_path / "prefect.yaml"
    edited.write_text(yaml.safe_dump(spec))
    served = {d.name: d for d in deployments(edited)}
    assert served["nightly-retrain"].schedules[0].schedule.cron == "7 21 * * 1-5"
    assert served["daily-forecast"].schedules[0].schedule.cron == "9 22 * * 1-5"
    assert {d.schedules[0].schedule.timezone for d in served.values()} == {"Europe/London"}


def test_served_deployments_run_the_flows_prefect_yaml_names():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    served = {d.name: d for d in deployments()}
    assert set(served) == {d["name"] for d in spec["deployments"]}
    for d in spec["deployments"]:
        path, func = d["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert served[d["name"]].flow_name == getattr(module, func).name


def test_a_missing_deployment_is_named(tmp_path):
    empty = tmp_path / "prefect.yaml"
    empty.write_text("deployments: []\n")
    with pytest.raises(ValueError, match="nightly-retrain"):
        schedule_of("nightly-retrain", empty)
