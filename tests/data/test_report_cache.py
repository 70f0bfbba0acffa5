"""The data report is drawn once per snapshot and reused while the prices are unchanged."""

from helpers import make_prices

from stockcast.config import WindowConfig
from stockcast.data import report_cache


def test_unchanged_prices_reuse_the_report_and_old_ones_are_pruned(tmp_path, monkeypatch):
    drawn = []
    real = report_cache.build_report

    def counting(frame, ticker, out_dir, window=None):  # the first one drawn for real
        drawn.append(out_dir)
        if len(drawn) == 1:
            return real(frame, ticker, out_dir, window)
        out_dir.mkdir(parents=True)
        (out_dir / "summary.md").write_text("drawn")

    monkeypatch.setattr(report_cache, "build_report", counting)
    frame, window = make_prices(200), WindowConfig(sequence_length=10, min_windows_per_split=5)
    first, reused = report_cache.report_for(frame, "GOOG", "d1", tmp_path, window)
    assert not reused and (first / "summary.md").is_file() and (first / "price_history.png").is_file()
    again, reused = report_cache.report_for(frame, "GOOG", "d1", tmp_path, window)
    assert reused and again == first and len(drawn) == 1
    other_window = window.model_copy(update={"sequence_length": 12})
    assert report_cache.report_for(frame, "GOOG", "d1", tmp_path, other_window)[0] != first
    for digest in ("d2", "d3", "d4"):
        report_cache.report_for(frame, "GOOG", digest, tmp_path, window)
    kept = [p for p in (tmp_path / "GOOG").iterdir()]
    assert len(kept) == report_cache.KEEP and not any(p.name.startswith(".") for p in kept)
