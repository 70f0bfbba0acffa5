"""Per-stage timing: one `make run-flow` (GOOG, defaults) through Prefect, the second of two
runs once Prefect's server is up, against the same fits outside Prefect."""

from __future__ import annotations

import os
import tempfile
import time

from stockcast.config import PipelineConfig
from stockcast.data.files import read_price_file


def _standalone_fits(cfg: PipelineConfig) -> dict:
    """The flow's two fits of GOOG outside Prefect, with the thread count the flow gives one
    ticker: the reference the in-flow fits are held to."""
    from stockcast.data.files import sample_path
    from stockcast.data.schemas import validate_prices
    from stockcast.data.sources import PriceData
    from stockcast.modeling.recipe import fit_and_calibrate, fit_for_serving
    from stockcast.runtime import ORCHESTRATION_CORES, threads_per_training

    cfg = threads_per_training(cfg, ORCHESTRATION_CORES)
    prices = PriceData("GOOG", read_price_file(sample_path("GOOG")), "sample", "sample")
    frame = validate_prices(prices, cfg.window, cfg.validation).frame
    t0 = time.perf_counter()
    fit = fit_and_calibrate(frame, cfg.window, cfg.model, cfg.train)
    t1 = time.perf_counter()
    fit_for_serving(fit, cfg.model, cfg.train)
    return {"fit": t1 - t0, "refit": time.perf_counter() - t1}


def _flow_and_task_runs(flow_run_id):
    """The flow run and its task runs, read back from Prefect's API."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as client:
            flow_run = await client.read_flow_run(flow_run_id)
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[flow_run_id])))
            return flow_run, runs

    return asyncio.run(read())


def bench_stages() -> dict:
    """Two flow runs on GOOG (sample): the first starts Prefect's server; time the second."""
    from flows.train import train_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STOCKCAST_HOME"] = tmp
        # Cold fits in both runs (no warm start from the first run's champion): the second
        # run's fits are then the same work as the stand-alone ones.
        cfg = PipelineConfig.model_validate({"data": {"source": "sample"}, "train": {
            "progress": False, "warm_start_epochs": 0}})
        before = _standalone_fits(cfg)  # before Prefect's server exists, and again after
        t0 = time.perf_counter()
        train_pipeline(config=cfg)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        state = train_pipeline(config=cfg, return_state=True)
        second = time.perf_counter() - t0
        flow_run, runs = _flow_and_task_runs(state.state_details.flow_run_id)
        after = _standalone_fits(cfg)
        standalone = {k: min(before[k], after[k]) for k in before}
    stages = {r.name.rsplit("-", 1)[0]: r.total_run_time.total_seconds() for r in runs}
    stage_total = sum(stages.values())
    flow_seconds = flow_run.total_run_time.total_seconds()
    in_flow = stages.get("fit", 0.0) + stages.get("refit", 0.0)
    return {
        "standalone_fit_s (same data, config and threads, no Prefect)": standalone["fit"],
        "standalone_refit_s": standalone["refit"],
        "in_flow_over_standalone (fit + refit)": in_flow / (standalone["fit"]
                                                          + standalone["refit"]),
        "first_run_wall_s (starts the Prefect server, creates the MLflow DB)": first,
        "second_run_wall_s": second,
        "flow_run_s": flow_seconds,
        "stages_s": stages,
        "orchestration_overhead_s": flow_seconds - stage_total,
        # Training = the evaluation fit and the serving refit.
        "non_training_s": second - stages.get("fit", 0.0) - stages.get("refit", 0.0),
    }


def markdown(st: dict) -> list[str]:
    lines = ["**One `make run-flow`** (GOOG, defaults; the second of two runs, once "
             "Prefect's server is up):", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| task `{k}` | {v:.2f} |"
              for k, v in sorted(st["stages_s"].items(), key=lambda kv: -kv[1])]
    lines += [f"| whole flow run | {st['flow_run_s']:.2f} |",
              f"| everything but training (wall - train - refit) | {st['non_training_s']:.2f} |",
              f"| first run, starting Prefect's temporary server | "
              f"{st['first_run_wall_s (starts the Prefect server, creates the MLflow DB)']:.2f} |",
              ""]
    return lines
