"""The freshness policy: who may train on old prices and still register a model."""

import datetime as dt

import pytest
from helpers import make_prices

from stockcast.config import DataConfig, ValidationConfig, WindowConfig
from stockcast.data.freshness import StaleDataError, check_freshness
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import PriceData

TODAY = dt.date(2016, 3, 1)  # make_prices(300) ends on Thursday 2016-02-25
SAMPLE_FALLBACK = ("yfinance failed: offline",
                   "no cache either: fell back to the bundled sample data (ends 2013-03-01)")


def checked(source: str, notes: tuple[str, ...] = (), fallback: str | None = None):
    prices = PriceData("T", make_prices(300), source, "x", notes=notes, fallback=fallback)
    return validate_prices(prices, WindowConfig(sequence_length=5, min_windows_per_split=1),
                           ValidationConfig())


def test_recent_prices_are_fresh():
    # Thursday's close on Tuesday: Friday's and Monday's sessions are missed (<= 3).
    f = check_freshness(checked("yfinance"), DataConfig(), scheduled=True, today=TODAY)
    assert f.sessions_behind == 2 and not f.stale and f.registrable


def test_a_stale_fallback_fails_or_warns():
    late = TODAY + dt.timedelta(days=30)
    with pytest.raises(StaleDataError, match="trading sessions ago"):
        check_freshness(checked("cache", ("yfinance failed",), "cache"), DataConfig(), False, late)
    warned = check_freshness(checked("cache", ("yfinance failed",), "cache"),
                             DataConfig(on_stale="warn"), False, late)
    assert warned.stale and not warned.registrable and "not registered" in warned.reason


def test_historical_sources_asked_for_explicitly_are_accepted_in_an_interactive_run_only():
    late = TODAY + dt.timedelta(days=300)
    for source in ("sample", "csv", "cache"):
        cfg = DataConfig(source=source, csv_path="x.csv")
        f = check_freshness(checked(source), cfg, scheduled=False, today=late)
        assert f.stale and f.registrable and "asked for explicitly" in f.reason
        # A deployment's `source` override is held to the rule: refused, or not registered.
        with pytest.raises(StaleDataError, match="a deployment run holds a source override"):
            check_freshness(checked(source), cfg, scheduled=True, today=late)
        warned = check_freshness(checked(source), cfg.model_copy(update={"on_stale": "warn"}),
                                 scheduled=True, today=late)
        assert warned.stale and not warned.registrable
        # Old files on purpose: the deployment raises the limit in the same parameters.
        assert check_freshness(checked(source), cfg.model_copy(
            update={"max_staleness_days": 1000}), scheduled=True, today=late).registrable


def test_the_sample_fallback_is_accepted_only_on_a_first_interactive_offline_run():
    late = TODAY + dt.timedelta(days=300)
    assert check_freshness(checked("sample", SAMPLE_FALLBACK, "sample"), DataConfig(), scheduled=False,
                           today=late).registrable
    with pytest.raises(StaleDataError):
        check_freshness(checked("sample", SAMPLE_FALLBACK, "sample"), DataConfig(),
                        scheduled=True, today=late)


def test_the_decision_reads_the_structured_fallback_not_the_wording():
    late = TODAY + dt.timedelta(days=300)
    reworded = ("yfinance failed: offline", "using the bundled sample instead")
    assert check_freshness(checked("sample", reworded, "sample"), DataConfig(),
                           scheduled=False, today=late).registrable
