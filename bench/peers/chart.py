"""The picture: persist latency per step over the run, one line per system.

Each line is the median of every ``window`` consecutive steps (warm-up
excluded), drawn at the window's last step, on a log y axis; a system that
stopped early (its per-step time grew past the budget) ends where it stopped,
marked with an x. Written with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

COLORS = {
    "loomdb_sqlite": "#1f77b4",
    "loomdb_postgres": "#17becf",
    "raw_apsw": "#7f7f7f",
    "raw_psycopg": "#bcbd22",
    "sqlite_saver": "#ff7f0e",
    "postgres_saver": "#d62728",
    "deeplake": "#9467bd",
}


def window_medians(ns: Sequence[int], window: int) -> tuple[np.ndarray, np.ndarray]:
    """(last step of each full window, median ms of the window)."""
    a = np.asarray(ns, dtype=np.float64) / 1e6
    k = len(a) // window
    if k == 0:
        return np.array([len(a)]), np.array([np.median(a)]) if len(a) else np.array([])
    med = np.median(a[: k * window].reshape(k, window), axis=1)
    return np.arange(1, k + 1) * window, med


def draw(
    series: list[tuple[str, str, Sequence[int], bool]], window: int, title: str, out: Path
) -> dict[str, list[float]]:
    """Plot ``(key, label, per-step ns, stopped early)`` series into ``out`` (PNG);
    returns the plotted window medians (ms) by key."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(11, 5.6), dpi=110)
    plotted: dict[str, list[float]] = {}
    for key, label, ns, stopped in series:
        if not len(ns):
            continue
        x, y = window_medians(ns, window)
        plotted[key] = [round(float(v), 4) for v in y]
        color = COLORS.get(key)
        ax.plot(x, y, label=label, color=color, linewidth=1.6)
        if stopped:
            ax.plot(x[-1:], y[-1:], marker="x", markersize=9, color=color)
            ax.annotate(
                f"stopped at {len(ns):,}",
                (x[-1], y[-1]),
                textcoords="offset points",
                xytext=(6, -4),
                fontsize=8,
                color=color,
            )
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("step")
    ax.set_ylabel(f"persist latency, ms (median of each {window} steps)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return plotted
