"""A grouped bar chart of evaluation results (matplotlib, drawn off screen)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["bar_chart"]


def bar_chart(results, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from searchcore.evaluate import METRICS

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    width = 0.8 / max(1, len(results))
    x = np.arange(len(METRICS))
    for i, result in enumerate(results):
        values = [result.metrics[m] for m in METRICS]
        bars = ax.bar(x + (i - (len(results) - 1) / 2) * width, values, width, label=result.label)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(x, METRICS)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
