"""Headless, thread-safe figures for every module that draws.

Figures are plain ``matplotlib.figure.Figure`` objects (no pyplot: no global figure manager,
no GUI backend, nothing to set at import). Text layout (mathtext) is still process-global
and not thread-safe, and the flows draw from several task threads at once, so every plotting
function runs under one lock.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import matplotlib
from matplotlib.figure import Figure

P = ParamSpec("P")
R = TypeVar("R")
_LOCK = threading.RLock()
# One house style for every figure, instead of repeating it per plot.
STYLE = {"axes.grid": True, "grid.alpha": 0.3, "figure.dpi": 110}


def serialized(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a plotting function under the process-wide matplotlib lock, in the house style."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _LOCK, matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def new_figure(*args: int, figsize: tuple[float, float], **kwargs):
    """A figure and its axes, like ``pyplot.subplots`` but without pyplot's global state."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


# zlib level 1 instead of Pillow's 6: the four figures of a run written in 0.83 s instead of
# 1.5 s, for files 9 % larger (measured on a 2-core AVX-512 Xeon; every promoted version of a
# cold night draws them).
PNG_OPTIONS = {"compress_level": 1}


def save(fig: Figure, path) -> Path:
    """Lay out and write a figure as PNG, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, pil_kwargs=PNG_OPTIONS)
    return path
