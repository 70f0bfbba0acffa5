"""The figures of a run, drawn after its promotion decision and added to the finished run.

Drawing the nine figures (the four evaluation plots and the data report's five) was the
largest cost of a warm nightly run outside training, and the cores drawing them were the
cores the other tickers' trainings needed. ``tracking.figures`` chooses the runs they are
drawn for: ``promoted`` (the default: the versions that become champion, the ones an
operator reads), ``all`` or ``none``. Every run logs its metrics, forecast table and data
summary either way.
"""

from __future__ import annotations

from pathlib import Path

from stockcast.config import PipelineConfig
from stockcast.data.report_cache import report_for
from stockcast.data.schemas import ValidatedPrices
from stockcast.evaluation.scorecard import Evaluation, evaluation_figures
from stockcast.modeling.recipe import TickerFit
from stockcast.registry.store import MlflowStore


def figures_wanted(setting: str, promoted: bool) -> tuple[bool, str]:
    """Whether to draw a run's figures under ``tracking.figures``, and the reason."""
    if setting == "all" or (setting == "promoted" and promoted):
        return True, f"drawn (tracking.figures: {setting})"
    return False, f"not drawn (tracking.figures: {setting}" + (
        "; this version was not promoted)" if setting == "promoted" else ")")


def log_run_figures(run_id: str, validated: ValidatedPrices, fit: TickerFit,
                    evaluation: Evaluation, cfg: PipelineConfig, store: MlflowStore,
                    out_dir: Path) -> dict[str, list[str]]:
    """Draw the evaluation plots (``plots/``) and the data report (``eda/``, reused while the
    prices are unchanged) and add them to the finished run ``run_id``; the artifact paths."""
    ticker = validated.ticker
    plots = evaluation_figures(fit, evaluation, Path(out_dir) / "plots", ticker)
    eda, _ = report_for(validated.frame, ticker, validated.prices.digest,
                        cfg.data.data_dir / "reports" / "eda", cfg.window)

    def log() -> dict[str, list[str]]:
        client = store.client
        for path in plots.values():
            client.log_artifact(run_id, str(path), "plots")
        client.log_artifacts(run_id, str(eda), "eda")
        return {"plots": sorted(p.name for p in plots.values()),
                "eda": sorted(p.name for p in eda.iterdir() if p.is_file())}

    return store.call("logging figures", log)
