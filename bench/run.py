"""`make bench`: every benchmark case, each in its own module, run in turn on this machine.

``python bench/run.py --only throughput`` runs one case, ``--skip`` leaves some out. Each case
prints its Markdown table as soon as it is done; ``bench/results/bench.json`` keeps the
numbers and ``bench.md`` the tables, headed by the machine they were measured on (its CPU, the
flags that choose the kernels, the training precision)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import allocator  # noqa: I001 (bench/ is on sys.path when run as a script)
import command
import drift
import intervals
import machine
import portfolio
import promotion
import quality
import refit
import served
import served_years
import service
import stages
import throughput
import walk_forward
import warm_start

from stockcast.data.files import read_price_file, sample_path
from stockcast.modeling.allocator import pin_malloc_thresholds

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Case:
    """A benchmark: how to run it (with the parsed arguments) and how to print its result."""

    run: Callable[[argparse.Namespace], object]
    markdown: Callable[[object], list[str]]


def _throughput(args: argparse.Namespace) -> dict:
    frame = read_price_file(sample_path("GOOG"))
    out = {"throughput": {f"{t}_threads": throughput.bench_throughput(
        frame, args.epochs, args.repeats, t) for t in args.threads}}
    cores = os.cpu_count() or 1
    if cores > 1:
        out["layout"] = throughput.bench_layout(frame, args.epochs, args.repeats, cores)
    out["profile"] = throughput.bench_profiles(frame, args.epochs, args.threads)
    return out


def _intervals(args: argparse.Namespace) -> dict:
    return {"intervals": intervals.bench_intervals(), "global": intervals.bench_global()}


CASES: dict[str, Case] = {
    "throughput": Case(_throughput, throughput.markdown),
    "allocator": Case(lambda a: allocator.bench_allocator(), allocator.markdown),
    "command": Case(lambda a: command.bench_command(), command.markdown),
    "quality": Case(lambda a: quality.bench_quality(a.repeats, a.seed_repeats, a.seed_epochs),
                    quality.markdown),
    "intervals": Case(_intervals, lambda r: [*intervals.markdown(r["intervals"]),
                                             *intervals.global_markdown(r["global"])]),
    "served": Case(lambda a: served.bench_served(), served.markdown),
    "served_years": Case(lambda a: served_years.bench_served_years(), served_years.markdown),
    "stages": Case(lambda a: stages.bench_stages(), stages.markdown),
    "portfolio": Case(lambda a: portfolio.bench_portfolio(a.portfolio_size), portfolio.markdown),
    "drift": Case(lambda a: drift.bench_drift(), drift.markdown),
    "promotion": Case(lambda a: promotion.seed_spread(), promotion.markdown),
    "walk_forward": Case(lambda a: walk_forward.bench_walk_forward(), walk_forward.markdown),
    "service": Case(lambda a: service.bench_service(), service.markdown),
    "refit": Case(lambda a: refit.bench_refit(), refit.markdown),
    "refit_epochs": Case(lambda a: refit.bench_refit_epochs(), refit.epochs_markdown),
    "warm_start": Case(lambda a: warm_start.bench_warm_start(), warm_start.markdown),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    parser.add_argument("--skip", nargs="*", default=[], choices=list(CASES))
    parser.add_argument("--only", nargs="*", default=None, choices=list(CASES),
                        help="run these cases only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # Pinned before any case, as the trainer pins them: every contender (the reference loop
    # too) runs in the same allocator state, and the header says which.
    here = machine.describe(pin_malloc_thresholds())
    out: dict = {"machine": here}
    lines = [f"Measured on: {machine.headline(here)}.", ""]
    print(lines[0], flush=True)
    for name, case in CASES.items():
        if name in args.skip or (args.only is not None and name not in args.only):
            continue
        out[name] = case.run(args)
        table = case.markdown(out[name])
        lines += table
        print("\n" + "\n".join(table), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench.json").write_text(json.dumps(out, indent=2))
    (RESULTS / "bench.md").write_text("\n".join(lines))
    print(f"\nwritten {RESULTS / 'bench.json'} and bench.md (the README's tables)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
