"""The one shape of a search's answer: what ``searchctl query --json``, ``GET|POST /search``,
the MCP ``search`` tool and the Python API all give.

``hit_object`` turns a ``Hit`` into a plain dict (JSON types only), ``result_object`` a
whole answer: the query, the page (``k``, ``offset``, ``more``), the hits, and the counts
of their labels, kinds and folders. The daemon's schema (``searchd.schemas.HitOut``)
documents these fields and a test keeps both in step; nothing else renders a hit.

A hit's ``relpath`` (with ``#key`` for a record of a JSON/JSONL file: ``handle``) is what
``read`` takes back to show more of the file; ``url`` is where a running searchd serves it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import quote

from .options import SearchOptions
from .places import Places
from .search import Hit, Searcher, facets
from .snippets import snippet

__all__ = ["SNIPPET_CHARS", "hit_object", "passage_object", "result_object", "search_results"]

# The longest snippet of a hit, in characters.
SNIPPET_CHARS = 300


def passage_object(hit: Hit, query: str) -> dict:
    """One passage of a hit: its chunk, score, lines and the snippet around the query's words."""
    lang = (hit.metadata or {}).get("lang")
    found = snippet(hit.text, query, SNIPPET_CHARS, lang if isinstance(lang, str) else None)
    return {
        "chunk_id": hit.chunk_id,
        "score": hit.score,
        "lines": list(hit.lines),
        "snippet": found.text,
        "highlights": [list(span) for span in found.highlights],
    }


def hit_object(hit: Hit, rank: int, *, query: str, places: Places, explain: bool) -> dict:
    """``hit`` as every surface gives it (see ``searchd.schemas.HitOut`` for each field)."""
    best = passage_object(hit, query)
    relative = places.relative(hit.path)
    shown = relative or hit.path
    return {
        "rank": rank,
        "chunk_id": hit.chunk_id,
        "score": hit.score,
        "path": hit.path,
        "relpath": shown,
        "handle": f"{shown}#{hit.key}" if hit.key else shown,
        "url": "/files/" + quote(relative) if relative else None,
        "thumbnail": "/thumbnails/" + quote(relative) if relative and hit.kind == "image" else None,
        "kind": hit.kind,
        "key": hit.key,
        "source": hit.source,
        "title": hit.title,
        "lines": best["lines"],
        "snippet": best["snippet"],
        "highlights": best["highlights"],
        "passages": [passage_object(p, query) for p in hit.passages],
        "scores": dict(hit.scores) if explain else {},
        "labels": {facet: {"label": v["label"], "score": v["score"]} for facet, v in hit.labels.items()},
        "metadata": dict(hit.metadata),
    }


def _kinds_and_folders(hits: Sequence[dict]) -> tuple[dict[str, int], dict[str, int]]:
    """How many hits per file kind, and per first folder under the indexed folder ("." for
    files directly in it), most common first."""
    kinds = Counter(h["kind"] for h in hits if h["kind"])
    folders = Counter((h["relpath"].split("/", 1)[0] if "/" in h["relpath"] else ".") for h in hits if h["url"])
    return dict(kinds.most_common()), dict(folders.most_common())


def _languages(hits: Sequence[dict]) -> dict[str, int]:
    """How many hits per document language (``lang``), most common first."""
    found = Counter(lang for h in hits if isinstance(lang := (h["metadata"] or {}).get("lang"), str))
    return dict(found.most_common())


def result_object(
    query: str, found: Sequence[Hit], options: SearchOptions, *, places: Places, generation: int, took_ms: float
) -> dict:
    """One query's answer. ``found`` may hold one hit past the page (searched for k + 1):
    it only says that a next page has hits."""
    page = list(found[: options.k])
    hits = [
        hit_object(h, options.offset + rank, query=query, places=places, explain=options.explain)
        for rank, h in enumerate(page, 1)
    ]
    kinds, folders = _kinds_and_folders(hits)
    return {
        "query": query,
        "k": options.k,
        "offset": options.offset,
        "more": len(found) > options.k,
        "per_doc": options.per_doc,
        "mode": options.mode,
        "generation": generation,
        "took_ms": round(took_ms, 3),
        "hits": hits,
        "facets": facets(page),
        "kinds": kinds,
        "folders": folders,
        "languages": _languages(hits),
    }


def search_results(searcher: Searcher, queries: Sequence[str], options: SearchOptions) -> list[dict]:
    """Search ``queries`` and give each one's answer in the one shape (the Python API's way
    to get what the command line and the daemon give)."""
    started = time.perf_counter()
    found = searcher.run(list(queries), replace(options, k=options.k + 1))
    took = (time.perf_counter() - started) * 1000
    return [
        result_object(q, hits, options, places=searcher.places, generation=searcher.generation, took_ms=took)
        for q, hits in zip(queries, found)
    ]
