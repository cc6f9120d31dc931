"""``ratings.png``: rating against temperature, one line per model, as the paper's Figure 1.

Left: Glicko-2 with error bars of one rating deviation (the paper's shaded bands); right: the
maximum-likelihood Elo with its 95% interval. Temperature on a log scale. Drawn with matplotlib's Agg
canvas directly (no pyplot, no display needed).
"""

from __future__ import annotations

from pathlib import Path


def plot_ratings(summary: dict, path: Path) -> Path | None:
    """Draw the figure from ``summarize``'s output; None (and no file) when nothing is rated."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rated = [r for r in summary["ratings"] if r["rated_games"]]
    if not rated:
        return None
    models = list(dict.fromkeys(r["model"] for r in rated))
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    glicko_ax, elo_ax = figure.subplots(1, 2, sharey=True)
    for model in models:
        rows = sorted((r for r in rated if r["model"] == model), key=lambda r: r["temperature"])
        ts = [max(r["temperature"], 1e-4) for r in rows]  # T = 0 is drawn at 1e-4 on the log axis
        g = [r["glicko2"]["rating"] for r in rows]
        rd = [r["glicko2"]["rd"] for r in rows]
        line = glicko_ax.errorbar(ts, g, yerr=rd, marker="o", capsize=3, label=model)
        finite = [(t, r["elo"]) for t, r in zip(ts, rows) if r["elo"]["rating"] is not None]
        if finite:
            xs = [t for t, _ in finite]
            ys = [e["rating"] for _, e in finite]
            low = [e["rating"] - e["low"] if e["low"] is not None else 0.0 for _, e in finite]
            high = [e["high"] - e["rating"] if e["high"] is not None else 0.0 for _, e in finite]
            elo_ax.errorbar(xs, ys, yerr=[low, high], marker="s", capsize=3, color=line.lines[0].get_color(),
                            label=model)
    for name, elo in summary["anchors"].items():
        for ax in (glicko_ax, elo_ax):
            ax.axhline(elo, color="grey", linewidth=0.8, linestyle=":")
        elo_ax.annotate(name, (1.0, elo), xycoords=("axes fraction", "data"), fontsize=7, color="grey",
                        ha="right", va="bottom")
    glicko_ax.set_title("Glicko-2 (error bars: 1 RD), as the paper's Figure 1")
    elo_ax.set_title("Maximum-likelihood Elo (95% interval)")
    for ax in (glicko_ax, elo_ax):
        ax.set_xscale("log")
        ax.set_xlabel("temperature")
        ax.grid(True, which="both", alpha=0.3)
    glicko_ax.set_ylabel("rating")
    glicko_ax.legend(loc="best", fontsize=8)
    figure.savefig(path, dpi=120)
    return path
