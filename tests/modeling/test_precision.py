"""Both precision branches on any CPU: the capability check is monkeypatched, and where the
CPU has no native bf16 the bf16 branch runs on PyTorch's own (emulated) kernels, since oneDNN
refuses a bf16 LSTM there. The suite itself trains in float32 (conftest pins it)."""

import numpy as np
import pytest
import torch

from stockcast.config import ModelConfig, TrainConfig
from stockcast.modeling import device
from stockcast.modeling.model import LSTMForecaster
from stockcast.modeling.trainer import train_model
from stockcast.modeling.windows import Split

CPU = torch.device("cpu")


@pytest.fixture(params=[True, False], ids=["bf16-cpu", "float32-cpu"])
def native_bf16(request, monkeypatch):
    """The CPU as each kind reports it: True = AVX512-BF16/AMX, False = AVX2-only."""
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: request.param)
    if request.param and not device.cpu_flags_have_bf16():
        with torch.backends.mkldnn.flags(enabled=False):  # oneDNN has no bf16 LSTM here
            yield True
    else:
        yield request.param


def _windows(n=240, seq=12, seed=0):
    rng = np.random.default_rng(seed)
    s = np.sin(np.arange(n + seq + 1) / 6.0) + 0.05 * rng.normal(size=n + seq + 1)
    x = s[np.arange(n)[:, None] + np.arange(seq)][..., None].astype(np.float32)
    y = s[np.arange(n) + seq][:, None].astype(np.float32)
    base = np.full_like(y, 0.5)
    cut = int(0.75 * n)
    return (Split(x[:cut], y[:cut], np.arange(cut), base[:cut]),
            Split(x[cut:], y[cut:], np.arange(cut, n), base[cut:]))


def test_mixed_precision_only_where_the_cpu_has_bf16(native_bf16):
    assert device.amp_dtype_for(CPU, False) is None
    assert device.amp_dtype_for(CPU, True) == (torch.bfloat16 if native_bf16 else None)
    assert device.amp_dtype_for(torch.device("mps"), True) is None


def test_training_takes_the_branch_the_cpu_reports(native_bf16):
    train, val = _windows()
    cfg = TrainConfig(epochs=4, batch_size=32, lr=1e-2, patience=4, progress=False,
                      device="cpu", threads=1)
    res = train_model(train, val, ModelConfig(hidden_size=8, num_layers=1, target="price"), cfg)
    assert res.amp_dtype == ("bfloat16" if native_bf16 else None)
    # Either branch learns (no tighter bound: bf16's 8-bit mantissa, and the native bf16
    # kernels were not measured here), and the weights stay float32.
    rmse = [h["val_rmse"] for h in res.history]
    assert all(np.isfinite(rmse)) and min(rmse[1:]) < rmse[0]
    assert all(p.dtype == torch.float32 for p in res.model.parameters())


def test_the_head_stays_float32_under_cpu_autocast(native_bf16):
    m = LSTMForecaster(input_size=1, hidden_size=8)
    x = torch.randn(4, 12, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=native_bf16):
        out = m(x)
    assert out.dtype == torch.float32
    if native_bf16:  # the LSTM really ran in bf16: its output differs from float32's
        assert not torch.equal(out, m(x))


def test_the_switch_forces_float32_whatever_the_cpu(monkeypatch):
    monkeypatch.setattr(device, "cpu_flags_have_bf16", lambda: True)
    for value, expected in (("1", False), ("0", True), ("", True)):
        monkeypatch.setenv(device.NO_BF16_ENV, value)
        device.cpu_has_native_bf16.cache_clear()
        try:
            assert device.cpu_has_native_bf16() is expected
            assert device.amp_dtype_for(CPU, True) == (torch.bfloat16 if expected else None)
        finally:
            device.cpu_has_native_bf16.cache_clear()
