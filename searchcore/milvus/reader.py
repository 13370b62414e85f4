"""The read side: a collection found behind its alias, the engine a Searcher asks, and
the records it shows, pinned to one published generation."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

import numpy as np

from ..engine import AllowList
from ..errors import SearchctlError
from ..meta import IndexMeta
from ..options import Filters
from ..store.core import ChunkRecord, DocumentRow
from ..terms import query_terms
from . import filters as expr
from .schema import FORMAT, OUTPUT, PREFIX, create, meta_of, tombstones, visible
from .target import MilvusTarget, connect, speaking

__all__ = ["Collection", "CollectionView", "MilvusEngine", "live_ids", "dead_ids", "current_ids"]

_TOPK = 16_384  # the most hits one Milvus search returns
_QUERY_IDS = 1_000  # ids per "id in [...]" query
_DOC_CACHE = 200_000  # chunk -> document ids a view remembers


def live_ids(client, name: str, where: str) -> list[int]:
    """Every id of the rows of ``name`` that ``where`` selects."""
    found: list[int] = []
    iterator = client.query_iterator(name, batch_size=4096, filter=where, output_fields=["id"])
    try:
        while batch := iterator.next():
            found += [int(r["id"]) for r in batch]
    finally:
        iterator.close()
    return found


def dead_ids(client, name: str, upto: int | None = None) -> list[int]:
    """The ids of ``name`` tombstoned by generation ``upto`` (None: by any)."""
    return live_ids(client, tombstones(name), "id >= 0" if upto is None else f"dead <= {int(upto)}")


def current_ids(client, name: str, generation: int | None = None) -> set[int]:
    """The ids a search at ``generation`` sees (None: every row not tombstoned)."""
    rows = live_ids(client, name, "id >= 0" if generation is None else f"born <= {int(generation)}")
    return set(rows) - set(dead_ids(client, name, generation))


class Collection:
    """One physical collection and the alias (``target.collection``) that names it."""

    def __init__(self, client, target: MilvusTarget, name: str, props: dict[str, str]):
        self.client, self.target, self.name, self.props = client, target, name, props

    @classmethod
    def find(cls, client, target: MilvusTarget, *, load: bool = True) -> Collection | None:
        """The collection the alias names, with its properties; ``load``: ready to be
        searched and queried (not needed to read its properties)."""
        alias = target.collection
        try:
            name = client.describe_alias(alias)["collection_name"]
        except Exception:
            if not client.has_collection(alias):
                return None
            name = alias  # a collection called like our alias: not one of ours
        described = client.describe_collection(name)
        if load and described.get("properties", {}).get(PREFIX + "format"):
            if not client.has_collection(tombstones(name)):
                from .schema import create_tombstones

                create_tombstones(client, name)  # lost by some hand: an empty one hides nothing
            for loaded in (name, tombstones(name)):
                client.load_collection(loaded)  # searches need it in memory; a loaded one is a no-op
        return cls(client, target, name, {str(k): str(v) for k, v in (described.get("properties") or {}).items()})

    def get(self, key: str) -> str | None:
        """One of the collection's own marks (format, index_id, counts, labels)."""
        return self.props.get(PREFIX + key)

    @property
    def meta(self) -> IndexMeta:
        """The index meta the collection carries (``schema.MILVUS_FIELDS`` and the generation)."""
        return meta_of(self.props)

    @property
    def generation(self) -> int:
        return self.meta.generation

    def check_owner(self, index_id: str | None, model: str | None, dim: int | None) -> None:
        shown = f"collection {self.target.collection!r} at {self.target.shown}"
        if self.get("format") != FORMAT:
            raise SearchctlError(f"{shown} was not made by searchctl; give another --collection")
        if index_id and self.get("index_id") and self.get("index_id") != index_id:
            raise SearchctlError(f"{shown} belongs to another index; give another --collection")
        meta = self.meta
        if model and meta.model and meta.model != model:
            raise SearchctlError(
                f"{shown} holds vectors of model {meta.model!r}, not {model!r}; "
                "use `searchctl reindex` to change the model, or give another --collection"
            )
        if dim and meta.dim and meta.dim != int(dim):
            raise SearchctlError(f"{shown} holds vectors of {meta.dim} dimensions, not {dim}")

    def _props_of(self, name: str) -> dict[str, str]:
        described = self.client.describe_collection(name)
        return {str(k): str(v) for k, v in (described.get("properties") or {}).items()}

    def _versions(self) -> list[tuple[int, str]]:
        pattern = re.compile(re.escape(self.target.collection) + r"_v(\d+)$")
        return sorted((int(m.group(1)), n) for n in self.client.list_collections() if (m := pattern.match(n)))

    @classmethod
    def _create(cls, client, target: MilvusTarget, dim: int, props: dict[str, str]) -> Collection:
        taken = Collection(client, target, "", {})._versions()
        name = f"{target.collection}_v{(taken[-1][0] if taken else 0) + 1}"
        create(client, name, dim, props)
        return cls(client, target, name, props)

    @classmethod
    def create_live(cls, client, target: MilvusTarget, dim: int, props: dict[str, str]) -> Collection:
        made = cls._create(client, target, dim, props)
        made.take_alias(None)
        return made

    @classmethod
    def create_next(cls, client, target: MilvusTarget, dim: int, props: dict[str, str]) -> Collection:
        return cls._create(client, target, dim, props)

    def take_alias(self, replaced: Collection | None) -> None:
        """Point the alias here; keep ``replaced`` (a rollback), drop this index's other
        collections (older ones, or one a killed run made and never named)."""
        if replaced is None:
            self.client.create_alias(self.name, self.target.collection)
        else:
            self.client.alter_alias(self.name, self.target.collection)
        keep = {self.name, replaced.name if replaced else self.name}
        for _, name in self._versions():
            # Only ours: a collection of someone else's that happens to be named C_vN stays.
            if name not in keep and self._props_of(name).get(PREFIX + "index_id") == self.get("index_id"):
                self._drop(name)

    def _drop(self, name: str) -> None:
        self.client.drop_collection(name)
        if self.client.has_collection(tombstones(name)):
            self.client.drop_collection(tombstones(name))


class CollectionView:
    """What a Searcher reads an index's records from when they live in Milvus: the
    published properties (model, counts, roots) and the rows, at one generation."""

    def __init__(self, target: MilvusTarget):
        self.target = target
        self.client = connect(target)
        try:
            found = self._find()
        except BaseException:
            self.client.close()
            raise
        self.collection: Collection = found
        self.pinned: int | None = None
        self._dead: list[int] = []
        self._labels: dict[int, dict] = {}
        self.doc_of: dict[int, int] = {}  # chunk id -> document id, as searches return them

    def _find(self, load: bool = True) -> Collection:
        with speaking(self.target):
            found = Collection.find(self.client, self.target, load=load)
        if found is None:
            raise SearchctlError(
                f"no collection {self.target.collection!r} at {self.target.shown}; "
                "build it with `searchctl index DIR --engine milvus` first"
            )
        found.check_owner(None, None, None)
        return found

    def refresh(self) -> None:
        """See the newest published generation (and the alias's newest collection): its
        properties only, as a daemon's probe reads them every quarter second."""
        self.collection = self._find(load=False)

    def close(self) -> None:
        self.client.close()

    def meta(self) -> IndexMeta:
        return replace(self.collection.meta, generation=self.generation, engine="milvus",
                       milvus_uri=self.target.uri, milvus_collection=self.target.collection)  # fmt: skip

    @property
    def source(self) -> str:
        return f"milvus:{self.target.shown}/{self.target.collection}"

    def begin_read(self) -> None:
        """Pin the published generation (and the tombstones that hide its removed rows)."""
        self.pinned = self.collection.generation
        with speaking(self.target):
            self._dead = dead_ids(self.client, self.name, self.pinned)

    @property
    def generation(self) -> int:
        return self.pinned if self.pinned is not None else self.collection.generation

    @property
    def name(self) -> str:
        return self.collection.name

    def counts(self) -> dict[str, int]:
        counts = json.loads(self.collection.get("counts") or "{}")
        out = {k: int(counts.get(k, 0)) for k in ("files", "documents", "chunks")}
        return {**out, "vectors": out["chunks"]}

    def has_labels(self) -> bool:
        return self.collection.get("labels") == "1"

    def where(self, extra: str = "") -> str:
        base = visible(self.generation, self._dead)
        return f"{base} and ({extra})" if extra else base

    def _query(self, where: str, fields: list[str]) -> list[dict]:
        with speaking(self.target):
            return list(self.client.query(self.name, filter=where, output_fields=fields))

    def _by_ids(self, ids: Sequence[int], fields: list[str]) -> list[dict]:
        ids = [int(i) for i in ids]
        rows: list[dict] = []
        for start in range(0, len(ids), _QUERY_IDS):
            rows += self._query(f"id in {ids[start : start + _QUERY_IDS]}", fields)
        return rows

    def _record(self, r: dict) -> ChunkRecord:
        self._labels[int(r["doc_id"])] = r.get("labels") or {}
        return ChunkRecord(
            int(r["id"]), int(r["doc_id"]), r["path"], r["key"], r["title"] or None, r["text"],
            int(r["char_start"]), int(r["char_end"]), int(r["line_start"]), int(r["line_end"]),
            r.get("meta") or {}, r["kind"], int(r["mtime_ns"]),
        )  # fmt: skip

    def chunk_records(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRecord]:
        return {int(r["id"]): self._record(r) for r in self._by_ids(chunk_ids, OUTPUT)}

    def metadata_fields(self) -> set[str] | None:
        return None  # a JSON field's keys are not listed by Milvus without reading every row

    def file_chunks(self, path: str) -> list[ChunkRecord]:
        records = [self._record(r) for r in self._rows(OUTPUT, f"path == {expr.literal(path)}")]
        return sorted(records, key=lambda c: (c.doc_id, c.char_start, c.chunk_id))

    def places_of(self, chunk_ids: Sequence[int]) -> dict[int, tuple[str, str, int]]:
        rows = self._by_ids(chunk_ids, ["id", "key", "path", "char_start"])
        return {int(r["id"]): (r["key"], r["path"], int(r["char_start"])) for r in rows}

    def doc_ids_of(self, chunk_ids: Sequence[int]) -> dict[int, int]:
        missing = [int(c) for c in chunk_ids if int(c) not in self.doc_of]
        self.doc_of.update({int(r["id"]): int(r["doc_id"]) for r in self._by_ids(missing, ["id", "doc_id"])})
        return {int(c): self.doc_of[int(c)] for c in chunk_ids if int(c) in self.doc_of}

    def labels_of(self, doc_ids: Sequence[int]) -> dict[int, dict[str, dict]]:
        missing = [int(d) for d in doc_ids if int(d) not in self._labels]
        for start in range(0, len(missing), _QUERY_IDS):
            for r in self._query(self.where(f"doc_id in {missing[start : start + _QUERY_IDS]}"), ["doc_id", "labels"]):
                self._labels[int(r["doc_id"])] = r.get("labels") or {}
        return {int(d): self._labels[int(d)] for d in doc_ids if self._labels.get(int(d))}

    def vectors_of(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        return {int(r["id"]): np.asarray(r["dense"], np.float32) for r in self._by_ids(chunk_ids, ["id", "dense"])}

    def file_kind(self, path: str) -> str | None:
        rows = self._query(self.where(f"path == {expr.literal(path)}"), ["kind"])
        return rows[0]["kind"] if rows else None

    def _rows(self, fields: list[str], where: str = "") -> Iterator[dict]:
        """Every visible row (of ``where``), ``fields`` of each, a batch at a time."""
        with speaking(self.target):
            iterator = self.client.query_iterator(self.name, batch_size=4096, filter=self.where(where),
                                                  output_fields=fields)  # fmt: skip
            try:
                while batch := iterator.next():
                    yield from batch
            finally:
                iterator.close()

    def document_ids(self) -> tuple[set[str], set[str]]:
        keys, paths = set(), set()
        for r in self._rows(["key", "path"]):
            (keys.add(r["key"]) if r["key"] else paths.add(r["path"]))
        return keys, paths

    def document_list(self) -> list[DocumentRow]:
        docs: dict[int, DocumentRow] = {}
        for r in self._rows(["doc_id", "key", "title", "path", "kind"]):
            docs.setdefault(int(r["doc_id"]), DocumentRow(int(r["doc_id"]), r["key"], r["title"] or None,
                                                          r["path"], r["kind"]))  # fmt: skip
        return [docs[d] for d in sorted(docs)]

    def document_chunks(self, doc_ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
        out: dict[int, list[tuple[int, int, str]]] = {int(d): [] for d in doc_ids}
        wanted = sorted(out)
        for start in range(0, len(wanted), _QUERY_IDS):
            where = f"doc_id in {wanted[start : start + _QUERY_IDS]}"
            for r in self._rows(["id", "doc_id", "char_start", "text"], where):
                out[int(r["doc_id"])].append((int(r["char_start"]), int(r["id"]), r["text"]))
        # in document order: by where each chunk starts (then by id, which follows the order)
        return {d: [(c, text) for _, c, text in sorted(found)] for d, found in out.items()}

    def documents_by_key(self, keys: Iterable[str]) -> dict[str, list[tuple[int, str | None]]]:
        wanted = [k for k in dict.fromkeys(keys) if k]
        out: dict[str, dict[int, str | None]] = {}
        for start in range(0, len(wanted), _QUERY_IDS):
            part = wanted[start : start + _QUERY_IDS]
            keys = "[" + ", ".join(expr.literal(k) for k in part) + "]"
            for r in self._rows(["doc_id", "key", "title"], f"key in {keys}"):
                out.setdefault(r["key"], {})[int(r["doc_id"])] = r["title"] or None
        return {k: sorted(found.items()) for k, found in out.items()}


class MilvusEngine:
    """The Engine protocol over a CollectionView: dense and BM25 searches in Milvus."""

    rebuilt = False

    def __init__(self, view: CollectionView):
        self.view = view

    @property
    def size(self) -> int:
        return self.view.counts()["chunks"]

    def _search(self, data, field: str, metric: str, k: int, allowed: AllowList | None) -> list[tuple[int, float]]:
        if k <= 0:
            return []
        where = self.view.where(allowed.expr if allowed is not None and allowed.expr else "")
        with speaking(self.view.target):
            found = self.view.client.search(
                self.view.name, data=[data], anns_field=field, limit=min(int(k), _TOPK), filter=where,
                output_fields=["doc_id"], search_params={"metric_type": metric},
            )  # fmt: skip
        hits = found[0] if found else []
        # Per-document results then need no second round trip for the documents' ids.
        if len(self.view.doc_of) > _DOC_CACHE:
            self.view.doc_of.clear()
        self.view.doc_of.update({int(h["id"]): int(h["entity"]["doc_id"]) for h in hits})
        return [(int(h["id"]), float(h["distance"])) for h in hits]

    def dense(self, vector: np.ndarray, k: int, allowed: AllowList | None) -> list[tuple[int, float]]:
        return self._search(np.asarray(vector, np.float32).reshape(-1).tolist(), "dense", "IP", k, allowed)

    def keyword(self, text: str, k: int, allowed: AllowList | None) -> list[tuple[int, float]]:
        languages = [x for x in (self.view.collection.get("languages") or "").split(",") if x]
        terms = query_terms(text, languages)
        if not terms:
            return []
        # A BM25 score is never negative; some engines report it as a distance (negated).
        return [(c, abs(s)) for c, s in self._search(terms, "sparse", "BM25", k, allowed)]

    def vectors(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        return self.view.vectors_of(chunk_ids)

    def allow(self, filters: Filters) -> AllowList:
        where = expr.filter_expr(filters)
        if expr.needs_exact_paths(filters):
            rows = self.view._query(self.view.where(where), ["id", "path"])
            ids = sorted(int(r["id"]) for r in rows if expr.path_matches(filters, r["path"]))
            where = f"id in {ids}"
        count = self.view._query(self.view.where(where), ["count(*)"])[0]["count(*)"]
        return AllowList(expr=where, count=int(count))


def describe(target: MilvusTarget) -> dict:
    """What ``searchctl info`` shows of a collection (never the token)."""
    view = CollectionView(target)
    try:
        with speaking(target):
            client, name = view.client, view.name
            kinds = []
            for field in ("dense", "sparse"):
                described = client.describe_index(name, index_name=field) or {}
                kinds.append(f"{field} {described.get('index_type', '?')} ({described.get('metric_type', '?')})")
            return {
                "engine": "milvus",
                "milvus_uri": target.shown,
                "collection": target.collection,
                "milvus_collection": name,
                "rows": int(client.get_collection_stats(name).get("row_count", 0)),
                "milvus_index": ", ".join(kinds),
                "published_generation": view.collection.generation,
                "model": view.collection.meta.model,
                "chunks": view.counts()["chunks"],
            }
    finally:
        view.close()
