"""Training throughput: the stockcast trainer against the reference loop and against what the
LSTM kernels alone can do, in each precision this CPU runs natively; how one night should lay
its fits on the cores; and where an epoch's time goes.

Everything on the bundled GOOG sample with the seed network (2 x 50, 60 -> 1). Contenders
alternate within each repeat so machine noise hits all of them; medians are reported."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import torch
from reference import SEED_MODEL, SEED_WINDOW, reference_seconds

from stockcast.config import TrainConfig
from stockcast.modeling.device import amp_dtype_for
from stockcast.modeling.trainer import PHASES, build_model, gaussian_nll, train_model
from stockcast.modeling.windows import prepare_windows

BATCHES = (32, 96, 256, 512)
REFERENCE = "reference (loop windows + DataLoader, bs 32, fp32)"


def precisions() -> list[str]:
    """fp32 always; bf16 too where this CPU has it natively (what the trainer then uses)."""
    return ["fp32", "bf16"] if amp_dtype_for(torch.device("cpu"), True) else ["fp32"]


def _train_cfg(epochs: int, threads: int, **overrides) -> TrainConfig:
    return TrainConfig(epochs=epochs, patience=epochs + 1, progress=False, device="cpu",
                       lr=1e-3, threads=threads, **overrides)


def _contenders(frame, data, epochs: int, threads: int) -> dict:
    """Row name -> a callable returning training seconds (the trainer's own clock: windowing
    and calibration are not timed)."""
    default = TrainConfig()
    native = precisions()[-1]

    def trainer(**kw):
        cfg = _train_cfg(epochs, threads, **kw)
        return lambda: train_model(data.train, data.val, SEED_MODEL, cfg).seconds

    rows = {REFERENCE: lambda: reference_seconds(frame, epochs, threads),
            "stockcast trainer, bs 32, fp32": trainer(batch_size=32, amp=False)}
    if native != "fp32":
        rows[f"stockcast trainer, bs {default.batch_size}, fp32"] = trainer(
            batch_size=default.batch_size, amp=False)
    rows[f"stockcast trainer, defaults (bs {default.batch_size}, {native})"] = trainer(
        batch_size=default.batch_size, amp=default.amp)
    return rows


def bench_throughput(frame, epochs: int, repeats: int, threads: int) -> dict:
    data = prepare_windows(frame, SEED_WINDOW, SEED_MODEL)
    contenders = _contenders(frame, data, epochs, threads)
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            times[name].append(run())
        for precision in precisions():
            for batch, seconds in kernel_limit(data, epochs, threads, precision).items():
                times.setdefault(f"LSTM kernels alone, bs {batch}, {precision} (the bound)",
                                 []).append(seconds)
    return {"train_windows": len(data.train), "epochs": epochs, "threads": threads,
            "results": _rows(times, len(data.train), epochs)}


def _rows(times: dict[str, list[float]], windows: int, epochs: int) -> dict:
    ref = statistics.median(times[REFERENCE])
    return {name: {"windows_per_s": windows * epochs / statistics.median(ts),
                   "s_per_epoch": statistics.median(ts) / epochs,
                   "speedup": ref / statistics.median(ts), "runs_s": ts}
            for name, ts in times.items()}


def kernel_limit(data, epochs: int, threads: int, precision: str = "fp32",
                 batches=BATCHES) -> dict:
    """What the LSTM kernels alone can do: the stockcast network trained on contiguous batches
    with nothing else (no shuffling or gathering, no validation, no early stopping): forward,
    Gaussian NLL, backward, fused Adam, under bf16 autocast for ``precision='bf16'``. The
    trainer cannot beat this at the same batch and precision; the batch is the lever left."""
    x, y, b = (torch.as_tensor(a) for a in (data.train.x, data.train.y, data.train.base))
    torch.set_num_threads(threads)
    out = {}
    for batch in batches:
        model = build_model(x.shape[2], y.shape[1], SEED_MODEL, torch.Generator().manual_seed(0))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        chunks = [(x[i:i + batch], y[i:i + batch], b[i:i + batch])
                  for i in range(0, len(x), batch)]
        start = time.perf_counter()
        for _ in range(epochs):
            for xb, yb, bb in chunks:
                opt.zero_grad(set_to_none=True)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    loss = gaussian_nll(model(xb), yb, bb)
                loss.backward()
                opt.step()
        out[batch] = time.perf_counter() - start
    return out


# ---------------------------------------------------------------- a night's layout


def _concurrent_fits(data, cfg: TrainConfig, fits: int) -> float:
    """Wall seconds for ``fits`` fits at once in threads, as the flow runs a wave of tickers."""
    start = time.perf_counter()
    with ThreadPoolExecutor(fits) as pool:
        futures = [pool.submit(train_model, data.train, data.val, SEED_MODEL, cfg)
                   for _ in range(fits)]
        for future in futures:
            future.result()  # a failed fit fails the bench
    return time.perf_counter() - start


def bench_layout(frame, epochs: int, repeats: int, cores: int) -> dict:
    """One ticker on all ``cores`` threads against ``cores`` tickers at once on one thread each,
    at the defaults and (where bf16 is native) in fp32: the windows a night trains per second.
    The flow picks the second for a night of several tickers (``threads: 0``)."""
    data = prepare_windows(frame, SEED_WINDOW, SEED_MODEL)
    windows = len(data.train) * epochs
    layouts = {}
    for precision in precisions():
        amp = precision != "fp32"
        layouts[f"1 fit on {cores} threads, {precision}"] = (
            _train_cfg(epochs, cores, amp=amp), 1)
        layouts[f"{cores} fits at once, 1 thread each, {precision}"] = (
            _train_cfg(epochs, 1, amp=amp), cores)
    walls: dict[str, list[float]] = {k: [] for k in layouts}
    for _ in range(repeats):
        for name, (cfg, fits) in layouts.items():
            walls[name].append(_concurrent_fits(data, cfg, fits) / fits)
    return {"cores": cores, "epochs": epochs, "train_windows": len(data.train),
            "results": {k: {"windows_per_s": windows / statistics.median(v), "runs_s": v}
                        for k, v in walls.items()}}


# ---------------------------------------------------------------- where an epoch goes


def epoch_profile(frame, epochs: int, threads: int, precision: str) -> dict:
    """Milliseconds per epoch in each phase of the trainer (torch.profiler, the trainer's own
    ``record_function`` scopes) and what is left (the loop, early stopping, the metrics)."""
    from torch.profiler import ProfilerActivity, profile

    data = prepare_windows(frame, SEED_WINDOW, SEED_MODEL)
    cfg = _train_cfg(epochs, threads, amp=precision != "fp32")
    train_model(data.train, data.val, SEED_MODEL, cfg)  # warm the kernels' caches
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        train_model(data.train, data.val, SEED_MODEL, cfg)
        wall = time.perf_counter() - start
    phases = {e.key: e.cpu_time_total / 1e3 / epochs for e in prof.key_averages()
              if e.key in PHASES}
    per_epoch = wall * 1e3 / epochs
    phases = {p.removeprefix("train."): phases.get(p, 0.0) for p in PHASES}
    phases["other"] = max(0.0, per_epoch - sum(phases.values()))
    return {"threads": threads, "precision": precision, "ms_per_epoch": per_epoch,
            "ms": phases}


def bench_profiles(frame, epochs: int, threads: list[int]) -> list[dict]:
    return [epoch_profile(frame, epochs, t, p) for t in threads for p in precisions()]


# ---------------------------------------------------------------- the tables


def markdown(out: dict) -> list[str]:
    lines = []
    for result in out.get("throughput", {}).values():
        lines += [f"**Raw training throughput**, {result['threads']} thread(s), "
                  f"{result['train_windows']} training windows, {result['epochs']} epochs:", "",
                  "| trainer | windows/s | s/epoch | x reference |", "|---|---:|---:|---:|"]
        lines += [f"| {name} | {r['windows_per_s']:,.0f} | "
                  f"{r['s_per_epoch']:.3f} | {r['speedup']:.2f}x |"
                  for name, r in result["results"].items()]
        lines.append("")
    if "layout" in out:
        lay = out["layout"]
        lines += [f"**A night's layout** on {lay['cores']} cores ({lay['epochs']} epochs of "
                  f"{lay['train_windows']} windows per fit; windows trained per second of "
                  "wall time, all fits together):", "", "| layout | windows/s |", "|---|---:|"]
        lines += [f"| {k} | {r['windows_per_s']:,.0f} |" for k, r in lay["results"].items()]
        lines.append("")
    if out.get("profile"):
        names = list(out["profile"][0]["ms"])
        lines += ["**Where an epoch goes** (ms per epoch, torch.profiler, the trainer at its "
                  "defaults but for the precision):", "",
                  "| threads | precision | ms/epoch | " + " | ".join(names) + " |",
                  "|---:|---|---:|" + "---:|" * len(names)]
        lines += [f"| {p['threads']} | {p['precision']} | {p['ms_per_epoch']:.0f} | "
                  + " | ".join(f"{p['ms'][k]:.0f}" for k in names) + " |"
                  for p in out["profile"]]
        lines.append("")
    return lines
