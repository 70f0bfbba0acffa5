import pandas as pd
import pytest
from helpers import TINY, make_prices

from stockcast.config import build_config
from stockcast.errors import ConfigError
from stockcast.evaluation.backtest import fold_windows, walk_forward
from stockcast.splits import split_bounds, window_origins


def test_folds_are_consecutive_blocks_over_the_test_span():
    cfg = build_config(TINY)
    n = 600
    folds = fold_windows(n, cfg.window, 3)
    ends = [end for end, _ in folds]
    assert ends == sorted(ends) and ends[-1] <= n
    previous_last_target = None
    for end, window in folds:
        assert abs(window.train_fraction + window.val_fraction + window.test_fraction - 1) < 1e-9
        test = window_origins(end, window)["test"]
        bounds = split_bounds(end, window)
        assert test[0] + 1 >= bounds.val_end  # trained only on what precedes the block
        if previous_last_target is not None:
            # each block starts where the previous one ended (rounding aside)
            assert abs((test[0] + 1) - (previous_last_target + 1)) <= 1
        previous_last_target = test[-1] + window.horizon


def test_walk_forward_reports_each_fold_and_pools_them():
    cfg = build_config(TINY)
    frame = make_prices(500, seed=4)
    heard = []  # what the CLI prints as each fold ends (a backtest is minutes of silence)
    result = walk_forward(frame, cfg.window, cfg.model, cfg.train, folds=3,
                          on_fold=lambda row, n: heard.append((row["fold"], n, row["seconds"])))
    assert [(f, n) for f, n, _ in heard] == [(1, 3), (2, 3), (3, 3)]
    assert all(seconds > 0 for *_, seconds in heard)
    assert list(result.folds["fold"]) == [1, 2, 3]
    starts = pd.to_datetime(result.folds["test_start"])
    assert starts.is_monotonic_increasing
    assert (result.folds["windows"] > 0).all()
    assert result.aggregate["mean_skill_rmse"] == pytest.approx(result.folds["skill_rmse"].mean())
    assert 0 <= result.aggregate["folds_beating_naive"] <= 3


def test_too_many_folds_is_a_clear_error():
    with pytest.raises(ConfigError, match="fewer folds"):
        fold_windows(100, build_config(TINY).window, 50)
