"""A grouped bar chart of evaluation results (matplotlib, drawn off screen)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["bar_chart", "confusion_chart", "captioned_images"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_chart(results, path: Path, title: str = "") -> None:
    import numpy as np

    plt = _pyplot()

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


def confusion_chart(confusion: list[list[int]], labels: list[str], path: Path, title: str = "") -> None:
    """A confusion matrix: true labels down, predicted labels across, counts in the cells."""
    import numpy as np

    plt = _pyplot()
    matrix = np.asarray(confusion)
    size = max(4.0, 0.6 * len(labels) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size * 0.85), dpi=120)
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(col, row, str(value), ha="center", va="center", color="white" if value > threshold else "black")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def captioned_images(images: list, captions: list[str], names: list[str], path: Path) -> None:
    """Each image in a grid, with its caption (and file name) as the title."""
    import textwrap

    plt = _pyplot()
    columns = min(3, len(images))
    rows = (len(images) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption, name in zip(axes.flat, images, captions, names):
        ax.imshow(image)
        ax.set_title("\n".join(textwrap.wrap(caption or "(no caption)", 40)) + f"\n{name}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
