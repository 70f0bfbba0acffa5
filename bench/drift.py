"""The drift simulation's tables (``stockcast.serving.drift_simulation`` says how the
sequences are made): the monitor reading the bands as they are served (tracked, each aim of
``intervals.adapt_target``) and, for comparison, bands calibrated once."""

from __future__ import annotations

import dataclasses

from stockcast.config import IntervalConfig
from stockcast.modeling.adaptive import Tracking
from stockcast.serving.drift_simulation import SHOCKS, simulate

MONITORS = {"range": "range CUSUM (the default)", "moves": "\\|z\\| CUSUM (no reference)",
            "band80": "80 % band coverage CUSUM", "band95": "95 % band coverage CUSUM",
            "red": "Basel red zone (from 20 forecasts)",
            "any": "**every DRIFT path** (range, both bands, red zone)"}
SERVED = "served (the default, `adapt_target: coverage`)"


def settings() -> dict[str, Tracking | None]:
    """The bands the monitor reads: tracked as the default config serves them, aimed at the
    interval score, and calibrated once (no tracking)."""
    served = Tracking.from_config(IntervalConfig())
    return {SERVED: served,
            "served, `adapt_target: score`": dataclasses.replace(served, target="score"),
            "calibrated once (no tracking)": None}


def bench_drift() -> dict:
    """The simulation (2000 sequences, seed 0) for each setting."""
    return {label: simulate(tracking=tracking) for label, tracking in settings().items()}


def _delay(r: dict) -> str:
    median = "none within 150" if r["median_delay"] >= 999 else f"{r['median_delay']:.0f}"
    p75 = "none" if r["p75_delay"] >= 999 else f"{r['p75_delay']:.0f}"
    return f"{median} ({p75}, {r['detected_within_20']:.0%})"


def markdown(result: dict) -> list[str]:
    """Per monitor for the served default, then every DRIFT path per setting."""
    served = result[SERVED]
    lines = [f"**Drift simulation, bands as served** ({served['sequences']} sequences of 250 "
             "monitored days, each after 250 calm days the tracking replays; see "
             "`stockcast.serving.drift_simulation`):", "",
             "| monitor | false alarms (calm) | moves triple, band stale: median sessions "
             "(75th pct, within 20) | moves triple, band adapts | moves shift by one sd |",
             "|---|---:|---:|---:|---:|"]
    for monitor, label in MONITORS.items():
        r = served[monitor]
        lines.append(f"| {label} | {r['false_alarm_rate']:.1%} | "
                     + " | ".join(_delay(r[shock]) for shock in SHOCKS) + " |")
    lines += ["", "**Every DRIFT path, per setting** (false alarms: any path, and the range "
              "CUSUM, the 80 % and 95 % band CUSUMs and the red zone on their own; the bands' "
              "coverage 95 / 80 from the shock on):", "",
              "| bands | false alarms: any (range, band 80, band 95, red) | stale: median "
              "(75th pct, within 20); coverage | adapts | shifted by one sd |",
              "|---|---:|---:|---:|---:|"]
    for label, r in result.items():
        parts = ", ".join(f"{r[m]['false_alarm_rate']:.1%}"
                          for m in ("range", "band80", "band95", "red"))
        cells = [f"{_delay(r['any'][shock])}; {_covered(r['coverage_after_shock'][shock])}"
                 for shock in SHOCKS]
        lines.append(f"| {label} | {r['any']['false_alarm_rate']:.1%} ({parts}) | "
                     + " | ".join(cells) + " |")
    return lines + [""]


def _covered(c: dict) -> str:
    return f"{c['coverage_95']:.3f} / {c['coverage_80']:.3f}"


if __name__ == "__main__":
    print("\n".join(markdown(bench_drift())))
