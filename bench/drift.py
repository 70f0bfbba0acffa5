"""The drift simulation's table (``stockcast.serving.drift_simulation`` says how the
sequences are made)."""

from __future__ import annotations

from stockcast.serving.drift_simulation import simulate


def markdown(result: dict) -> list[str]:
    """The drift simulation's table for the docs."""
    lines = [f"**Drift simulation** ({result['sequences']} sequences of 250 days each, see "
             "`stockcast.serving.drift_simulation` for how they are made):", "",
             "| case | false alarms (calm) | median sessions to alarm | 75th percentile | "
             "detected within 20 sessions |", "|---|---:|---:|---:|---:|",
             f"| calm | {result['false_alarm_rate']:.1%} | - | - | - |"]
    for shock, label in (("stale", "moves triple, the band does not follow"),
                         ("adapting", "moves triple, the band adapts (EWMA)")):
        r = result[shock]
        lines.append(f"| {label} | - | {r['median_delay']:.0f} | {r['p75_delay']:.0f} | "
                     f"{r['detected_within_20']:.0%} |")
    return lines + [""]


if __name__ == "__main__":
    print("\n".join(markdown(simulate())))
