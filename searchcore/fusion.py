"""Fusing ranked lists from several retrievers into one.

Reciprocal-rank fusion (Cormack et al., 2009) scores an item by the sum over lists of
``weight / (k + rank)``: it needs no score calibration, so a cosine similarity and a
BM25 score, which live on unrelated scales, combine safely. Weighted fusion instead
min-max normalises each list's scores to [0, 1] and sums them with weights; it keeps
the size of score gaps, and loses robustness when one list's scores are all close.
Items missing from a list get nothing from it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

__all__ = ["rrf", "weighted", "RRF_K"]

RRF_K = 60


def rrf(
    rankings: Sequence[Sequence[Hashable]],
    k: int = RRF_K,
    weights: Sequence[float] | None = None,
    depth: int | None = None,
) -> dict[Hashable, float]:
    """Reciprocal-rank fusion of best-first rankings; returns item -> fused score.

    With ``depth``, only each list's first ``depth`` ranks score (items below them count
    0), so fetching the lists deeper (the next page) never changes a fused score."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[Hashable, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            gain = weight / (k + rank) if depth is None or rank <= depth else 0.0
            fused[item] = fused.get(item, 0.0) + gain
    return fused


def weighted(
    scored: Sequence[dict[Hashable, float]], weights: Sequence[float] | None = None, depth: int | None = None
) -> dict[Hashable, float]:
    """Sum of min-max normalised scores; returns item -> fused score in [0, sum(weights)].

    With ``depth``, each list is normalised on its ``depth`` best scores (items below
    them count 0), so a list fetched deeper gives its first ``depth`` items the same
    fused scores as a list of exactly ``depth`` would."""
    weights = weights or [1.0] * len(scored)
    fused: dict[Hashable, float] = {}
    for scores, weight in zip(scored, weights, strict=True):
        if not scores:
            continue
        values = scores.values()
        high = max(values)
        # the depth-th best score (a list no longer than depth: its last)
        low = min(values) if depth is None or len(scores) <= depth else sorted(values, reverse=True)[depth - 1]
        span = high - low
        get = fused.get
        if span > 0:
            for item, score in scores.items():
                fused[item] = get(item, 0.0) + (weight * ((score - low) / span) if score > low else 0.0)
        else:
            for item, score in scores.items():
                fused[item] = get(item, 0.0) + (weight if score >= low else 0.0)
    return fused
