"""Judging a model: metrics beside baselines, the walk-forward backtest, plots, the data report."""
