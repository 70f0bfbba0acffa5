"""Tables and verdicts the CLI prints (plain text, one unit per column)."""

from __future__ import annotations

# The per-fold table's columns and their short headers: it fits 120 characters.
BACKTEST_COLUMNS = {"fold": "fold", "test_start": "test_start", "test_end": "test_end",
                    "windows": "days", "best_epoch": "epoch", "skill_rmse_pct": "skill_%",
                    "dm_pvalue_naive": "p_naive", "test_coverage_95": "cov95",
                    "test_interval_score_95": "IS95_lstm", "ewma_interval_score_95": "IS95_ewma",
                    "har_interval_score_95": "IS95_har", "garch_interval_score_95": "IS95_garch"}
BASELINES = (("ewma", "EWMA band"), ("har", "HAR"), ("garch", "GARCH(1,1)-t"))


def backtest_table(folds) -> str:
    """The folds as a table of at most 120 characters."""
    table = folds[list(BACKTEST_COLUMNS)].rename(columns=BACKTEST_COLUMNS)
    return table.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def backtest_verdict(aggregate: dict, folds: int) -> str:
    """The pooled result in a few aligned lines and one sentence that says who is better,
    and whether significantly, in that direction (a p-value read the wrong way round is the
    misreading to avoid)."""
    a = {k.removeprefix("pooled_"): v for k, v in aggregate.items()}
    lines = ["pooled over every fold (95 % interval score, price units, lower is better):",
             f"  LSTM          {a['test_interval_score_95']:10.4f}   coverage_95 "
             f"{a['test_coverage_95']:.3f}"]
    for prefix, label in BASELINES:
        lines.append(f"  {label:<13} {a[f'{prefix}_interval_score_95']:10.4f}   DM p that the "
                     f"LSTM is better {a[f'dm_pvalue_is95_{prefix}']:.3f}")
    best, label = min(BASELINES, key=lambda b: a[f"{b[0]}_interval_score_95"])
    p_lstm = a[f"dm_pvalue_is95_{best}"]
    if a["test_interval_score_95"] < a[f"{best}_interval_score_95"]:
        winner, p = "The LSTM's intervals beat every volatility baseline", p_lstm
        against = f"against the best, {label}"
    else:
        winner, p = f"{label}'s intervals beat the LSTM's", 1.0 - p_lstm
        against = f"{label} against the LSTM"
    strength = "significantly" if p < 0.05 else "but not significantly"
    lines.append(f"{winner} pooled over {folds} folds, {strength} ({against}: one-sided DM p "
                 f"{p:.3f}); {aggregate['folds_beating_ewma_interval_score']}/{folds} folds beat "
                 f"the EWMA band; point skill {a['skill_rmse_pct']:+.2f} % vs persistence (DM p "
                 f"{a['dm_pvalue_naive']:.2f}).")
    return "\n".join(lines)


def fmt(value, spec: str = ".4f") -> str:
    """A number as text, "-" when missing."""
    return "-" if value is None else format(value, spec)


def live_tests(live: dict, zone: str) -> str:
    """The drift CUSUMs and the 2.5 % quantile's backtests, in one phrase."""
    statistic = (live.get("statistic") or "drift CUSUM").split(" (")[0]
    bands = ", ".join(f"{c} % band CUSUM {fmt(live.get(f'live_band{c}_cusum'), '.2f')} "
                      f"({fmt(live.get(f'live_band{c}_cusum_threshold'), 'g')})"
                      for c in (80, 95) if f"live_band{c}_cusum" in live)
    zone = f"{zone} zone" if zone in {"green", "yellow", "red"} else (zone or "-")
    return (f"{statistic} {fmt(live.get('live_cusum'), '.2f')} (threshold "
            f"{fmt(live.get('live_cusum_threshold'), 'g')}){', ' + bands if bands else ''}, "
            f"2.5 % quantile exceeded {fmt(live.get('live_tail_exceedances'), '.0f')}/"
            f"{fmt(live.get('live_tail_forecasts'), '.0f')} (Kupiec p "
            f"{fmt(live.get('live_kupiec_pvalue'), '.2g')}, Christoffersen p "
            f"{fmt(live.get('live_christoffersen_pvalue'), '.2g')}, {zone})")
