"""Searcher: a query string in, a ranked list of ``Hit`` out.

Modes: ``dense`` (cosine similarity over the index's vectors), ``bm25`` (keywords:
Porter-stemmed terms of each chunk and its title) and ``hybrid`` (both, fused; the
default). Fusion is a weighted sum of min-max normalised scores by default, or
reciprocal-rank fusion; hybrid mode then feeds its best hits back into a second vector
search (pseudo-relevance feedback). The defaults below were chosen on development sets
(see the README).
An optional one-best-chunk-per-document mode serves judgements made per document, and
``Filters`` restrict every mode exactly (the engine searches only the allowed ids), so k
hits come back whenever k matching chunks exist. Where the chunks are searched is the
engine's business (``searchcore.engine``), what is stored the records' (``Records``),
both opened as one pinned generation by ``searchcore.snapshot``; what a search may be
asked is ``searchcore.options``.

A hit's ``score`` follows the list's order: the fused score in hybrid mode, the cosine
similarity in dense mode, the BM25 score in bm25 mode. ``scores`` holds the explanation:
each retriever's score and rank, the fused score, and the cosine to the query whenever the
query was embedded (with feedback, ``dense_feedback`` and its rank are the second vector
search's, which fusion used; ``dense`` stays the cosine to the query as typed).
Per-document results (``per_doc``) are the chunk list with each document's later chunks
dropped: the same order, one entry per document, each hit carrying the document's next best
chunks of that list as its ``passages``. ``offset`` passes over that many hits (documents
when per document) first: pages follow one another exactly, since a deeper list never
reorders what it passed.
The searcher refuses to embed a query with any model but the index's own.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .config import Config
from .engine import AllowList, Engine, Records
from .errors import NoSuchFieldError
from .fusion import rrf, weighted
from .models import TextEmbedder, index_backend, index_model, make_embedder
from .options import DEFAULT_FUSION, DEFAULT_MODE, Filters, SearchOptions, check_query
from .places import Places
from .snapshot import Snapshot, open_snapshot

__all__ = ["Hit", "Searcher", "facets", "FEEDBACK_DOCS", "FEEDBACK_WEIGHT"]

# Candidates each retriever hands to fusion (documents when per_doc, else chunks).
FUSION_DEPTH = 100
# Weights of (dense, bm25) in fusion.
FUSION_WEIGHTS = (1.0, 1.0)
# Hybrid pseudo-relevance feedback: the query vector plus FEEDBACK_WEIGHT times the mean
# vector of the first FEEDBACK_DOCS fused hits is searched again (see the README).
FEEDBACK_DOCS = 2
FEEDBACK_WEIGHT = 0.5
# Per-document results: passages of each document kept besides its best chunk.
MORE_PASSAGES = 2
# Hits asked of a retriever past the ones it needs, so that equal scores at the cut are
# ordered before it (see ``Searcher._settled``).
TIE_EXTRA = 8


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
    kind: str = ""  # the file's kind (markdown, pdf, ...)
    passages: tuple[Hit, ...] = ()  # per document: its next best chunks, best first

    @property
    def source(self) -> str:
        """The file path, with ``#record-id`` for a record of a JSON/JSONL file."""
        return f"{self.path}#{self.key}" if self.key else self.path

    def to_dict(self) -> dict:
        out = asdict(self)
        out["lines"] = list(self.lines)
        out["source"] = self.source
        out["passages"] = [p.to_dict() for p in self.passages]
        return out


def facets(hits: Sequence[Hit]) -> dict[str, dict[str, int]]:
    """facet -> label -> how many of ``hits`` carry it (most common first)."""
    counts: dict[str, dict[str, int]] = {}
    for hit in hits:
        for facet, value in hit.labels.items():
            counts.setdefault(facet, {})
            counts[facet][value["label"]] = counts[facet].get(value["label"], 0) + 1
    return {f: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for f, c in sorted(counts.items())}


Ranked = list[tuple[int, float]]


class Searcher:
    """Queries one committed generation of an index.

    The Searcher holds a read transaction on index.db for its whole life (on Milvus: it
    pins the published generation), so every search sees exactly the state its vectors
    were loaded from, whatever a writer commits meanwhile. Open a new Searcher to see
    newer generations. It never writes anything.
    """

    def __init__(
        self, config: Config, embedder: TextEmbedder | None = None, query_embedder: TextEmbedder | None = None
    ):
        self.config = config
        self.notice: str | None = None  # e.g. why the backend fell back to torch
        # index.db and the local engine, or a Milvus collection: one pinned generation
        self.snapshot: Snapshot = open_snapshot(config)
        self.records: Records = self.snapshot.records
        self.engine: Engine = self.snapshot.engine
        try:
            meta = self.records.meta()
            model = index_model(meta, config.model or (embedder.name if embedder else None))
            if embedder is None:
                backend, self.notice = index_backend(meta, config.backend, writing=False, model=model)
                embedder = make_embedder(model, backend, config.cache_dir)
            self.embedder = embedder
            # Queries go through the index's adapted query encoder where `adapt` gave it one
            # (the passages stay the index's own vectors), else through the same model.
            self.query_embedder = query_embedder or embedder
            if query_embedder is None and meta.query_model:
                self.query_embedder = self._query_encoder(meta.query_model, embedder)
            self.generation = self.records.generation
            self.counts = self.records.counts()
            self.rebuilt = self.engine.rebuilt  # no sound file of this generation: the vectors came from index.db
            self.has_labels = self.records.has_labels()
            self.places = Places.of(meta)  # paths relative to the indexed folder
        except BaseException:
            self.snapshot.close()
            raise

    def _query_encoder(self, recorded: str, embedder: TextEmbedder) -> TextEmbedder:
        """The query encoder the index records (a folder inside it, or a path); the
        index's own model, with a notice, where that folder cannot be found here (a
        daemon reading a Milvus collection from another machine)."""
        folder = Path(recorded) if Path(recorded).is_absolute() else Path(self.config.index_dir) / recorded
        if not folder.is_dir():
            self.notice = f"the adapted query encoder {recorded} is not here; queries use {embedder.name}"
            return embedder
        return make_embedder(str(folder), embedder.backend, self.config.cache_dir)

    def close(self) -> None:
        self.snapshot.close()

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
        options = SearchOptions(k, per_doc, mode, fusion, feedback, filters=filters or Filters())
        return self.run([query], options)[0]

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
        options = SearchOptions(k, per_doc, mode, fusion, feedback, filters=filters or Filters())
        return self.run(queries, options)

    def run(self, queries: Sequence[str], options: SearchOptions) -> list[list[Hit]]:
        """Hits for each query; the queries are embedded in one batch. ``options.feedback``:
        in hybrid mode, search the vectors a second time with the query moved towards its
        best first-round hits (pseudo-relevance feedback)."""
        for query in queries:
            check_query(query)
        if self.counts["chunks"] == 0:
            return [[] for _ in queries]
        allowed = None
        if options.filters:
            allowed = self.engine.allow(options.filters)
            if len(allowed) == 0:
                self._check_fields(options.filters)
                return [[] for _ in queries]
        dense = options.mode != "bm25" and self.engine.size > 0
        query_vectors = self.query_embedder.embed(list(queries)) if dense else None
        out = []
        for i, query in enumerate(queries):
            vector = query_vectors[i : i + 1] if query_vectors is not None else None
            out.append(self._search(query, vector, options, allowed))
        return out

    def _check_fields(self, filters: Filters) -> None:
        """A filter on a metadata field no document has is a mistake to name, not "no hits"."""
        if not filters.where:
            return
        fields = self.records.metadata_fields()
        if fields is None:
            return
        missing = next((name for name, _ in filters.where if name not in fields), None)
        if missing is not None:
            known = ", ".join(sorted(fields)[:20]) + (", ..." if len(fields) > 20 else "")
            raise NoSuchFieldError(
                f"no document has a field {missing[:100]!r} to filter on (where {missing[:100]}=...); "
                + (f"the fields are: {known}" if fields else "no document of this index has metadata fields")
            )

    # -- one ranked list of chunks; per document = that list with repeats dropped ----------

    def _search(
        self, query: str, vector: np.ndarray | None, options: SearchOptions, allowed: AllowList | None
    ) -> list[Hit]:
        start, end = options.offset, options.offset + options.k
        if not options.per_doc:
            order, explain = self._ranked(query, vector, options, allowed, end)
            return self._hits(order[start:end], explain, vector, options.mode)
        # The documents of the chunk list in its own order: walk deeper until enough
        # documents are found or the list runs out. Fusion normalises on the first
        # FUSION_DEPTH of each list whatever the depth, so a deeper walk never reorders
        # what it passed.
        want = max(4 * end, FUSION_DEPTH)
        while True:
            order, explain = self._ranked(query, vector, options, allowed, want)
            docs = self.records.doc_ids_of(order)
            chunks_of: dict[int, list[int]] = {}
            for c in order:
                if c in docs:
                    chunks_of.setdefault(docs[c], []).append(c)
            if len(chunks_of) >= end or len(order) < want:
                break
            want *= 4
        page = list(chunks_of.values())[start:end]  # dicts keep the order documents first appeared in
        more = [c for chunks in page for c in chunks[1 : 1 + MORE_PASSAGES]]
        # Each document's best chunk and its next ones are read in one go.
        found = self._hits([chunks[0] for chunks in page] + more, explain, vector, options.mode)
        by_id = {h.chunk_id: h for h in found}
        hits = [by_id[chunks[0]] for chunks in page if chunks[0] in by_id]
        if not more:
            return hits
        rest = {chunks[0]: chunks[1 : 1 + MORE_PASSAGES] for chunks in page}
        return [replace(h, passages=tuple(by_id[c] for c in rest[h.chunk_id] if c in by_id)) for h in hits]

    def _ranked(
        self, query: str, vector: np.ndarray | None, options: SearchOptions, allowed: AllowList | None, n: int
    ) -> tuple[list[int], dict[int, dict[str, float]]]:
        """Up to ``n`` chunk ids, best first in the mode's order, with each one's explanation."""
        explain: dict[int, dict[str, float]] = {}
        if options.mode in ("dense", "bm25"):
            if options.mode == "dense":
                ranked = self._dense(vector, n, allowed) if vector is not None else []
            else:
                ranked = self._keyword(query, n, allowed)
            for rank, (c, score) in enumerate(ranked, 1):
                explain[c] = {options.mode: score, f"{options.mode}_rank": rank}
            return [c for c, _ in ranked], explain
        depth = max(FUSION_DEPTH, n)
        dense = self._dense(vector, depth, allowed) if vector is not None else []
        sparse = self._keyword(query, depth, allowed)
        first = [("dense", dense), ("bm25", sparse)]
        feedback = options.feedback and bool(dense) and vector is not None
        # With feedback, the first fusion only picks the hits to feed back: no explanation.
        fused, explain = self._fuse(first, options.fusion, explained=not feedback)
        if feedback and fused and vector is not None:
            # Pseudo-relevance feedback: move the query vector towards the best fused
            # hits and search the vectors again; BM25's list is reused as it was.
            top = sorted(fused, key=lambda c: -fused[c])[:FEEDBACK_DOCS]
            found = self.engine.vectors(top)
            if found:
                expanded = vector + FEEDBACK_WEIGHT * np.mean(list(found.values()), axis=0)
                expanded = (expanded / np.linalg.norm(expanded)).astype(np.float32)
                again = self._dense(expanded, depth, allowed)
                fused, explain = self._fuse([("dense_feedback", again), ("bm25", sparse)], options.fusion)
            else:
                fused, explain = self._fuse(first, options.fusion)
        order = sorted(fused, key=lambda c: -fused[c])[:n]
        return order, {c: {**explain[c], "fused": fused[c]} for c in order}

    def _dense(self, vector: np.ndarray, n: int, allowed: AllowList | None) -> Ranked:
        return self._settled(self.engine.dense(vector, n + TIE_EXTRA, allowed), n)

    def _keyword(self, query: str, n: int, allowed: AllowList | None) -> Ranked:
        return self._settled(self.engine.keyword(query, n + TIE_EXTRA, allowed), n)

    def _settled(self, ranked: Ranked, n: int) -> Ranked:
        """The first ``n`` of a best-first list, equal scores in an order of their own: by
        record id, path and place in the file, never by chunk id or by the order an engine
        met them, which follow the order things were indexed in (BM25 ties are common:
        chunks of one length holding a query word once)."""
        tied: set[int] = set()
        for (a, score), (b, next_score) in zip(ranked, ranked[1:]):
            if score == next_score:
                tied.update((a, b))
        if not tied:
            return ranked[:n]
        places = self.records.places_of(sorted(tied))

        def order(item: tuple[int, float]) -> tuple:
            return (-item[1], *places.get(item[0], ("", "", item[0])))

        return sorted(ranked, key=order)[:n]

    def _fuse(
        self, lists: list[tuple[str, Ranked]], fusion: str, explained: bool = True
    ) -> tuple[dict[int, float], dict[int, dict[str, float]]]:
        """Fused score and explanation of each chunk of named best-first (chunk id, score)
        lists (``explained=False``: no explanation, an empty dict)."""
        explain: dict[int, dict[str, float]] = {}
        for name, ranked in lists if explained else ():
            for rank, (c, score) in enumerate(ranked, 1):
                info = explain.setdefault(c, {})
                info[name], info[f"{name}_rank"] = score, rank
        fused: dict[Hashable, float]
        if fusion == "rrf":
            fused = rrf([[c for c, _ in ranked] for _, ranked in lists], weights=FUSION_WEIGHTS, depth=FUSION_DEPTH)
        else:
            fused = weighted(
                [{c: s for c, s in ranked} for _, ranked in lists], weights=FUSION_WEIGHTS, depth=FUSION_DEPTH
            )
        return {int(c): v for c, v in fused.items()}, explain  # type: ignore[call-overload]

    def _hits(
        self, order: list[int], explain: dict[int, dict[str, float]], vector: np.ndarray | None, mode: str
    ) -> list[Hit]:
        records = self.records.chunk_records(order)
        labels = self.records.labels_of([r.doc_id for r in records.values()]) if self.has_labels else {}
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
            # The score follows the list's order: fused in hybrid mode, else the mode's own.
            score = scores.get("fused" if mode == "hybrid" else mode, 0.0)
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
                    kind=record.kind,
                )
            )
        return hits

    def _cosines(self, chunk_ids: list[int], vector: np.ndarray) -> dict[int, float]:
        """Exact cosine of each chunk to the query, from the stored vectors."""
        query = vector.reshape(-1)
        return {cid: float(stored @ query) for cid, stored in self.engine.vectors(chunk_ids).items()}
