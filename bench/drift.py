"""The drift simulation's table (``stockcast.serving.drift_simulation`` says how the
sequences are made)."""

from __future__ import annotations

from stockcast.serving.drift_simulation import simulate

MONITORS = {"range": "range CUSUM (the default)", "moves": "|z| CUSUM (no reference)",
            "band80": "80 % band coverage CUSUM", "band95": "95 % band coverage CUSUM",
            "red": "Basel red zone (from 20 forecasts)",
            "any": "**every DRIFT path** (range, both bands, red zone)"}


def markdown(result: dict) -> list[str]:
    """The drift simulation's table for the docs."""
    lines = [f"**Drift simulation** ({result['sequences']} sequences of 250 days each, see "
             "`stockcast.serving.drift_simulation` for how they are made):", "",
             "| monitor | false alarms (calm) | moves triple, band stale: median sessions "
             "(75th pct, within 20) | moves triple, band adapts: median sessions (75th pct, "
             "within 20) |", "|---|---:|---:|---:|"]
    for monitor, label in MONITORS.items():
        r = result[monitor]
        cells = [f"{r[s]['median_delay']:.0f} ({r[s]['p75_delay']:.0f}, "
                 f"{r[s]['detected_within_20']:.0%})" for s in ("stale", "adapting")]
        lines.append(f"| {label} | {r['false_alarm_rate']:.1%} | {cells[0]} | {cells[1]} |")
    return lines + [""]


if __name__ == "__main__":
    print("\n".join(markdown(simulate())))
