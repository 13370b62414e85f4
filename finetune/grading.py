"""Graded training examples: the index's own hybrid search is the teacher.

For each written query (and the chunk it was written for), the candidates are the
query's best chunks by the current dense model and by BM25 (the first ``depth`` of each,
other chunks of the query's own document left out), and each candidate gets the score
the index's hybrid search gives it: its cosine to the query and its BM25 score, each
normalised over that retriever's first FUSION_DEPTH hits as fusion does (a chunk BM25
did not rank counts 0 there), summed. The student learns these scores' margins
(``finetune.distill``), so a query whose chunk the teacher ranks below others teaches
that, and an easy or odd query costs little: nothing is filtered out.

``TEACHERS``: ``hybrid`` (the default), ``bm25`` or ``dense`` alone, to measure which
teaches best.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Written", "Graded", "TEACHERS", "grade", "write_graded", "read_graded"]

TEACHERS = ("hybrid", "bm25", "dense")
DEPTH = 30  # candidates taken from each retriever's list
_TEACHER_DEPTH = 100  # the list each retriever's scores are normalised over (fusion's depth)


@dataclass(frozen=True)
class Written:
    """A query written for a chunk (its id and its document's)."""

    query: str
    chunk_id: int
    doc_id: int


@dataclass(frozen=True)
class Graded:
    query: str
    positive: int  # the chunk the query was written for
    candidates: tuple[tuple[int, float], ...]  # (chunk id, teacher score), the positive first


def _normalised(listed: list[tuple[int, float]]) -> Callable[[float], float]:
    low, high = (listed[-1][1], listed[0][1]) if listed else (0.0, 1.0)
    return lambda s: (s - low) / (high - low) if high > low else 1.0


def grade(
    searcher,
    written: list[Written],
    *,
    teacher: str = "hybrid",
    depth: int = DEPTH,
    batch: int = 256,
    on_progress: Callable[[int], None] | None = None,
) -> list[Graded]:
    """The candidates of every written query, scored by ``teacher`` over ``searcher``'s index."""
    if teacher not in TEACHERS:
        raise ValueError(f"teacher {teacher!r}: use one of {TEACHERS}")
    records, engine = searcher.records, searcher.engine
    out: list[Graded] = []
    for start in range(0, len(written), batch):
        part = written[start : start + batch]
        vectors = searcher.query_embedder.embed([w.query for w in part])
        for item, vector in zip(part, vectors):
            dense = engine.dense(vector[None, :], _TEACHER_DEPTH, None)
            sparse = engine.keyword(item.query, _TEACHER_DEPTH, None)
            listed = [c for c, _ in dense[:depth]] + [c for c, _ in sparse[:depth]]
            candidates = list(dict.fromkeys([item.chunk_id, *listed]))
            doc_of = records.doc_ids_of(candidates)
            candidates = [c for c in candidates if c == item.chunk_id or doc_of.get(c) != item.doc_id]
            stored = records.vectors_of(candidates)
            if item.chunk_id not in stored or len(candidates) < 2:
                continue
            cosine, bm25 = _normalised(dense), _normalised(sparse)
            found = dict(sparse)
            scored = []
            for c in candidates:
                if c not in stored:
                    continue
                d = cosine(float(stored[c] @ vector))
                b = bm25(found[c]) if c in found else 0.0
                scored.append((c, round({"hybrid": d + b, "bm25": b, "dense": d}[teacher], 6)))
            out.append(Graded(item.query, item.chunk_id, tuple(scored)))
        if on_progress is not None:
            on_progress(len(part))
    return out


def write_graded(graded: list[Graded], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for g in graded:
            fh.write(json.dumps({"query": g.query, "positive": g.positive, "candidates": g.candidates}) + "\n")
    tmp.replace(path)


def read_graded(path: Path) -> list[Graded]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            out.append(
                Graded(row["query"], int(row["positive"]), tuple((int(c), float(s)) for c, s in row["candidates"]))
            )
    return out
