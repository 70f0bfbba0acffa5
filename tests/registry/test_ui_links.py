"""The MLflow UI opens stockcast's experiments on the runs table, not the GenAI overview."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs

import mlflow
import pytest
import requests

from stockcast.registry.store import MlflowStore
from stockcast.registry.ui_links import WORKFLOW_QUERY, experiment_url, model_url, ui_links


def test_the_bundled_ui_still_reads_the_setting_the_links_carry():
    """MLflow 3.17's UI takes the workflow type from the `workflowType` query parameter
    before the browser's stored preference (genai in a fresh browser). If an MLflow upgrade
    drops that, the links below stop working: this fails first."""
    bundle = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"
    code = "".join(p.read_text(errors="replace") for p in bundle.glob("main.*.js"))
    assert 'get("workflowType")' in code and '"mlflow.workflowType"' in code
    # What the links carry is the value the bundle calls its machine-learning workflow.
    for link in (experiment_url("http://h/", "7"), model_url("http://h/", "stockcast-GOOG")):
        (value,) = parse_qs(link.split("?", 1)[1])["workflowType"]
        assert f'MACHINE_LEARNING="{value}"' in code


def test_links_name_each_experiment_and_model(tracking_uri):
    store = MlflowStore(tracking_uri, "stockcast")
    exp_id = store.experiment_id()
    lines = ui_links(tracking_uri, "http://127.0.0.1:5000/")
    assert f"  stockcast: http://127.0.0.1:5000/#/experiments/{exp_id}/runs?{WORKFLOW_QUERY}" in lines
    assert ui_links(tracking_uri.replace("mlflow.db", "empty.db"), "http://h:1")[0].startswith(
        "no stockcast runs yet")


def test_a_served_mlflow_is_its_own_ui_and_a_file_store_needs_the_address(capsys,
                                                                          monkeypatch):
    from stockcast.registry import ui_links as module

    asked = []
    monkeypatch.setattr(module, "ui_links", lambda uri, base: asked.append((uri, base)) or [])
    assert module.main(["http://mlflow:5000"]) == 0
    assert module.main(["sqlite:///x.db", "http://127.0.0.1:5000"]) == 0
    assert asked == [("http://mlflow:5000", "http://mlflow:5000"),
                     ("sqlite:///x.db", "http://127.0.0.1:5000")]
    assert module.main(["sqlite:///x.db"]) == 2 and "UI_URL" in capsys.readouterr().err


def _text(html: str) -> str:
    html = re.sub(r"<script.*?</script>|<style.*?</style>", "", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="no headless Chromium on this machine (apt-get install chromium)")
def test_a_fresh_browser_opens_the_link_on_the_runs_table(tracking_uri, tmp_path):
    store = MlflowStore(tracking_uri, "stockcast")
    exp_id = store.experiment_id()
    store.log_run("test", "GOOG defaults · 2026-12-01 07:30:00", lambda run_id: run_id)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mlflow_bin = os.path.join(os.path.dirname(sys.executable), "mlflow")
    ui = subprocess.Popen([mlflow_bin, "ui", "--backend-store-uri", tracking_uri, "--host",
                           "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True, cwd=tmp_path,
                          env=dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if requests.get(base, timeout=5).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.5)
        browser = shutil.which("chromium") or shutil.which("chromium-browser")

        def page(url: str) -> str:  # a fresh profile each time: nothing stored
            profile = tmp_path / f"profile-{time.monotonic_ns()}"
            out = subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu",
                                  f"--user-data-dir={profile}", "--virtual-time-budget=10000",
                                  "--dump-dom", url], capture_output=True, text=True,
                                 timeout=120)
            return _text(out.stdout)

        with ThreadPoolExecutor(2) as pool:  # two fresh browsers at once
            linked, plain = pool.map(page, [experiment_url(base, exp_id),
                                            f"{base}/#/experiments/{exp_id}"])
        assert "Run Name" in linked and "GOOG defaults" in linked, linked[:500]
        # ... and the plain URL does not: why the links carry the parameter
        assert "Run Name" not in plain, plain[:500]
    finally:
        os.killpg(ui.pid, 15)
        ui.wait(30)
