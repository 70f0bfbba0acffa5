"""The local price store: the per-ticker cache (replaced only by validated downloads) and the
immutable snapshots of exactly what each run used. Every write is atomic."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from stockcast.data.files import COLUMNS
from stockcast.errors import CacheCorruptError
from stockcast.runtime import check_writable, path_inside, utc_stamp


def cache_path(data_dir: Path, ticker: str) -> Path:
    """The merged per-ticker cache file."""
    return path_inside(Path(data_dir) / "cache", f"{ticker}.parquet")


def read_cache(data_dir: Path, ticker: str) -> pd.DataFrame | None:
    """The cached prices for ``ticker``, None when there is no cache; CacheCorruptError if unreadable."""
    path = cache_path(data_dir, ticker)
    if not path.exists():
        return None
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise CacheCorruptError(
            f"the cache file {path} for {ticker} is corrupt ({type(exc).__name__}: {exc}). "
            "It was not used. Delete it and fetch again with --source yfinance."
        ) from exc
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing or frame.empty:
        raise CacheCorruptError(
            f"the cache file {path} for {ticker} is incomplete (missing {missing or 'rows'}). "
            "Delete it and fetch again with --source yfinance."
        )
    return frame[COLUMNS]


def _atomic_write_parquet(frame: pd.DataFrame, path: Path, home: Path) -> None:
    """Write via a temporary file and rename, so a killed run never leaves half a file; never
    through a link that leaves ``home`` (a link at ``path`` itself is replaced)."""
    check_writable(path, home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_cache(data_dir: Path, ticker: str, frame: pd.DataFrame) -> Path:
    """Replace the ticker's cache atomically."""
    path = cache_path(data_dir, ticker)
    _atomic_write_parquet(frame[COLUMNS], path, Path(data_dir))
    return path


def write_snapshot(data_dir: Path, ticker: str, frame: pd.DataFrame, source: str) -> Path:
    """Keep an immutable copy of exactly the prices a run used (never overwritten)."""
    path = path_inside(Path(data_dir) / "raw", ticker, f"{utc_stamp()}-{source}.parquet")
    # Written before validation, so keep whatever the source gave, bad values included.
    kept = frame[[c for c in COLUMNS if c in frame.columns]].copy()
    for col in kept.columns:
        if kept[col].dtype == object:
            kept[col] = kept[col].astype("string")
    _atomic_write_parquet(kept, path, Path(data_dir))
    os.chmod(path, 0o444)
    return path


def commit_to_cache(ticker: str, frame: pd.DataFrame, pending: bool,
                    data_dir: Path) -> Path | None:
    """Store a validated fresh download as the ticker's cache (atomically); None when the
    prices did not come from a download (nothing to commit)."""
    if not pending:
        return None
    return write_cache(data_dir, ticker, frame)
