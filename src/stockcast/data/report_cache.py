"""The exploratory data report, drawn once per data snapshot: nightly runs on unchanged
prices (a weekend, a re-run, a 100-ticker watchlist retried) reuse the figures instead of
redrawing five plots per ticker. Keyed by the prices' content digest and the window settings
the price plot shades; written to a temporary folder and renamed, so a half-drawn report is
never reused; the newest few per ticker are kept."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path

import pandas as pd

from stockcast.config import WindowConfig
from stockcast.data.exploration import build_report
from stockcast.runtime import path_inside

KEEP = 3  # reports kept per ticker


def report_for(frame: pd.DataFrame, ticker: str, digest: str, cache_dir: Path,
               window: WindowConfig) -> tuple[Path, bool]:
    """The folder holding the report of these prices (drawn now, or reused), and whether it
    was reused."""
    key = hashlib.sha256(f"{digest}|{window.model_dump_json()}".encode()).hexdigest()[:16]
    folder = path_inside(Path(cache_dir), ticker)
    target = folder / key
    if target.is_dir():  # only ever a finished report (renamed into place whole)
        target.touch()  # recently used: kept by the pruning below
        return target, True
    folder.mkdir(parents=True, exist_ok=True)
    draft = folder / f".{key}.{uuid.uuid4().hex[:8]}"
    build_report(frame, ticker, draft, window)
    try:
        draft.rename(target)
    except OSError:  # another run drew the same report first: theirs is as good
        shutil.rmtree(draft, ignore_errors=True)
    _prune(folder)
    return target, False


def _prune(folder: Path) -> None:
    reports = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for old in reports[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
