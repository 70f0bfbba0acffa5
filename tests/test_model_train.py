import math

import numpy as np
import pytest
import torch

from stockcast.config import ModelConfig, TrainConfig
from stockcast.errors import TrainingError
from stockcast.features import SeriesTransformer
from stockcast.model import LSTMForecaster
from stockcast.train import resolve_device, train_model

FAST = TrainConfig(epochs=3, batch_size=32, progress=False, threads=1, device="cpu")


@pytest.mark.parametrize("layers,bidir", [(1, False), (2, False), (3, True)])
def test_forward_shapes(layers, bidir):
    m = LSTMForecaster(input_size=5, hidden_size=7, num_layers=layers, bidirectional=bidir,
                       horizon=4, dropout=0.1)
    assert m(torch.zeros(3, 11, 5)).shape == (3, 4)
    assert m.lstm.bidirectional is bidir and m.lstm.num_layers == layers


def test_zero_init_head_starts_at_persistence():
    m = LSTMForecaster(zero_init_head=True)
    assert torch.all(m(torch.randn(4, 20, 1)) == 0)


def sine_windows(n=400, seq=20, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n + seq + 1)
    s = np.sin(t / 6.0) + 0.05 * rng.normal(size=t.size)
    idx = np.arange(n)[:, None] + np.arange(seq)
    x = s[idx][..., None].astype(np.float32)
    y = s[np.arange(n) + seq][:, None].astype(np.float32)
    return x[:300], y[:300], x[300:], y[300:]


def test_tiny_model_loss_decreases_on_a_sine():
    xt, yt, xv, yv = sine_windows()
    res = train_model(xt, yt, xv, yv, ModelConfig(hidden_size=16, num_layers=1, target="price"),
                      TrainConfig(epochs=15, batch_size=32, lr=1e-2, progress=False, device="cpu",
                                  patience=15))
    losses = [h["val_loss"] for h in res.history]
    assert losses[-1] < 0.2 * losses[0]
    assert set(res.history[0]) == {"train_loss", "val_loss", "val_rmse", "val_mae", "val_r2"}


def test_seeded_training_is_deterministic_on_cpu():
    xt, yt, xv, yv = sine_windows()
    cfgm = ModelConfig(hidden_size=8, num_layers=2, target="price")
    a = train_model(xt, yt, xv, yv, cfgm, FAST)
    b = train_model(xt, yt, xv, yv, cfgm, FAST)
    assert a.history == b.history
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_early_stopping_restores_the_best_weights():
    xt, yt, xv, yv = sine_windows()
    # Validation targets the model cannot learn: val loss stops improving almost at once.
    rng = np.random.default_rng(1)
    yv_noise = rng.normal(size=yv.shape).astype(np.float32) * 5
    seen = []
    res = train_model(xt, yt, xv, yv_noise, ModelConfig(hidden_size=8, num_layers=1, target="price"),
                      TrainConfig(epochs=40, batch_size=32, lr=1e-2, patience=2, progress=False,
                                  device="cpu"),
                      on_epoch=lambda e, m: seen.append((e, m["val_loss"])))
    assert res.stopped_early and len(res.history) < 40
    best = min(seen, key=lambda p: p[1])
    assert res.best_epoch == best[0]
    # The returned model scores exactly the best epoch's validation loss.
    with torch.no_grad():
        val = torch.mean((res.model(torch.as_tensor(xv)) - torch.as_tensor(yv_noise)) ** 2).item()
    assert math.isclose(val, best[1], rel_tol=1e-4)


def test_nan_loss_stops_training_with_a_clear_error():
    xt, yt, xv, yv = sine_windows()
    yt = yt.copy()
    yt[5] = np.nan
    with pytest.raises(TrainingError, match="diverged"):
        train_model(xt, yt, xv, yv, ModelConfig(hidden_size=4, target="price"), FAST)


def test_unavailable_device_is_refused():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(TrainingError, match="cuda"):
        resolve_device("cuda")
    assert resolve_device("auto").type in {"cpu", "mps"}


def test_log_return_reconstruction_from_last_close():
    t = SeriesTransformer(target="log_return", horizon=3)
    t.scaler = type("Id", (), {"mean_": np.array([0.0]), "scale_": np.array([1.0])})()
    returns = np.log(np.array([[1.1, 1.0, 0.5]]))
    prices = t.to_prices(returns, np.array([100.0]))
    np.testing.assert_allclose(prices, [[110.0, 110.0, 55.0]])


@pytest.mark.gpu
def test_cuda_training_uses_amp_and_cudnn():
    xt, yt, xv, yv = sine_windows()
    res = train_model(xt, yt, xv, yv, ModelConfig(hidden_size=32, target="price"),
                      TrainConfig(epochs=3, device="cuda", progress=False))
    assert res.device.startswith("cuda")
    assert res.amp_dtype in {"bfloat16", "float16"}
    assert torch.backends.cudnn.enabled


def test_cpu_mixed_precision_only_where_the_cpu_has_bf16():
    from stockcast.train import amp_dtype_for, cpu_has_native_bf16

    cpu = torch.device("cpu")
    assert amp_dtype_for(cpu, False) is None
    expected = torch.bfloat16 if cpu_has_native_bf16() else None
    assert amp_dtype_for(cpu, True) == expected
    assert amp_dtype_for(torch.device("mps"), True) is None


def test_head_stays_float32_under_autocast():
    m = LSTMForecaster(input_size=1, hidden_size=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(torch.randn(4, 12, 1))
    assert out.dtype == torch.float32
