import json

import numpy as np
import pandas as pd
import pytest
from helpers import make_prices

from stockcast.config import WindowConfig
from stockcast.data.exploration import autocorrelation, build_report
from stockcast.data.files import read_price_file, sample_path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_pngs(report):
    assert set(report.figures) == {"price", "returns", "by_year", "volatility", "acf"}
    for path in report.figures.values():
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC
        assert len(data) > 10_000  # a real figure, not an empty canvas
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width >= 600 and height >= 400


def test_report_on_the_bundled_sample(tmp_path):
    frame = read_price_file(sample_path("AAPL"))
    report = build_report(frame, "AAPL", tmp_path, WindowConfig())
    check_pngs(report)
    # Largest one-day move, computed independently here.
    close = frame["Close"].to_numpy()
    moves = close[1:] / close[:-1] - 1
    i = int(np.argmax(np.abs(moves)))
    assert report.summary["largest move date"] == str(frame["Date"].iloc[i + 1].date())
    assert report.summary["largest move"] == pytest.approx(moves[i])
    assert report.summary["rows"] == len(frame)
    assert json.loads((tmp_path / "summary.json").read_text())["rows"] == len(frame)
    # The markdown is for people: floats to 4 significant digits (the JSON keeps them all).
    md = (tmp_path / "summary.md").read_text()
    assert f"| largest move | {moves[i]:.4g} |" in md and str(float(moves[i])) not in md


def test_report_on_a_synthetic_series(tmp_path):
    frame = make_prices(600, seed=3)
    frame.loc[300, "Close"] = frame.loc[299, "Close"] * 1.3  # a known jump
    frame.loc[300, "High"] = frame.loc[300, "Close"] * 1.01
    report = build_report(frame, "SYN", tmp_path)
    check_pngs(report)
    assert report.summary["largest move date"] == str(frame.loc[300, "Date"].date())
    assert report.summary["largest move"] == pytest.approx(0.3)
    years = (frame["Date"].iloc[-1] - frame["Date"].iloc[0]).days / 365.25
    cagr = (frame["Close"].iloc[-1] / frame["Close"].iloc[0]) ** (1 / years) - 1
    assert report.summary["annualised return (CAGR)"] == pytest.approx(cagr)
    lr = np.log(frame["Close"] / frame["Close"].shift()).dropna()
    assert report.summary["annualised volatility"] == pytest.approx(lr.std() * np.sqrt(252))
    assert report.summary["missing weekdays (holidays included)"] == 0  # bdate_range input


def test_autocorrelation_matches_pandas():
    s = pd.Series(np.random.default_rng(0).normal(size=500))
    acf = autocorrelation(s, 5)
    # pandas' autocorr is the Pearson version; close to the biased estimator for long series
    assert acf[0] == pytest.approx(s.autocorr(1), abs=0.01)
    assert len(acf) == 5


def test_reports_can_be_drawn_from_several_threads_at_once(tmp_path):
    # The flows draw evaluation plots and reports from concurrent task threads.
    from concurrent.futures import ThreadPoolExecutor

    frames = [make_prices(300, seed=s) for s in range(4)]
    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(lambda i: build_report(frames[i], f"T{i}", tmp_path / str(i)),
                                range(4)))
    for report in reports:
        check_pngs(report)
