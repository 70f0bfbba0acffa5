import numpy as np
import pytest

from stockcast.evaluation.point_metrics import naive_forecast, price_metrics, score_forecasts


def test_metrics_against_hand_computed_values():
    pred = np.array([2.0, 4.0, 6.0])
    actual = np.array([1.0, 4.0, 8.0])
    m = price_metrics(pred, actual)
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 0 + 4) / 3))
    assert m["mae"] == pytest.approx(1.0)
    # R² = 1 - SSres/SStot; mean(actual)=13/3
    ss_tot = sum((a - 13 / 3) ** 2 for a in actual)
    assert m["r2"] == pytest.approx(1 - 5 / ss_tot)
    assert m["mape"] == pytest.approx(100 * (1 / 1 + 0 + 2 / 8) / 3)


def test_naive_persistence_repeats_the_last_close():
    assert naive_forecast(np.array([1.0, 2.0]), 3).tolist() == [[1, 1, 1], [2, 2, 2]]


def test_skill_is_relative_to_persistence_on_the_same_targets():
    actual = np.array([[10.0, 11.0], [12.0, 12.0]])
    last = np.array([9.0, 12.0])
    perfect = score_forecasts(actual, actual, last)
    assert perfect["skill_rmse"] == pytest.approx(1.0)
    same_as_naive = score_forecasts(naive_forecast(last, 2), actual, last)
    assert same_as_naive["skill_rmse"] == pytest.approx(0.0)
    assert same_as_naive["naive_rmse"] == same_as_naive["test_rmse"]
    assert "test_rmse_step_2" in same_as_naive


def test_non_finite_forecasts_are_divergence_and_register_nothing(tmp_path):
    import torch
    from helpers import predictable_prices

    from stockcast.config import ModelConfig, TrainConfig, WindowConfig
    from stockcast.errors import TrainingError
    from stockcast.evaluation.scorecard import evaluate_model
    from stockcast.modeling.recipe import fit_and_calibrate

    fit = fit_and_calibrate(predictable_prices(),
                            WindowConfig(sequence_length=10, min_windows_per_split=5),
                            ModelConfig(hidden_size=4, num_layers=1),
                            TrainConfig(epochs=1, progress=False, threads=1, device="cpu"))
    with torch.no_grad():  # weights blown up, as an exploding learning rate leaves them
        fit.result.model.head.bias[0] = 1e30
    with pytest.raises(TrainingError, match="not finite"):
        evaluate_model(fit, "TEST")
