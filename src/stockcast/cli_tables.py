"""Tables and verdicts the CLI prints (plain text, one unit per column)."""

from __future__ import annotations

BACKTEST_COLUMNS = ["fold", "test_start", "test_end", "windows", "best_epoch", "skill_rmse_pct",
                    "dm_pvalue_naive", "test_coverage_95", "test_interval_score_95",
                    "ewma_interval_score_95", "garch_interval_score_95"]


def backtest_verdict(aggregate: dict, folds: int) -> str:
    """The pooled result in a few aligned lines and one sentence."""
    a = {k.removeprefix("pooled_"): v for k, v in aggregate.items()}
    lines = ["pooled over every fold (95 % interval score, price units; DM p: H1 the LSTM's is "
             "lower):",
             f"  LSTM          {a['test_interval_score_95']:10.4f}   coverage_95 "
             f"{a['test_coverage_95']:.3f}"]
    for prefix, label in (("ewma", "EWMA band"), ("har", "HAR"), ("garch", "GARCH(1,1)-t")):
        lines.append(f"  {label:<13} {a[f'{prefix}_interval_score_95']:10.4f}   DM p "
                     f"{a[f'dm_pvalue_is95_{prefix}']:.3f}")
    best = min(("ewma", "har", "garch"), key=lambda p: a[f"{p}_interval_score_95"])
    lstm_wins = a["test_interval_score_95"] < a[f"{best}_interval_score_95"]
    p = a[f"dm_pvalue_is95_{best}"]
    sentence = ("The LSTM's intervals beat every volatility baseline" if lstm_wins else
                "A volatility baseline's intervals beat the LSTM's")
    lines.append(f"{sentence} pooled over {folds} folds (against the best, "
                 f"{'significantly' if p < 0.05 or p > 0.95 else 'not significantly'}: DM p "
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
