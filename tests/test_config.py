import pytest

from stockcast.config import PipelineConfig, build_config
from stockcast.config_files import load_config
from stockcast.errors import ConfigError


def test_defaults_are_the_documented_ones():
    cfg = PipelineConfig()
    assert cfg.tickers == ("GOOG",)
    assert (cfg.window.sequence_length, cfg.window.horizon) == (60, 1)
    assert (cfg.window.train_fraction, cfg.window.val_fraction, cfg.window.test_fraction) == (
        0.70, 0.15, 0.15)
    assert (cfg.model.hidden_size, cfg.model.num_layers) == (50, 2)
    assert (cfg.promotion.alpha, cfg.promotion.min_pairs, cfg.promotion.loss) == (
        0.05, 30, "interval_score")
    assert cfg.train.refit


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"train": {"epochs": -1}}, "train.epochs"),
        ({"window": {"horizon": 0}}, "window.horizon"),
        ({"window": {"train_fraction": 0.8, "val_fraction": 0.15, "test_fraction": 0.15}},
         "window"),
        ({"train": {"device": "tpu"}}, "train.device"),
        ({"model": {"hiden_size": 3}}, "model.hiden_size"),
        ({"data": {"source": "csv"}}, "data"),
    ],
)
def test_invalid_config_names_the_field(values, field):
    with pytest.raises(ConfigError) as err:
        build_config(values)
    assert field in str(err.value)


def test_bad_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)


def test_yaml_and_overrides_merge(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 7\n  lr: 0.01\ntickers: [msft]\n")
    cfg = load_config(path, {"train": {"epochs": 3}})
    assert cfg.train.epochs == 3 and cfg.train.lr == 0.01
    assert cfg.tickers == ("MSFT",)


def test_flat_params_use_dotted_names():
    flat = PipelineConfig().flat()
    assert flat["model.hidden_size"] == 50
    assert flat["train.lr"] == 1e-3
    assert flat["window.sequence_length"] == 60


def test_the_shipped_config_files_are_true():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    # configs/example.yaml documents every key with its default: it must equal the defaults.
    assert load_config(root / "configs" / "example.yaml") == PipelineConfig()
    tiny = load_config(root / "configs" / "tiny.yaml")
    assert tiny.train.epochs <= 3 and tiny.model.hidden_size < PipelineConfig().model.hidden_size


def test_the_same_ticker_twice_runs_once_in_order():
    assert PipelineConfig(tickers=["goog", "IBM", "GOOG", "ibm", "AAPL"]).tickers == (
        "GOOG", "IBM", "AAPL")


@pytest.mark.parametrize("value, message", [("", "set but empty"), ("   ", "set but empty"),
                                            ("k\udcff", "not valid UTF-8")])
def test_a_model_key_that_would_fail_open_is_refused(monkeypatch, value, message):
    from stockcast.errors import ConfigError
    from stockcast.runtime import resolve_runtime

    monkeypatch.setenv("STOCKCAST_MODEL_KEY", value)
    with pytest.raises(ConfigError, match=message):
        resolve_runtime(PipelineConfig(), "sqlite:////tmp/x.db")


def test_a_model_key_of_any_text_is_used(monkeypatch):
    from stockcast.runtime import resolve_runtime

    monkeypatch.setenv("STOCKCAST_MODEL_KEY", "clé-ü-🔑")
    key = resolve_runtime(PipelineConfig(), "sqlite:////tmp/x.db").tracking.model_key
    assert key.get_secret_value() == "clé-ü-🔑"


@pytest.mark.parametrize("days", [-5, 0])
def test_flow_parameters_are_bounded_like_the_cli(days):
    from flows.forecast import forecast_pipeline
    from stockcast.errors import ConfigError

    with pytest.raises(ConfigError, match="days must be a whole number of at least 1"):
        forecast_pipeline.fn(days=days)


@pytest.mark.parametrize("hidden,layers,bidirectional,horizon", [(50, 2, False, 1), (8, 3, True, 5),
                                                                 (33, 1, False, 3)])
def test_the_network_size_is_worked_out_before_it_is_built(hidden, layers, bidirectional, horizon):
    from stockcast.model_size import model_size
    from stockcast.modeling.model import LSTMForecaster

    net = LSTMForecaster(input_size=7, hidden_size=hidden, num_layers=layers,
                         bidirectional=bidirectional, horizon=horizon)
    assert model_size(7, hidden, layers, bidirectional, horizon, 60, 96).parameters == sum(
        p.numel() for p in net.parameters())


def test_an_oversized_network_is_refused_by_the_config_naming_what_to_lower():
    with pytest.raises(ConfigError, match=r"6,175,408,130 parameters .* lower model.hidden_size"):
        build_config({"model": {"hidden_size": 4096, "num_layers": 16, "bidirectional": True}})
    with pytest.raises(ConfigError, match=r"GiB of activations, .* lower train.batch_size"):
        build_config({"train": {"batch_size": 65536}, "window": {"sequence_length": 500},
                      "model": {"hidden_size": 512}})
    build_config({"model": {"hidden_size": 512, "num_layers": 4}})  # large, and allowed


@pytest.mark.parametrize(("cores", "tickers", "spare", "expected"), [
    (2, 1, 1, 1),    # one ticker in the flow: a core left to Prefect's engine and server
    (2, 1, 0, 2),    # outside the flow (a backtest): every core
    (16, 1, 1, 15),
    (2, 3, 1, 1),    # several at once share every core, one thread each at least
    (8, 2, 1, 4),
    (1, 1, 1, 1),    # never fewer than one thread
])
def test_auto_threads_leave_a_core_to_the_flow_only_for_a_single_training(
        monkeypatch, cores, tickers, spare, expected):
    from stockcast.runtime import threads_per_training

    monkeypatch.setattr("os.cpu_count", lambda: cores)
    cfg = PipelineConfig.model_validate({"tickers": [f"T{i}" for i in range(tickers)],
                                         "orchestration": {"max_workers": 2}})
    assert threads_per_training(cfg, spare).train.threads == expected
    pinned = cfg.model_copy(update={"train": cfg.train.model_copy(update={"threads": 3})})
    assert threads_per_training(pinned, spare).train.threads == 3  # an explicit count is kept
