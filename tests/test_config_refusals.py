"""A malformed or absurd configuration is refused before any work: one message naming the
setting, exit 1 (2 for the argument parser), no traceback, and nothing fetched, trained or
written. No trained project is needed for that: an empty home shows that nothing was created
(no store, no cache), the strongest form of "nothing lost"."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from cli_project import fails_cleanly

from stockcast.cli import main


@pytest.fixture
def home(tmp_path, monkeypatch, fake_yf) -> Path:
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("STOCKCAST_HOME", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return root


def contents(home: Path) -> list[Path]:
    """Everything under the home but the log, which records the refusal."""
    return sorted(p.relative_to(home) for p in home.rglob("*") if "logs" not in p.parts)


def refused(capsys, args: list[str], home: Path, *needles: str) -> str:
    """Exit 1 with the needles in one message, and no store, cache or forecast created."""
    return fails_cleanly(capsys, args, home, *needles, state_of=contents)


def config(home: Path, name: str, settings: dict | str) -> str:
    path = home / name
    path.write_text(settings if isinstance(settings, str) else yaml.safe_dump(settings))
    return str(path)


@pytest.mark.parametrize(("content", "field"), [
    ("train:\n  epochs: -1\n", "train.epochs"),
    ("window:\n  horizon: 0\n", "window.horizon"),
    ("window:\n  train_fraction: 0.5\n", "sum to 1"),
    ("train:\n  device: gpu9\n", "train.device"),
    ("train: [epochs\n", "not valid YAML"),
])
def test_an_invalid_config_is_refused_before_anything_is_fetched(home, capsys, fake_yf,
                                                                  content, field):
    refused(capsys, ["run", "--config", config(home, "bad.yaml", content)], home, field)
    assert fake_yf.calls == []


def test_a_yaml_alias_bomb_is_refused_at_once(home, capsys):
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefghijkl", "bcdefghijklm", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    lines.append("train: *m")
    bomb = config(home, "bomb.yaml", "\n".join(lines) + "\n")
    started = time.monotonic()
    refused(capsys, ["run", "--config", bomb], home, "aliases")
    assert time.monotonic() - started < 10


def test_an_absurd_learning_rate_is_refused(home, capsys):
    refused(capsys, ["run", "--config", config(home, "lr.yaml", {"train": {"lr": 1e9}}),
                     "--source", "cache"], home, "train.lr", "less than or equal")


@pytest.mark.parametrize("section,key,value", [("window", "min_windows_per_split", 10**9),
                                               ("window", "sequence_length", 10**9),
                                               ("train", "epochs", 10**9)])
def test_absurd_sizes_are_refused_by_the_config(home, capsys, section, key, value):
    refused(capsys, ["run", "--config", config(home, "big.yaml", {section: {key: value}})],
            home, f"{section}.{key}", "less than or equal")


def test_negative_days_are_refused_by_the_parser(home, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["forecast", "--days", "-1"])
    assert exit_.value.code == 2 and "must be at least 1" in capsys.readouterr().err
    assert contents(home) == []


def test_an_empty_or_undecodable_model_key_is_refused(home, capsys, monkeypatch):
    monkeypatch.setenv("STOCKCAST_MODEL_KEY", "")
    refused(capsys, ["forecast", "--source", "cache"], home,
            "STOCKCAST_MODEL_KEY is set but empty", "verification off")
    monkeypatch.setenv("STOCKCAST_MODEL_KEY", "caf\udce9")  # a Latin-1 byte, UTF-8 locale
    refused(capsys, ["forecast", "--source", "cache"], home, "not valid UTF-8")
