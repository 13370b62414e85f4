"""Searcher: a query string in, a ranked list of ``Hit`` out.

Modes: ``dense`` (cosine similarity over the FAISS cache), ``bm25`` (SQLite FTS5 with
Porter stemming over each chunk and its title) and ``hybrid`` (both, fused; the
default). Fusion is a weighted sum of min-max normalised scores by default, or
reciprocal-rank fusion; hybrid mode then feeds its best hits back into a second vector
search (pseudo-relevance feedback). The defaults below were chosen on development sets
(see the README).
An optional one-best-chunk-per-document mode serves judgements made per document, and
``Filters`` restrict every mode exactly (FAISS searches only the allowed ids; FTS5
matches only the allowed rows), so k hits come back whenever k matching chunks exist.

A hit's ``score`` is its cosine similarity to the query whenever the query was embedded
(dense and hybrid), its BM25 score in bm25 mode; the order is the mode's (fused) order,
and ``scores`` holds the explanation: each retriever's score and rank and the fused score
(with feedback, ``dense_feedback`` and its rank are the second vector search's, which
fusion used; ``dense`` stays the cosine to the query as typed).
The searcher refuses to embed a query with any model but the index's own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .config import Config
from .embedder import DEFAULT_MODEL, Embedder, canonical_model_name, default_backend
from .errors import BackendMismatchError, ModelMismatchError, UsageError
from .fusion import rrf, weighted
from .store import Store
from .vectors import load_current

__all__ = [
    "Hit",
    "Searcher",
    "Filters",
    "facets",
    "parse_labels",
    "index_model",
    "fts_query",
    "MODES",
    "FUSIONS",
    "DEFAULT_MODE",
]

MODES = ("dense", "bm25", "hybrid")
FUSIONS = ("rrf", "weighted")
DEFAULT_MODE = "hybrid"
DEFAULT_FUSION = "weighted"
# Candidates each retriever hands to fusion (documents when per_doc, else chunks).
FUSION_DEPTH = 100
# Weights of (dense, bm25) in fusion.
FUSION_WEIGHTS = (1.0, 1.0)
# Hybrid pseudo-relevance feedback: the query vector plus FEEDBACK_WEIGHT times the mean
# vector of the first FEEDBACK_DOCS fused hits is searched again (see the README).
FEEDBACK_DOCS = 2
FEEDBACK_WEIGHT = 0.5

# Words too common to help a keyword match; dropped from the BM25 query only.
_STOPWORDS = frozenset(
    """a an and are as at be but by can do does for from has have how i if in into is it its
    me my no not of on or our so such than that the their them then there these they this
    to was we were what when where which who whom why will with you your""".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)
_GLOB_CHARS = set("*?[")


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression that finds chunks with any of the words of ``text``.

    Every word is quoted, so no user text is FTS5 syntax: quotes, AND/OR/NOT/NEAR, ``*``,
    ``-``, ``:`` and brackets are just words or separators. None when nothing is left."""
    words = [w for w in dict.fromkeys(_WORD.findall(text.lower())) if w not in _STOPWORDS and w != "_"]
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


def _nanoseconds(seconds: float) -> int:
    """Unix seconds as SQLite-sized nanoseconds (clamped: any time past the range is "never")."""
    if math.isnan(seconds):
        raise UsageError("a time filter is not a number")
    return int(min(max(seconds * 1e9, -(2.0**63)), 2.0**63 - 1024))


@dataclass(frozen=True)
class Filters:
    """Which chunks a search may return; fields combine with AND.

    ``path``: a glob (``*.md``, ``notes/*``) or a prefix; a relative one matches at any
    folder boundary. ``kinds``: file kinds (text, markdown, html, pdf, json, jsonl) or
    extensions (``.py``). ``after``/``before``: file modification time, Unix seconds.
    ``where``: (field, value) pairs a record's metadata must hold (a list field holds a
    value when any element equals it). ``labels``: (facet or None, label) pairs from the
    index's classifiers; labels of one facet combine with OR, facets with AND."""

    path: str | None = None
    kinds: tuple[str, ...] = ()
    after: float | None = None
    before: float | None = None
    where: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str | None, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(
            self.path or self.kinds or self.after is not None or self.before is not None or self.where or self.labels
        )

    def sql(self) -> tuple[str, list[object]]:
        clauses, params = [], []
        if self.path:
            pattern = self.path
            is_glob = bool(_GLOB_CHARS & set(pattern))
            if not pattern.startswith("/"):
                pattern = "*/" + pattern.lstrip("./")
            if is_glob:
                clauses.append("files.path GLOB ?")
                params.append(pattern)
            else:
                clauses.append("(files.path GLOB ? OR files.path GLOB ?)")
                params += [pattern, pattern.rstrip("/") + "/*"]
        if self.kinds:
            parts = []
            for kind in self.kinds:
                if kind.startswith(".") or kind not in ("text", "markdown", "html", "pdf", "json", "jsonl"):
                    parts.append("files.path GLOB ?")
                    params.append("*." + kind.lstrip("."))
                else:
                    parts.append("files.kind = ?")
                    params.append(kind)
            clauses.append("(" + " OR ".join(parts) + ")")
        if self.after is not None:
            clauses.append("files.mtime_ns >= ?")
            params.append(_nanoseconds(self.after))
        if self.before is not None:
            clauses.append("files.mtime_ns < ?")
            params.append(_nanoseconds(self.before))
        for field_name, value in self.where:
            # The field is matched by key, never spliced into a JSON path: any key is safe.
            clauses.append(
                "EXISTS (SELECT 1 FROM json_each(documents.metadata) AS field WHERE field.key = ? AND "
                "(CAST(field.value AS TEXT) = ? OR (field.type = 'array' AND EXISTS "
                "(SELECT 1 FROM json_each(field.value) AS item WHERE CAST(item.value AS TEXT) = ?))))"
            )
            params += [field_name, str(value), str(value)]
        by_facet: dict[str | None, list[str]] = {}
        for facet, label in self.labels:
            by_facet.setdefault(facet, []).append(label)
        for facet, labels in by_facet.items():
            marks = ",".join("?" * len(labels))
            facet_sql = " AND labels.facet = ?" if facet is not None else ""
            clauses.append(
                "EXISTS (SELECT 1 FROM labels WHERE labels.doc_id = documents.id "
                f"AND labels.label IN ({marks}){facet_sql})"
            )
            params += [*labels, *([facet] if facet is not None else [])]
        return " AND ".join(clauses) or "1", params


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    score: float
    path: str
    lines: tuple[int, int]
    text: str
    scores: dict[str, float] = field(default_factory=dict)
    key: str = ""
    title: str | None = None
    doc_id: int = 0
    metadata: dict = field(default_factory=dict)
    labels: dict[str, dict] = field(default_factory=dict)  # facet -> {"label", "score"}

    @property
    def source(self) -> str:
        """The file path, with ``#record-id`` for a record of a JSON/JSONL file."""
        return f"{self.path}#{self.key}" if self.key else self.path

    def to_dict(self) -> dict:
        out = asdict(self)
        out["lines"] = list(self.lines)
        out["source"] = self.source
        return out


def parse_labels(items: Sequence[str]) -> tuple[tuple[str | None, str], ...]:
    """``LABEL`` or ``FACET=LABEL`` strings as (facet or None, label) pairs."""
    out = []
    for item in items:
        facet, sep, label = item.rpartition("=")
        if not label.strip() or (sep and not facet.strip()):
            raise UsageError(f"a label filter takes LABEL or FACET=LABEL, not {item!r}")
        out.append((facet.strip() if sep else None, label.strip()))
    return tuple(out)


def facets(hits: Sequence[Hit]) -> dict[str, dict[str, int]]:
    """facet -> label -> how many of ``hits`` carry it (most common first)."""
    counts: dict[str, dict[str, int]] = {}
    for hit in hits:
        for facet, value in hit.labels.items():
            counts.setdefault(facet, {})
            counts[facet][value["label"]] = counts[facet].get(value["label"], 0) + 1
    return {f: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for f, c in sorted(counts.items())}


def index_model(store: Store, requested: str | None) -> str:
    """The model to use with this index: its own, or ``requested`` if it is the same one."""
    recorded = store.get_meta("model")
    if recorded is None:
        return canonical_model_name(requested) if requested else DEFAULT_MODEL
    if requested is not None and canonical_model_name(requested) != recorded:
        raise ModelMismatchError(recorded, canonical_model_name(requested))
    return recorded


def index_backend(
    store: Store, requested: str | None, *, writing: bool, model: str | None = None
) -> tuple[str, str | None]:
    """(backend, notice) for this index: the requested one, else the index's own, else this
    machine's default. A writer may not mix backends in one index; a reader may (vectors of
    the same model agree to a cosine of about 0.99 across backends)."""
    recorded = store.get_meta("backend") or ("torch" if store.get_meta("dim") else None)
    if requested is not None:
        if writing and recorded is not None and requested != recorded:
            raise BackendMismatchError(recorded, requested)
        chosen, notice = requested, None
    elif recorded is not None:
        chosen, notice = recorded, None
    else:
        chosen, notice = default_backend()
        if chosen != "torch" and model is not None:
            from .embedder import model_location
            from .onnx_backend import OnnxUnsupported, pooling_config

            try:
                pooling_config(Path(model_location(model)))
            except (OnnxUnsupported, OSError, ValueError, KeyError) as exc:
                reason = str(exc).split(";")[0] if isinstance(exc, OnnxUnsupported) else "no ONNX export for it"
                chosen, notice = "torch", f"{reason}; using the torch backend"
    if chosen != "torch":
        from .onnx_backend import onnxruntime_available

        if not onnxruntime_available():
            if writing and recorded not in (None, "torch"):
                raise UsageError(
                    f"this index uses the {chosen} backend, which needs onnxruntime: pip install onnxruntime"
                )
            return (
                "torch",
                f"onnxruntime is not installed (pip install onnxruntime); using the torch backend, not {chosen}",
            )
    return chosen, notice


class Searcher:
    """Queries one committed generation of an index.

    The Searcher holds a read transaction on index.db for its whole life, so every search
    sees exactly the state its FAISS index was built from, whatever a writer commits
    meanwhile. Open a new Searcher to see newer generations.
    """

    def __init__(self, config: Config, embedder: Embedder | None = None):
        self.config = config
        self.notice: str | None = None  # e.g. why the backend fell back to torch
        self.store = Store.open(config.index_dir)
        try:
            model = index_model(self.store, config.model or (embedder.name if embedder else None))
            if embedder is None:
                backend, self.notice = index_backend(self.store, config.backend, writing=False, model=model)
                embedder = Embedder(model, backend=backend, cache_dir=config.cache_dir)
            self.embedder = embedder
            self.store.conn.execute("BEGIN")
            self.generation = self.store.generation
            self.counts = self.store.counts()
            self.vectors, self.rebuilt = load_current(self.store, config.index_dir)
            self.has_labels = self.store.conn.execute("SELECT 1 FROM labels LIMIT 1").fetchone() is not None
        except BaseException:
            self.store.close()
            raise

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        per_doc: bool = False,
        mode: str = DEFAULT_MODE,
        fusion: str = DEFAULT_FUSION,
        filters: Filters | None = None,
        feedback: bool = True,
    ) -> list[Hit]:
        return self.search_many(
            [query], k, per_doc=per_doc, mode=mode, fusion=fusion, filters=filters, feedback=feedback
        )[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        per_doc: bool = False,
        mode: str = DEFAULT_MODE,
        fusion: str = DEFAULT_FUSION,
        filters: Filters | None = None,
        feedback: bool = True,
    ) -> list[list[Hit]]:
        """Hits for each query; the queries are embedded in one batch. ``feedback``: in
        hybrid mode, search the vectors a second time with the query moved towards its
        best first-round hits (pseudo-relevance feedback)."""
        if any(not query or not query.strip() for query in queries):
            raise UsageError("the query is empty; give some words to search for")
        if k < 1:
            raise UsageError(f"k must be at least 1, not {k}")
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        if fusion not in FUSIONS:
            raise UsageError(f"unknown fusion {fusion!r}; use one of {', '.join(FUSIONS)}")
        if self.counts["chunks"] == 0:
            return [[] for _ in queries]
        allowed = None
        if filters:
            where, params = filters.sql()
            allowed = self.store.allow("allowed", where, params)
            if len(allowed) == 0:
                return [[] for _ in queries]
        dense = mode != "bm25" and self.vectors is not None and self.vectors.ntotal > 0
        query_vectors = self.embedder.embed(list(queries)) if dense else None
        out = []
        for i, query in enumerate(queries):
            vector = query_vectors[i : i + 1] if dense else None
            out.append(self._search(query, vector, k, per_doc, mode, fusion, allowed, feedback))
        return out

    # -- retrievers: best-first (chunk id, score), one per document when per_doc -----------

    def _doc_ids(self, chunk_ids: list[int]) -> dict[int, int]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self.store.conn.execute(f"SELECT id, doc_id FROM chunks WHERE id IN ({marks})", chunk_ids)
        return dict(rows.fetchall())

    def _collapse(self, pairs: list[tuple[int, float]], depth: int) -> tuple[list[tuple[int, float]], dict[int, int]]:
        docs = self._doc_ids([c for c, _ in pairs])
        seen: set[int] = set()
        out = []
        for chunk_id, score in pairs:
            doc = docs.get(chunk_id)
            if doc is None or doc in seen:
                continue
            seen.add(doc)
            out.append((chunk_id, score))
            if len(out) == depth:
                break
        return out, docs

    def _dense(self, vector: np.ndarray, depth: int, per_doc: bool, allowed) -> list[tuple[int, float]]:
        fetch = depth * 4 if per_doc else depth
        total = self.vectors.ntotal if allowed is None else len(allowed)
        while True:
            scores, ids = self.vectors.search(vector, fetch, allowed)
            pairs = [(int(i), float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]
            if not per_doc:
                return pairs[:depth]
            collapsed, _ = self._collapse(pairs, depth)
            if len(collapsed) >= depth or fetch >= total:
                return collapsed
            fetch *= 4

    def _bm25(self, query: str, depth: int, per_doc: bool, allowed) -> list[tuple[int, float]]:
        match = fts_query(query)
        if match is None:
            return []
        fetch = depth * 4 if per_doc else depth
        while True:
            pairs = self.store.bm25(match, fetch, "allowed" if allowed is not None else None)
            if not per_doc:
                return pairs
            collapsed, _ = self._collapse(pairs, depth)
            if len(collapsed) >= depth or len(pairs) < fetch:
                return collapsed
            fetch *= 4

    def _search(self, query, vector, k, per_doc, mode, fusion, allowed, feedback) -> list[Hit]:
        explain: dict[int, dict[str, float]] = {}
        if mode == "dense":
            ranked = self._dense(vector, k, per_doc, allowed) if vector is not None else []
            order = [c for c, _ in ranked]
            for rank, (c, score) in enumerate(ranked, 1):
                explain[c] = {"dense": score, "dense_rank": rank}
        elif mode == "bm25":
            ranked = self._bm25(query, k, per_doc, allowed)
            order = [c for c, _ in ranked]
            for rank, (c, score) in enumerate(ranked, 1):
                explain[c] = {"bm25": score, "bm25_rank": rank}
        else:
            depth = max(FUSION_DEPTH, k)
            dense = self._dense(vector, depth, per_doc, allowed) if vector is not None else []
            sparse = self._bm25(query, depth, per_doc, allowed)
            fused, best_chunk, explain, nearest = self._fuse([("dense", dense), ("bm25", sparse)], per_doc, fusion)
            if feedback and dense and fused:
                # Pseudo-relevance feedback: move the query vector towards the best fused
                # hits and search the vectors again; BM25's list is reused as it was.
                # Each fed-back item gives its chunk nearest to the query where it has one.
                top = sorted(fused, key=lambda item: -fused[item])[:FEEDBACK_DOCS]
                found = self.store.vectors_of([nearest.get(item, best_chunk[item]) for item in top])
                if found:
                    expanded = vector + FEEDBACK_WEIGHT * np.mean(list(found.values()), axis=0)
                    expanded = (expanded / np.linalg.norm(expanded)).astype(np.float32)
                    again = self._dense(expanded, depth, per_doc, allowed)
                    fused, best_chunk, explain, _ = self._fuse(
                        [("dense_feedback", again), ("bm25", sparse)], per_doc, fusion
                    )
            items = sorted(fused, key=lambda item: -fused[item])[:k]
            order = [best_chunk[item] for item in items]
            explain = {best_chunk[item]: {**explain[item], "fused": fused[item]} for item in items}
        return self._hits(order, explain, vector)

    def _fuse(self, lists, per_doc: bool, fusion: str):
        """Fused score, representative chunk and explanation of each item of named
        best-first (chunk id, score) lists, and each item's best chunk in the first list;
        items are documents when per_doc, so a document found by both retrievers through
        different chunks counts as found by both."""
        chunk_ids = [c for _, ranked in lists for c, _ in ranked]
        key_of = self._doc_ids(chunk_ids) if per_doc else {}
        key = (lambda c: key_of.get(c, -c)) if per_doc else (lambda c: c)
        explain: dict[int, dict[str, float]] = {}
        best_chunk: dict[int, int] = {}
        best_rank: dict[int, int] = {}
        first_list: dict[int, int] = {}
        for name, ranked in lists:
            for rank, (c, score) in enumerate(ranked, 1):
                item = key(c)
                info = explain.setdefault(item, {})
                info[name], info[f"{name}_rank"] = score, rank
                # The representative chunk: the one its own retriever ranked highest.
                if rank < best_rank.get(item, 1 << 30):
                    best_chunk[item], best_rank[item] = c, rank
                if name == lists[0][0]:
                    first_list.setdefault(item, c)
        if fusion == "rrf":
            fused = rrf([[key(c) for c, _ in ranked] for _, ranked in lists], weights=FUSION_WEIGHTS)
        else:
            fused = weighted([{key(c): s for c, s in ranked} for _, ranked in lists], weights=FUSION_WEIGHTS)
        return fused, best_chunk, explain, first_list

    def _hits(self, order: list[int], explain: dict[int, dict[str, float]], vector) -> list[Hit]:
        records = self.store.chunk_records(order)
        labels = self.store.labels_of([r.doc_id for r in records.values()]) if self.has_labels else {}
        # Dense mode already knows each hit's cosine; fetch vectors only for the rest.
        missing = [c for c in order if "dense" not in explain.get(c, {})]
        cosines = self._cosines(missing, vector) if vector is not None else {}
        hits = []
        for chunk_id in order:
            record = records.get(chunk_id)
            if record is None:  # cannot happen within one snapshot; never fatal
                continue
            scores = explain.get(chunk_id, {})
            if chunk_id in cosines:
                scores = {**scores, "dense": cosines[chunk_id]}
            score = scores["dense"] if vector is not None and "dense" in scores else scores.get("bm25", 0.0)
            hits.append(
                Hit(
                    chunk_id=chunk_id,
                    score=float(score),
                    path=record.path,
                    lines=(record.line_start, record.line_end),
                    text=record.text,
                    scores=scores,
                    key=record.key,
                    title=record.title,
                    doc_id=record.doc_id,
                    metadata=record.metadata,
                    labels=labels.get(record.doc_id, {}),
                )
            )
        return hits

    def _cosines(self, chunk_ids: list[int], vector: np.ndarray) -> dict[int, float]:
        """Exact cosine of each chunk to the query, from the stored vectors."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self.store.conn.execute(f"SELECT chunk_id, vector FROM vectors WHERE chunk_id IN ({marks})", chunk_ids)
        query = vector.reshape(-1)
        return {cid: float(np.frombuffer(blob, dtype=np.float32) @ query) for cid, blob in rows}
