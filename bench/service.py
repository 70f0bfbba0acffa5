"""The REST service under load, as a desk runs it: `stockcast serve-model` on the default GOOG
champion (trained here from the bundled sample in a temporary home), HTTP clients on the same
machine posting 120-row requests for a fixed time, every tenth one malformed (a negative
close: it must get 400). Per number of concurrent clients: valid requests answered and
failed, malformed ones refused, requests per second, and the valid requests' latency
percentiles. Then where one request's time goes, in process: reading and validating the rows
(the pipeline's schema), the adaptive bands, and the network's forecast alone."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from stockcast.data.files import read_price_file, sample_path

ROWS = 120
CLIENTS = (1, 8, 32)
SECONDS = 30.0
BIN = Path(sys.executable).parent


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL",
                                                            "MLFLOW_TRACKING_URI")}
    return {**env, "STOCKCAST_HOME": str(home), "PATH": f"{BIN}:{env.get('PATH', '')}"}


def train_champion(home: Path) -> None:
    """The default GOOG champion from the bundled sample (`stockcast run`)."""
    subprocess.run([str(BIN / "stockcast"), "run", "--ticker", "GOOG", "--source", "sample"],
                   cwd=home, env=_env(home), check=True, stdout=subprocess.DEVNULL)


def start_service(home: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(BIN / "stockcast"), "serve-model", "--ticker", "GOOG",
                             "--port", str(port)], cwd=home, env=_env(home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    import requests

    for _ in range(240):
        try:
            if requests.get(f"{url}/ping", timeout=1).ok:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the service did not answer /ping within 2 minutes")


def bodies() -> tuple[bytes, bytes]:
    """A valid 120-row request and a malformed one (the last close negative)."""
    frame = read_price_file(sample_path("GOOG")).tail(ROWS).reset_index(drop=True)
    bad = frame.copy()
    bad.loc[len(bad) - 1, "Close"] = -1.0

    def body(f) -> bytes:
        split = json.loads(f.to_json(orient="split", index=False, date_format="iso"))
        return json.dumps({"dataframe_split": split}).encode()

    return body(frame), body(bad)


def load(url: str, clients: int, seconds: float, good: bytes, bad: bytes,
         valid: int | None = None) -> dict:
    """``clients`` threads posting for ``seconds`` (or until ``valid`` valid requests were
    sent); every tenth request of each is malformed."""
    import requests

    lock, latencies = threading.Lock(), []
    counts = {"answered": 0, "failed": 0, "refused": 0, "malformed_accepted": 0}
    stop = time.monotonic() + seconds

    def more() -> bool:
        with lock:
            sent = counts["answered"] + counts["failed"]
        return time.monotonic() < stop and (valid is None or sent < valid)

    def client() -> None:
        session, i = requests.Session(), 0
        while more():
            malformed = i % 10 == 9
            i += 1
            start = time.perf_counter()
            try:
                answer = session.post(f"{url}/invocations", data=bad if malformed else good,
                                      headers={"Content-Type": "application/json"}, timeout=60)
                status = answer.status_code
            except requests.RequestException:
                status = 0
            took = time.perf_counter() - start
            with lock:
                if malformed:
                    counts["refused" if status == 400 else "malformed_accepted"] += 1
                elif status == 200:
                    counts["answered"] += 1
                    latencies.append(took)
                else:
                    counts["failed"] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - began
    ms = 1000 * np.array(latencies) if latencies else np.array([np.nan])
    return {**counts, "clients": clients, "seconds": wall,
            "valid_per_s": counts["answered"] / wall,
            "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99))}


def profile(home: Path, repeats: int = 50) -> dict:
    """Median milliseconds of one request's parts, in this process, one thread."""
    import mlflow

    from stockcast.modeling.adaptive import adapted_forecast

    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/stockcast-GOOG@champion")
    served = model.unwrap_python_model()
    frame = read_price_file(sample_path("GOOG")).tail(ROWS).reset_index(drop=True)
    clean = served._clean(frame)
    origin = np.array([len(clean) - 1])
    parts = {
        "whole request (pyfunc predict)": lambda: model.predict(frame),
        "reading and validating the rows": lambda: served._clean(frame),
        "adaptive bands (re-scoring the past days)": lambda: adapted_forecast(
            served.forecaster, clean, origin, served.adaptation),
        "the forecast alone (static bands)": lambda: served.forecaster.forecast_at(clean, origin),
    }
    out = {}
    for name, call in parts.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        out[name] = 1000 * float(np.median(times))
    return out


@contextlib.contextmanager
def served_default_champion() -> Iterator[tuple[Path, str]]:
    """A temporary home with the default GOOG champion and its service running: (home, URL)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        train_champion(home)
        proc, url = start_service(home)
        try:
            yield home, url
        finally:
            proc.terminate()
            proc.wait(30)


def bench_service(clients: tuple[int, ...] = CLIENTS, seconds: float = SECONDS) -> dict:
    good, bad = bodies()
    with served_default_champion() as (home, url):
        load(url, 2, 5.0, good, bad)  # warm-up
        runs = [load(url, n, seconds, good, bad) for n in clients]
        return {"runs": runs, "profile": profile(home), "rows": ROWS}


def markdown(result: dict) -> list[str]:
    lines = [f"**The REST service under load** ({result['rows']}-row requests, every tenth "
             "malformed; valid requests only in the rate and latencies):", "",
             "| clients | valid answered | valid failed | malformed refused (400) | malformed "
             "accepted | valid requests/s | p50 ms | p95 ms | p99 ms |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["runs"]:
        lines.append(f"| {r['clients']} | {r['answered']} | {r['failed']} | {r['refused']} | "
                     f"{r['malformed_accepted']} | {r['valid_per_s']:.1f} | {r['p50_ms']:.0f} | "
                     f"{r['p95_ms']:.0f} | {r['p99_ms']:.0f} |")
    lines += ["", "| one request, in process (median of 50) | ms |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in result["profile"].items()]
    return lines + [""]


def soak(clients: int = 32, valid: int = 10_000) -> dict:
    """The issue's soak: ``valid`` valid requests from ``clients`` clients (10 % malformed
    mixed in), on the default champion; at this service's rate, about 20 minutes."""
    good, bad = bodies()
    with served_default_champion() as (_, url):
        return load(url, clients, 24 * 3600.0, good, bad, valid=valid)


if __name__ == "__main__":
    if sys.argv[1:2] == ["soak"]:
        print(soak())
    else:
        print("\n".join(markdown(bench_service())))
