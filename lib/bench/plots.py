"""Accuracy against latency: every file as a point, the Pareto front as a line."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure


def pareto_front(latency: np.ndarray, error: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both (lower latency and lower error),
    sorted by latency."""
    order = np.lexsort((error, latency))
    front, best = [], np.inf
    for index in order:
        if error[index] < best:
            front.append(index)
            best = error[index]
    return np.array(front, dtype=int)


def nme_ticks(low: float, high: float) -> list[float]:
    """Tick values (NME %) for a log axis spanning ``low`` to ``high``: round values from 4 to
    60 %, or, when fewer than three of them fall in the span (files within tenths of a point of
    one another), about five evenly spaced round values inside it."""
    round_values = [4, 5, 6, 7, 8, 10, 15, 20, 30, 40, 60]
    if sum(low <= value <= high for value in round_values) >= 3:
        return round_values
    return [round(float(value), 6) for value in ticker.MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high) if low <= value <= high]


def pareto_figure(table: pd.DataFrame, latency_column: str = "litert_ms_t2", references: pd.DataFrame | None = None) -> Figure:
    """NME (%) against LiteRT latency, one marker per precision and one colour per network
    (``model``: the student, its pruned variants), labelled by input size; each row of
    ``references`` (no NME on these landmarks) as a vertical line at its latency."""
    figure, ax = plt.subplots(figsize=(6, 4))
    for _, reference in references.iterrows() if references is not None else ():
        ax.axvline(reference[latency_column], color="grey", ls=":", lw=1)
        ax.annotate(
            reference["name"],
            (reference[latency_column], 0.98),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=7,
            ha="right",
            va="top",
            color="grey",
        )
    markers = dict(zip(sorted(table["precision"].unique()), "osD^vP*X", strict=False))
    colours = {model: f"C{i}" for i, model in enumerate(dict.fromkeys(table["model"]))}
    for (model, precision), group in table.groupby(["model", "precision"], sort=False):
        ax.scatter(group[latency_column], 100 * group["nme"], marker=markers[precision], color=colours[model], s=40)
        for _, row in group.iterrows():
            ax.annotate(str(row["input_size"]), (row[latency_column], 100 * row["nme"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    front = pareto_front(table[latency_column].to_numpy(), table["nme"].to_numpy())
    ax.plot(table[latency_column].to_numpy()[front], 100 * table["nme"].to_numpy()[front], "k--", lw=1, label="Pareto front")
    threads = latency_column.rsplit("_t", 1)[-1]
    ax.set(xlabel=f"LiteRT latency, ms ({threads} thread{'' if threads == '1' else 's'})", ylabel="NME (%, log scale)", title="accuracy against latency")
    ax.set_yscale("log")  # the files worth shipping differ by tenths of a point, the others by tens
    ax.yaxis.set_major_formatter(ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_yticks(nme_ticks(100 * table["nme"].min(), 100 * table["nme"].max()))
    ax.grid(alpha=0.3)
    for model, colour in colours.items():
        ax.scatter([], [], color=colour, marker="s", label=model)
    for precision, marker in markers.items():
        ax.scatter([], [], color="grey", marker=marker, label=precision)
    ax.legend(fontsize=7, ncols=2)
    figure.tight_layout()
    return figure
