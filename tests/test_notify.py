"""The failure notification: a run from a deployment is told where to change its settings."""

from types import SimpleNamespace

from flows import notify


def _fail(monkeypatch, deployment_id):
    sent = []
    monkeypatch.setattr(notify, "notify_url", lambda parameters: "json://localhost/hook")
    monkeypatch.setattr(notify, "send", lambda url, title, body, failure=True: sent.append(body))
    flow = SimpleNamespace(name="train-pipeline")
    run = SimpleNamespace(name="brave-fox", id="1234", parameters={},
                          deployment_id=deployment_id)
    state = SimpleNamespace(name="Failed", message="GOOG: ... Use --source yfinance (online)")
    notify.notify_failure(flow, run, state)
    return sent[0]


def test_a_deployments_failure_names_the_settings_to_change_not_cli_flags(monkeypatch):
    body = _fail(monkeypatch, deployment_id="dep-1")
    assert "Use --source yfinance" in body
    assert "parameters in prefect.yaml (config: data.source" in body and "make deploy" in body


def test_a_command_line_failure_keeps_its_cli_remedy_alone(monkeypatch):
    assert "prefect.yaml" not in _fail(monkeypatch, deployment_id=None)
