"""Reading a YAML config file within bounds, then validating it into a PipelineConfig."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from stockcast.config import PipelineConfig, build_config, merge
from stockcast.errors import ConfigError


def load_config(path: Path | str | None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read a YAML config file (optional) and apply nested overrides on top of it."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; pass an existing YAML file")
        loaded = _read_yaml(path)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"config file {path} must hold a mapping of sections (data:, train:, ...), "
                f"got {type(loaded).__name__}"
            )
        values = loaded
    return build_config(merge(values, overrides or {}))


MAX_CONFIG_BYTES = 1_000_000
MAX_YAML_ALIASES = 100


def _read_yaml(path: Path) -> Any:
    """Parse a config file within bounds: a size limit, and few aliases (a "billion laughs"
    file expands exponentially through aliases; a real config needs none)."""
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is {size:,} bytes; a config is a few hundred "
                          f"(limit {MAX_CONFIG_BYTES:,}). Pass the right file.")
    text = path.read_text(errors="replace")
    try:
        aliases = sum(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=yaml.SafeLoader))
        if aliases > MAX_YAML_ALIASES:
            raise ConfigError(f"config file {path} uses {aliases} YAML aliases (limit "
                              f"{MAX_YAML_ALIASES}); write the values out instead")
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {str(exc)[:300]}") from None
