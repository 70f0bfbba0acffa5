"""`make bench`: trainer throughput against the common DataLoader way, time to quality against
the seed configuration, and a per-stage timing breakdown of one pipeline run.

Everything on the bundled GOOG sample, 70/15/15. Contenders alternate within each repeat so
machine noise hits both; medians are reported. Prints a table and writes bench/results/bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from drift import markdown as drift_markdown
from intervals import (
    bench_global,
    bench_intervals,  # noqa: I001 (bench/ is on sys.path when run as a script)
    global_markdown,
)
from intervals import markdown as intervals_markdown
from portfolio import bench_portfolio
from portfolio import markdown as portfolio_markdown
from promotion import markdown as promotion_markdown
from promotion import seed_spread
from refit import bench_refit
from refit import markdown as refit_markdown
from served import bench_served
from served import markdown as served_markdown
from service import bench_service
from service import markdown as service_markdown
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from walk_forward import bench_walk_forward
from walk_forward import markdown as walk_forward_markdown
from warm_start import bench_warm_start
from warm_start import markdown as warm_start_markdown

from stockcast.config import ModelConfig, PipelineConfig, TrainConfig, WindowConfig
from stockcast.data.files import read_price_file, sample_path
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import PriceData
from stockcast.evaluation.point_metrics import score_forecasts
from stockcast.modeling.device import amp_dtype_for
from stockcast.modeling.recipe import fit_and_calibrate
from stockcast.modeling.windows import prepare_windows
from stockcast.serving.drift_simulation import simulate

RESULTS = Path(__file__).resolve().parent / "results"
SEED_MODEL = ModelConfig(hidden_size=50, num_layers=2, target="price")
SEED_WINDOW = WindowConfig(scaler="minmax", features=("Close",))  # the tutorials: the close only


# ---------------------------------------------------------------- the reference, the common way


def reference_windows(values: np.ndarray, seq: int) -> tuple[np.ndarray, np.ndarray]:
    """Python-loop window building, as the seed notebooks do it."""
    xs, ys = [], []
    for i in range(seq, len(values)):
        xs.append(values[i - seq:i])
        ys.append(values[i])
    return np.array(xs, dtype=np.float32)[..., None], np.array(ys, dtype=np.float32)[:, None]


class TutorialLSTM(nn.Module):
    """The seed notebooks' network: 2 x 50 LSTM, a linear head on the last step, one output."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, 50, num_layers=2, batch_first=True)
        self.head = nn.Linear(50, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][:, -1, :])  # [B, T, 1] -> [B, 1]


def reference_train(x_train, y_train, x_val, y_val, epochs: int, batch: int = 32, seed: int = 0):
    """Dataset + DataLoader(batch 32, shuffle) + per-epoch validation: the common loop."""
    torch.manual_seed(seed)
    model = TutorialLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    train_dl = DataLoader(TensorDataset(torch.tensor(x_train), torch.tensor(y_train)),
                          batch_size=batch, shuffle=True)
    val_dl = DataLoader(TensorDataset(torch.tensor(x_val), torch.tensor(y_val)), batch_size=batch)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for xb, yb in train_dl:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            sum(loss_fn(model(xb), yb).item() for xb, yb in val_dl)
    return model, time.perf_counter() - start


def seed_pipeline(frame, epochs: int):
    """The seed tutorials end to end: MinMax prices fit on train rows, loop windows, reference
    trainer, scored in price units on our test windows."""
    data = prepare_windows(frame, SEED_WINDOW, SEED_MODEL)  # same splits and test windows
    scaled = data.transformer.scaler.transform(frame[["Close"]].to_numpy())[:, 0]
    x, y = reference_windows(scaled, SEED_WINDOW.sequence_length)
    offset = SEED_WINDOW.sequence_length - 1
    train, val, test = (s.origins - offset for s in (data.train, data.val, data.test))
    model, fit = reference_train(x[train], y[train], x[val], y[val], epochs)
    model.eval()
    with torch.no_grad():
        out = model(torch.tensor(x[test])).numpy()
    pred = data.to_prices(data.test, out)
    return fit, score_forecasts(pred, data.actual_prices(data.test), data.last_close(data.test))


# ---------------------------------------------------------------- 1. raw throughput


def bench_throughput(frame, epochs: int, repeats: int, threads: int) -> dict:
    data = prepare_windows(frame, SEED_WINDOW, SEED_MODEL)
    n = len(data.train)
    common = dict(epochs=epochs, patience=epochs + 1, progress=False, device="cpu", lr=1e-3)
    default = TrainConfig()
    amp = amp_dtype_for(torch.device("cpu"), default.amp)
    contenders = {
        "reference (loop windows + DataLoader, bs 32, fp32)": None,
        "stockcast trainer, bs 32, fp32": TrainConfig(batch_size=32, threads=threads, amp=False,
                                                      **common),
        f"stockcast trainer, defaults (bs {default.batch_size}, "
        f"{str(amp).replace('torch.', '') if amp else 'fp32'})": TrainConfig(
            batch_size=default.batch_size, threads=threads, amp=default.amp, **common),
    }
    times: dict[str, list[float]] = {k: [] for k in contenders}
    kernel_rows = [f"LSTM kernels alone, bs {b}, fp32 (the bound)" for b in (32, 96, 256, 512)]
    times |= {k: [] for k in kernel_rows}
    for _ in range(repeats):
        for row, seconds in zip(kernel_rows, kernel_limit(frame, epochs, threads).values(),
                                strict=True):
            times[row].append(seconds)
        for name, cfg in contenders.items():
            if cfg is None:
                torch.set_num_threads(threads)
                values = data.transformer.scaler.transform(frame[["Close"]].to_numpy())[:, 0]
                x, y = reference_windows(values, 60)
                o = data.train.origins - 59
                ov = data.val.origins - 59
                _, seconds = reference_train(x[o], y[o], x[ov], y[ov], epochs)
            else:  # the trainer's own clock: windowing and calibration are not timed
                seconds = fit_and_calibrate(frame, SEED_WINDOW, SEED_MODEL, cfg).result.seconds
            times[name].append(seconds)
    ref = statistics.median(times[next(iter(times))])
    rows = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        rows[name] = {"windows_per_s": n * epochs / med, "s_per_epoch": med / epochs,
                      "speedup": ref / med, "runs_s": ts}
    return {"train_windows": n, "epochs": epochs, "threads": threads, "results": rows}


def kernel_limit(frame, epochs: int, threads: int, batches=(32, 96, 256, 512)) -> dict:
    """What the LSTM kernels alone can do: the stockcast network (the seed configuration's
    size) trained on contiguous batches with nothing else, no shuffling or gathering, no
    validation, no early stopping: forward, Gaussian NLL, backward, fused Adam. The trainer
    cannot be faster than this at the same batch and precision; the batch is the lever left."""
    from stockcast.modeling.trainer import _nll, build_model

    data = prepare_windows(frame, SEED_WINDOW, SEED_MODEL)
    x, y, b = (torch.as_tensor(a) for a in (data.train.x, data.train.y, data.train.base))
    torch.set_num_threads(threads)
    out = {}
    for batch in batches:
        model = build_model(x.shape[2], y.shape[1], SEED_MODEL,
                            torch.Generator().manual_seed(0))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        chunks = [(x[i:i + batch], y[i:i + batch], b[i:i + batch])
                  for i in range(0, len(x), batch)]
        start = time.perf_counter()
        for _ in range(epochs):
            for xb, yb, bb in chunks:
                opt.zero_grad(set_to_none=True)
                _nll(model(xb), yb, bb).backward()
                opt.step()
        out[batch] = time.perf_counter() - start
    return out


# ---------------------------------------------------------------- 2. time to quality


def our_default_pipeline(path: Path):
    """Our default configuration from the raw CSV to a fitted, scored model."""
    start = time.perf_counter()
    cfg = PipelineConfig()
    prices = PriceData("GOOG", read_price_file(path), "sample", str(path))
    frame = validate_prices(prices, cfg.window, cfg.validation).frame
    train_cfg = cfg.train.model_copy(update={"threads": os.cpu_count() or 1, "progress": False})
    fit = fit_and_calibrate(frame, cfg.window, cfg.model, train_cfg)
    data, result = fit.data, fit.result
    last = data.last_close(data.test)
    pred = fit.forecaster.forecast_split(data.test, last).point
    metrics = score_forecasts(pred, data.actual_prices(data.test), last)
    return time.perf_counter() - start, result.seconds, metrics, len(result.history)


def bench_quality(repeats: int, seed_repeats: int, seed_epochs: int) -> dict:
    path = sample_path("GOOG")
    ours, seed = [], []
    for i in range(max(repeats, seed_repeats)):
        if i < repeats:
            ours.append(our_default_pipeline(path))
        if i < seed_repeats:
            t0 = time.perf_counter()
            fit, metrics = seed_pipeline(read_price_file(path), seed_epochs)
            seed.append((time.perf_counter() - t0, fit, metrics, seed_epochs))

    def summarise(runs):
        return {"wall_s": statistics.median(r[0] for r in runs),
                "fit_s": statistics.median(r[1] for r in runs),
                "skill_rmse": statistics.median(r[2]["skill_rmse"] for r in runs),
                "test_rmse": statistics.median(r[2]["test_rmse"] for r in runs),
                "naive_rmse": runs[0][2]["naive_rmse"],
                "epochs": statistics.median(r[3] for r in runs)}

    return {"stockcast default (log_return, early stopping)": summarise(ours),
            f"seed (MinMax prices, bs 32, {seed_epochs} epochs, reference loop)": summarise(seed)}


# ---------------------------------------------------------------- 3. per-stage timing


def _standalone_fits(cfg: PipelineConfig) -> dict:
    """The flow's two fits of GOOG outside Prefect, with the thread count the flow gives one
    ticker: the reference the in-flow fits are held to."""
    from stockcast.data.files import sample_path
    from stockcast.data.schemas import validate_prices
    from stockcast.data.sources import PriceData
    from stockcast.modeling.recipe import fit_and_calibrate, fit_for_serving
    from stockcast.runtime import threads_per_training

    cfg = threads_per_training(cfg)
    prices = PriceData("GOOG", read_price_file(sample_path("GOOG")), "sample", "sample")
    frame = validate_prices(prices, cfg.window, cfg.validation).frame
    t0 = time.perf_counter()
    fit = fit_and_calibrate(frame, cfg.window, cfg.model, cfg.train)
    t1 = time.perf_counter()
    fit_for_serving(fit, cfg.model, cfg.train)
    return {"fit": t1 - t0, "refit": time.perf_counter() - t1}


def bench_stages() -> dict:
    """Two flow runs on GOOG (sample): the first starts Prefect's server; time the second."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

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
        flow_run_id = state.state_details.flow_run_id

        async def task_runs():
            async with get_client() as client:
                flow_run = await client.read_flow_run(flow_run_id)
                runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[flow_run_id])))
                return flow_run, runs

        flow_run, runs = asyncio.run(task_runs())
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


def table(title: str, rows: dict, cols: list[str]) -> str:
    lines = [f"\n{title}", "  " + " | ".join(["contender".ljust(62), *[c.rjust(12) for c in cols]])]
    for name, r in rows.items():
        vals = [f"{r[c]:12.3f}" if isinstance(r[c], float) else f"{r[c]:>12}" for c in cols]
        lines.append("  " + " | ".join([name.ljust(62), *vals]))
    return "\n".join(lines)


def markdown(out: dict) -> str:
    """The results as Markdown tables, for the README."""
    lines = []
    for result in out.get("throughput", {}).values():
        lines += [f"**Raw training throughput**, {result['threads']} thread(s), "
                  f"{result['train_windows']} training windows, {result['epochs']} epochs:", "",
                  "| trainer | windows/s | s/epoch | speedup |", "|---|---:|---:|---:|"]
        lines += [f"| {name} | {r['windows_per_s']:,.0f} | {r['s_per_epoch']:.3f} | "
                  f"{r['speedup']:.2f}x |" for name, r in result["results"].items()]
        lines.append("")
    if "quality" in out:
        lines += ["**Time to quality** (raw CSV to a fitted, scored model):", "",
                  "| configuration | wall s | fit s | epochs | test RMSE | naive RMSE | skill_rmse |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {name} | {r['wall_s']:.2f} | {r['fit_s']:.2f} | {r['epochs']:.0f} | "
                  f"{r['test_rmse']:.3f} | {r['naive_rmse']:.3f} | {r['skill_rmse']:+.3f} |"
                  for name, r in out["quality"].items()]
        lines.append("")
    if "intervals" in out:
        lines += intervals_markdown(out["intervals"])
    if "global" in out:
        lines += global_markdown(out["global"])
    if "served" in out:
        lines += served_markdown(out["served"])
    if "portfolio" in out:
        lines += portfolio_markdown(out["portfolio"])
    if "drift" in out:
        lines += drift_markdown(out["drift"])
    if "promotion" in out:
        lines += promotion_markdown(out["promotion"])
    if "walk_forward" in out:
        lines += walk_forward_markdown(out["walk_forward"])
    if "service" in out:
        lines += service_markdown(out["service"])
    if "refit" in out:
        lines += refit_markdown(out["refit"])
    if "stages" in out:
        st = out["stages"]
        lines += ["**One `make run-flow`** (GOOG, defaults; the second of two runs, once "
                  "Prefect's server is up):", "", "| stage | seconds |", "|---|---:|"]
        lines += [f"| task `{k}` | {v:.2f} |"
                  for k, v in sorted(st["stages_s"].items(), key=lambda kv: -kv[1])]
        lines += [f"| whole flow run | {st['flow_run_s']:.2f} |",
                  f"| everything but training (wall - train - refit) | {st['non_training_s']:.2f} |",
                  f"| first run, starting Prefect's temporary server | "
                  f"{st['first_run_wall_s (starts the Prefect server, creates the MLflow DB)']:.2f} |",
                  ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5, help="epochs for the throughput test")
    parser.add_argument("--seed-epochs", type=int, default=50)
    parser.add_argument("--seed-repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+",
                        default=sorted({1, os.cpu_count() or 1}),
                        help="thread counts for the throughput test (default: 1 and all cores)")
    parser.add_argument("--portfolio-size", type=int, default=100,
                        help="tickers in the portfolio case (500 for the large run)")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["throughput", "quality", "intervals", "stages", "portfolio",
                                 "drift", "promotion", "refit", "warm_start", "served",
                                 "walk_forward", "service"])
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    frame = read_price_file(sample_path("GOOG"))
    out: dict = {"machine": {"cpus": os.cpu_count(), "torch": torch.__version__,
                             "cuda": torch.cuda.is_available(),
                             "python": sys.version.split()[0]}}
    if "throughput" not in args.skip:
        out["throughput"] = {}
        for threads in args.threads:
            result = bench_throughput(frame, args.epochs, args.repeats, threads)
            out["throughput"][f"{threads}_threads"] = result
            print(table(f"1. raw training throughput, 2x50 LSTM 60->1, {args.epochs} epochs, "
                        f"{result['train_windows']} train windows, {threads} thread(s), "
                        f"median of {args.repeats}", result["results"],
                        ["windows_per_s", "s_per_epoch", "speedup"]), flush=True)
    if "quality" not in args.skip:
        out["quality"] = bench_quality(args.repeats, args.seed_repeats, args.seed_epochs)
        print(table("2. time to quality on GOOG test span (skill_rmse > 0 beats persistence)",
                    out["quality"], ["wall_s", "fit_s", "epochs", "test_rmse", "skill_rmse"]),
              flush=True)
    if "intervals" not in args.skip:
        out["intervals"] = bench_intervals()
        print("\n" + "\n".join(intervals_markdown(out["intervals"])), flush=True)
        out["global"] = bench_global()
        print("\n" + "\n".join(global_markdown(out["global"])), flush=True)
    if "served" not in args.skip:
        out["served"] = bench_served()
        print("\n" + "\n".join(served_markdown(out["served"])), flush=True)
    if "stages" not in args.skip:
        out["stages"] = bench_stages()
        s = out["stages"]
        print("\n3. one `make run-flow` (GOOG, defaults), second run once Prefect is up")
        for k, v in s.items():
            if k != "stages_s":
                print(f"  {k:<70} {v:8.2f}")
        for k, v in sorted(s["stages_s"].items(), key=lambda kv: -kv[1]):
            print(f"    task {k:<65} {v:8.2f}")
    if "portfolio" not in args.skip:
        out["portfolio"] = bench_portfolio(args.portfolio_size)
        print("\n" + "\n".join(portfolio_markdown(out["portfolio"])), flush=True)
    if "drift" not in args.skip:
        out["drift"] = simulate()
        print("\n" + "\n".join(drift_markdown(out["drift"])), flush=True)
    if "promotion" not in args.skip:
        out["promotion"] = seed_spread()
        print("\n" + "\n".join(promotion_markdown(out["promotion"])), flush=True)
    if "walk_forward" not in args.skip:
        out["walk_forward"] = bench_walk_forward()
        print("\n" + "\n".join(walk_forward_markdown(out["walk_forward"])), flush=True)
    if "service" not in args.skip:
        out["service"] = bench_service()
        print("\n" + "\n".join(service_markdown(out["service"])), flush=True)
    if "refit" not in args.skip:
        out["refit"] = bench_refit()
        print("\n" + "\n".join(refit_markdown(out["refit"])), flush=True)
    if "warm_start" not in args.skip:
        out["warm_start"] = bench_warm_start()
        print("\n" + "\n".join(warm_start_markdown(out["warm_start"])), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench.json").write_text(json.dumps(out, indent=2))
    (RESULTS / "bench.md").write_text(markdown(out))
    print(f"\nwritten {RESULTS / 'bench.json'} and bench.md (the README's tables)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
