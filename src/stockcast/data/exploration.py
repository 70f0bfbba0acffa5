"""Exploratory data report for one ticker: figures a person looks at before trusting a model.

Plain functions: no Prefect, no MLflow. The training flow logs the folder as run artifacts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator
from scipy.stats import norm

from stockcast.config import WindowConfig
from stockcast.plot_style import Margins, new_figure, save, serialized
from stockcast.splits import split_bounds

TRADING_DAYS = 252


@dataclass
class EDAReport:
    """Where the report was written and its summary figures."""

    directory: Path
    figures: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, object] = field(default_factory=dict)

    def summary_text(self) -> str:
        """The summary table as aligned text."""
        width = max(len(k) for k in self.summary)
        return "\n".join(f"  {k:<{width}}  {v}" for k, v in self.summary.items())


def log_returns(frame: pd.DataFrame) -> pd.Series:
    """Daily log returns of Close, indexed by date (first day dropped: it has no return)."""
    close = frame.set_index("Date")["Close"].astype(float)
    return np.log(close / close.shift()).dropna()


def summarize(frame: pd.DataFrame, top_moves: int = 5) -> dict[str, object]:
    """Date range, rows, missing weekdays, largest one-day moves, annualised return and vol."""
    dates = pd.to_datetime(frame["Date"])
    close = frame["Close"].astype(float).to_numpy()
    simple = pd.Series(close[1:] / close[:-1] - 1, index=dates.iloc[1:].to_numpy())
    largest = simple.abs().sort_values(ascending=False).head(top_moves).index
    years = (dates.iloc[-1] - dates.iloc[0]).days / 365.25
    weekdays = pd.bdate_range(dates.iloc[0], dates.iloc[-1])
    lr = log_returns(frame)
    return {
        "first date": str(dates.iloc[0].date()),
        "last date": str(dates.iloc[-1].date()),
        "rows": len(frame),
        "missing weekdays (holidays included)": int(len(weekdays.difference(dates))),
        "largest one-day moves": ", ".join(
            f"{d.date()} {simple[d]:+.2%}" for d in largest),
        "largest move date": str(largest[0].date()),
        "largest move": float(simple[largest[0]]),
        "annualised return (CAGR)": float((close[-1] / close[0]) ** (1 / years) - 1)
        if years > 0 else float("nan"),
        "annualised volatility": float(lr.std(ddof=1) * np.sqrt(TRADING_DAYS)),
    }


def autocorrelation(series: pd.Series, lags: int = 20) -> np.ndarray:
    """Sample autocorrelation for lags 1..``lags`` (the usual biased estimator)."""
    x = series.to_numpy(dtype=float) - series.mean()
    denom = float(np.dot(x, x))
    return np.array([np.dot(x[k:], x[:-k]) / denom for k in range(1, lags + 1)])


@serialized
def plot_price(frame: pd.DataFrame, ticker: str, path: Path, window: WindowConfig | None) -> Path:
    """Adjusted close with 50/200-day moving averages, volume beneath, split boundaries marked."""
    df = frame.set_index("Date")
    fig, (ax, axv) = new_figure(2, 1, figsize=(11, 6.5), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(df.index, df["Close"], color="0.15", lw=1, label="close (adjusted)")
    ax.plot(df.index, df["Close"].rolling(50).mean(), color="tab:blue", lw=1, label="50-day MA")
    ax.plot(df.index, df["Close"].rolling(200).mean(), color="tab:red", lw=1, label="200-day MA")
    if window is not None:
        b = split_bounds(len(df), window)
        for idx, name in ((b.train_end, "val starts"), (b.val_end, "test starts")):
            if 0 < idx < len(df):
                ax.axvline(df.index[idx], color="tab:green", ls="--", lw=1)
                ax.annotate(name, (df.index[idx], ax.get_ylim()[1]), rotation=90, va="top",
                            ha="right", fontsize=8, color="tab:green")
    if df["Close"].max() > 20 * df["Close"].min():
        ax.set_yscale("log")  # a long history that rose many-fold stays readable
    ax.set_title(f"{ticker}: adjusted close, moving averages and train/val/test split")
    ax.set_ylabel("price (currency units" + (", log scale)" if ax.get_yscale() == "log" else ")"))
    ax.legend(loc="upper left")
    # A filled step line, not thousands of bar patches (bars take seconds to draw).
    axv.fill_between(df.index, df["Volume"], step="mid", color="0.5", lw=0)
    axv.set_ylabel("volume (shares)")
    axv.set_xlabel("date")
    axv.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    return save(fig, path)


@serialized
def plot_return_distribution(frame: pd.DataFrame, ticker: str, path: Path) -> Path:
    """Histogram of daily log returns against a fitted normal, log scale so tails show."""
    r = log_returns(frame)
    mu, sigma = r.mean(), r.std(ddof=1)
    fig, ax = new_figure(figsize=(8, 4.8))
    # One filled outline, not 80 bar patches (a third of this figure's drawing time).
    density, _, _ = ax.hist(r, bins=80, density=True, histtype="stepfilled", color="tab:blue",
                            alpha=0.6, label="daily log returns")
    grid = np.linspace(r.min(), r.max(), 400)
    pdf = norm.pdf(grid, loc=mu, scale=sigma)
    ax.plot(grid, pdf, color="tab:red", lw=1.5, label=f"normal fit (sd {sigma:.3%})")
    ax.set_yscale("log")
    ax.set_ylim(max(pdf.min(), 1e-3), max(density.max(), pdf.max()) * 2)
    ax.set(title=f"{ticker}: distribution of daily log returns (log density)", xlabel="daily log return",
           ylabel="density")
    ax.legend()
    return save(fig, path)


@serialized
def plot_returns_by_year(frame: pd.DataFrame, ticker: str, path: Path) -> Path:
    """Box plots of daily returns per calendar year."""
    r = log_returns(frame)
    years = sorted(set(r.index.year))
    fig, ax = new_figure(figsize=(max(8, 0.6 * len(years)), 4.8),
                         margins=Margins(bottom=0.9))  # labels turned 45 degrees
    ax.boxplot([r[r.index.year == y].to_numpy() * 100 for y in years], tick_labels=years,
               showfliers=True, flierprops={"markersize": 2})
    ax.set(title=f"{ticker}: daily log returns by year", xlabel="year",
           ylabel="daily log return (%)")
    ax.tick_params(axis="x", rotation=45)
    return save(fig, path)


@serialized
def plot_volatility(frame: pd.DataFrame, ticker: str, path: Path, days: int = 30) -> Path:
    """Rolling annualised volatility of daily log returns."""
    vol = log_returns(frame).rolling(days).std() * np.sqrt(TRADING_DAYS) * 100
    fig, ax = new_figure(figsize=(11, 4))
    ax.plot(vol.index, vol, color="tab:purple", lw=1)
    ax.set(title=f"{ticker}: rolling {days}-day annualised volatility", xlabel="date",
           ylabel="volatility (% per year)")
    return save(fig, path)


@serialized
def plot_autocorrelation(frame: pd.DataFrame, ticker: str, path: Path, lags: int = 20) -> Path:
    """ACF of returns and of absolute returns (volatility clustering), 95% band."""
    r = log_returns(frame)
    band = 1.96 / np.sqrt(len(r))
    fig, axes = new_figure(1, 2, figsize=(11, 4), sharey=True)
    for ax, series, title in ((axes[0], r, "returns"), (axes[1], r.abs(), "absolute returns")):
        ax.bar(np.arange(1, lags + 1), autocorrelation(series, lags), color="tab:blue")
        ax.axhspan(-band, band, color="0.8", alpha=0.6, label="95% band (white noise)")
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_title(f"{ticker}: autocorrelation of {title}")
        ax.set_xlabel("lag (trading days)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("autocorrelation")
    axes[0].legend()
    return save(fig, path)


def _readable(value):
    """A value for a person: floats to 4 significant digits (the JSON keeps them all)."""
    return f"{value:.4g}" if isinstance(value, float) else value


def summary_files(summary: dict[str, object], ticker: str) -> dict[str, str]:
    """``summarize``'s summary as ``summary.json`` and ``summary.md`` texts."""
    rows = "\n".join(f"| {k} | {_readable(v)} |" for k, v in summary.items())
    return {"summary.json": json.dumps(summary, indent=2),
            "summary.md": f"# {ticker} data summary\n\n| item | value |\n|---|---|\n{rows}\n"}


def build_report(frame: pd.DataFrame, ticker: str, out_dir: Path,
                 window: WindowConfig | None = None) -> EDAReport:
    """Write every figure and the summary (JSON + Markdown) for a validated price frame."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = frame.reset_index(drop=True)
    report = EDAReport(out)
    report.figures = {
        "price": plot_price(frame, ticker, out / "price_history.png", window),
        "returns": plot_return_distribution(frame, ticker, out / "return_distribution.png"),
        "by_year": plot_returns_by_year(frame, ticker, out / "returns_by_year.png"),
        "volatility": plot_volatility(frame, ticker, out / "rolling_volatility.png"),
        "acf": plot_autocorrelation(frame, ticker, out / "autocorrelation.png"),
    }
    report.summary = summarize(frame)
    for name, text in summary_files(report.summary, ticker).items():
        (out / name).write_text(text)
    return report
