"""What an indexing run publishes to its collection.

A run tells the writer which chunks it added and removed; ``commit`` (after index.db's last
commit) upserts the new rows with ``born`` = the committed generation, marks the removed
ones ``dead`` at it, refreshes the label fields of relabelled documents, and only then
publishes the generation in the collection's properties: daemons see the whole run at
once or not at all. A run that was killed leaves rows of a generation nobody publishes
(invisible) and index.db ahead of the collection; the next writer sees that
(``milvus_published`` in index.db is not the generation it starts from) and reconciles
the two by chunk id, so nothing is duplicated and nothing is orphaned.

``rebuild`` (a reindex with another model, a rollback, ``check --repair``) writes a new
collection beside the live one and moves the alias to it in one call: daemons switch at
their next refresh, and the collection it replaced stays for one more rebuild.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from ..engine import RunChanges
from ..errors import SearchctlError
from ..meta import IndexMeta
from ..terms import TERMS_VERSION
from . import schema
from .reader import Collection, current_ids, dead_ids
from .target import MilvusTarget, connect, milvus_error, speaking

__all__ = ["MilvusWriter", "check_target", "BATCH"]

BATCH = 256  # rows per upsert


def check_target(target: MilvusTarget, index_id: str | None, model: str | None, dim: int | None) -> None:
    """Before a run writes anything: the engine answers, and the collection behind
    ``target`` is absent or this index's own, with its model and dimension."""
    client = connect(target)
    try:
        with speaking(target):
            found = Collection.find(client, target, load=False)
            if found is not None:
                if index_id is None:  # a new index, or one that never published here
                    found.check_owner(None, None, None)
                    if found.get("index_id"):
                        raise SearchctlError(
                            f"collection {target.collection!r} at {target.shown} already holds another index's "
                            "chunks; give another --collection"
                        )
                found.check_owner(index_id, model, dim)
    finally:
        client.close()


class MilvusWriter(RunChanges):
    def __init__(self, store, index_dir: Path, target: MilvusTarget):
        super().__init__()
        self.store = store
        self.index_dir = Path(index_dir)
        self.target = target
        self.client = connect(target)
        with store.snapshot():
            self.start = store.generation
            meta = store.meta()
        if meta.milvus_index_id is None:
            with store.write():
                store.update_meta(milvus_index_id=uuid.uuid4().hex)
        self.reconcile = meta.milvus_published != self.start

    def close(self) -> None:
        self.client.close()

    # -- publishing -------------------------------------------------------------------

    def commit(self) -> None:
        generation = self.store.generation
        with speaking(self.target):
            live = Collection.find(self.client, self.target, load=False)
        if live is not None and live.get("terms") != TERMS_VERSION and self.store.meta().dim:
            self.rebuild()  # keyword terms of another version: every row written afresh
            self._added, self._removed = set(), set()
            self.store.relabelled.clear()
            return
        if generation == self.start and not self.reconcile:
            return
        with speaking(self.target):
            self._commit(generation)
        self.start, self.reconcile = generation, False
        self._added, self._removed = set(), set()
        self.store.relabelled.clear()

    def _collection(self, dim: int) -> Collection:
        with self.store.snapshot():
            meta = self.store.meta()
        found = Collection.find(self.client, self.target)
        if found is not None:
            found.check_owner(meta.milvus_index_id, meta.model, dim)
            return found
        return Collection.create_live(self.client, self.target, dim, self._props(0))

    def _props(self, generation: int) -> dict[str, str]:
        with self.store.snapshot():
            return schema.props_of(self.store, generation)

    def _commit(self, generation: int) -> None:
        dim = self.store.meta().dim
        if not dim:
            return  # nothing embedded yet
        collection = self._collection(dim)
        previous = collection.generation
        if self.reconcile or previous != self.start:
            self._reconcile(collection.name, generation, collection.get("labels") == "1")
        else:
            self._upsert(collection.name, sorted(self._added - self._removed), generation)
            self._mark_dead(collection.name, sorted(self._removed), generation)
            self._relabel(collection.name, sorted(self.store.relabelled))
        self._publish(collection.name, generation, previous)

    def _upsert(self, name: str, chunk_ids: list[int], generation: int) -> None:
        for start in range(0, len(chunk_ids), BATCH):
            with self.store.snapshot():
                batch = schema.rows(self.store, chunk_ids[start : start + BATCH], generation)
            if batch:
                self.client.upsert(name, batch)

    def _mark_dead(self, name: str, chunk_ids: list[int], generation: int) -> None:
        """Tombstones at ``generation`` for the rows of ``chunk_ids`` that have none yet."""
        for start in range(0, len(chunk_ids), BATCH):
            part = chunk_ids[start : start + BATCH]
            present = {int(r["id"]) for r in self.client.query(name, filter=f"id in {part}", output_fields=["id"])}
            marked = self.client.query(schema.tombstones(name), filter=f"id in {part}", output_fields=["id"])
            fresh = sorted(present - {int(r["id"]) for r in marked})
            if fresh:
                self.client.upsert(schema.tombstones(name), [{"id": i, "dead": int(generation), "v": [0.0, 0.0]}
                                                             for i in fresh])  # fmt: skip

    def _relabel(self, name: str, doc_ids: list[int]) -> None:
        """The label fields of every row of ``doc_ids``, as index.db now has them."""
        for start in range(0, len(doc_ids), BATCH):
            part = doc_ids[start : start + BATCH]
            with self.store.snapshot():
                labels = self.store.labels_of(part)
                chunks = self.store.document_chunks(part)
            updates = [
                {"id": int(chunk_id), **schema.label_fields(labels.get(doc, {}))}
                for doc, pairs in chunks.items()
                for chunk_id, _ in pairs
            ]
            present = {int(r["id"]) for r in self.client.query(name, filter=f"doc_id in {part}", output_fields=["id"])}
            updates = [u for u in updates if u["id"] in present]
            for at in range(0, len(updates), BATCH):
                self.client.upsert(name, updates[at : at + BATCH], partial_update=True)

    def _reconcile(self, name: str, generation: int, had_labels: bool) -> None:
        """The live rows made to match index.db's chunks, by id; every label refreshed
        where either side has labels."""
        with self.store.snapshot():
            stored = set(self.store.chunk_ids())
            documents = self.store.all_doc_ids() if had_labels or self.store.has_labels() else []
        live = current_ids(self.client, name)
        self._upsert(name, sorted(stored - live), generation)
        self._mark_dead(name, sorted(live - stored), generation)
        self._relabel(name, sorted(documents))

    def _publish(self, name: str, generation: int, previous: int) -> None:
        self.client.flush(name)
        self.client.alter_collection_properties(name, properties=self._props(generation))
        with self.store.write():
            self.store.update_meta(milvus_published=generation)
        # Rows that no daemon at the previous published generation or later sees: deleted
        # for good. The rows this run removed stay (dead) for daemons still at the previous
        # generation, until the next run publishes.
        if previous > 0:
            gone = dead_ids(self.client, name, previous)
            for start in range(0, len(gone), BATCH * 4):
                part = gone[start : start + BATCH * 4]
                self.client.delete(name, ids=part)  # the rows first: a tombstone left over hides nothing
                self.client.delete(schema.tombstones(name), ids=part)

    # -- a new collection behind the alias ------------------------------------------------

    def rebuild(self) -> None:
        """Every row written again into a new collection, then the alias moved to it; or,
        when the collection the alias left last time holds exactly this model's vectors of
        these chunks (a rollback), the alias moved back to it."""
        dim = self.store.meta().dim
        if not dim:
            return
        with speaking(self.target):
            with self.store.snapshot():
                generation = self.store.generation
                stored = self.store.chunk_ids()
                meta = self.store.meta()
            found = Collection.find(self.client, self.target, load=False)
            if found is not None:
                found.check_owner(meta.milvus_index_id, None, None)
            fresh = self._kept(meta, stored, found)
            if fresh is None:
                fresh = Collection.create_next(self.client, self.target, dim, self._props(0))
                self._upsert(fresh.name, stored, generation)
            else:
                self._relabel(fresh.name, sorted(self.store.all_doc_ids()) if self.store.has_labels() else [])
            self.client.flush(fresh.name)
            self.client.alter_collection_properties(fresh.name, properties=self._props(generation))
            fresh.take_alias(found)
            with self.store.write():
                self.store.update_meta(milvus_published=generation, milvus_previous=found.name if found else "")
        self.start, self.reconcile = generation, False

    def _kept(self, meta: IndexMeta, stored: list[int], live: Collection | None) -> Collection | None:
        """The collection the alias left last time, when it can serve again as it is."""
        name = meta.milvus_previous
        if not name or live is None or name == live.name or not self.client.has_collection(name):
            return None
        if live.meta.model == meta.model:
            return None  # not a change of model (compact, repair): write afresh
        described = self.client.describe_collection(name)
        for loaded in (name, schema.tombstones(name)):
            self.client.load_collection(loaded)
        kept = Collection(self.client, self.target, name, {str(k): str(v) for k, v in
                                                          (described.get("properties") or {}).items()})  # fmt: skip
        if (kept.meta.model, kept.meta.dim, kept.get("index_id")) != (meta.model, meta.dim, meta.milvus_index_id):
            return None
        return kept if current_ids(self.client, name, kept.generation) == set(stored) else None


def verify(store, index_dir: Path, target: MilvusTarget, repair: bool) -> dict[str, list[str]]:
    """ok, notes, problems and repaired lines: the collection against index.db, by
    generation and ids. ``repair``: reconcile them (upserts and deletes by chunk id, or the
    collection written afresh for another model; nothing re-embedded)."""
    ok: list[str] = []
    notes: list[str] = []
    problems: list[str] = []
    with store.snapshot():
        meta = store.meta()
        generation = store.generation
        stored = set(store.chunk_ids())
    shown = f"collection {target.collection!r} at {target.shown}"
    afresh = False
    client = connect(target)
    try:
        found = Collection.find(client, target)
        if found is None:
            problems.append(f"no {shown}" if stored else "")
        else:
            found.check_owner(meta.milvus_index_id, None, None)
            if (found.meta.model, found.meta.dim) != (meta.model, meta.dim):
                problems.append(
                    f"{shown} holds vectors of model {found.meta.model!r} ({found.meta.dim} dimensions); "
                    f"index.db has {meta.model!r} ({meta.dim})"
                )
                afresh = True
            behind = found.generation != generation
            if behind and meta.milvus_published != generation:
                # A run stopped between index.db's commit and its publishing: daemons serve
                # the last published generation whole; the next run publishes the rest.
                notes.append(
                    f"{shown} publishes generation {found.generation} and index.db is at {generation} (an "
                    "interrupted run); the next `searchctl index` or `check --repair` publishes it"
                )
            elif behind:
                problems.append(f"{shown} publishes generation {found.generation}; index.db is at {generation}")
            if found.get("terms") != TERMS_VERSION:
                notes.append(
                    f"{shown} holds keyword terms of another searchctl version; the next `searchctl index` or "
                    "`check --repair` writes it afresh"
                )
                afresh = True  # written afresh on repair
            if not behind:  # the ids of one generation on both sides
                live = current_ids(client, found.name, found.generation)
                missing, extra = len(stored - live), len(live - stored)
                if missing or extra:
                    problems.append(f"{shown} lacks {missing} chunks of index.db and holds {extra} it does not")
                else:
                    ok.append(f"{shown} ({found.name}) holds exactly the {len(stored)} chunks of index.db")
    except SearchctlError as exc:
        return {"ok": ok, "notes": notes, "problems": [str(exc)], "repaired": []}
    except Exception as exc:
        return {"ok": ok, "notes": notes, "problems": [str(milvus_error(exc, target))], "repaired": []}
    finally:
        client.close()
    problems = [p for p in problems if p]
    if not repair or not (problems or notes):
        return {"ok": ok, "notes": notes, "problems": problems, "repaired": []}
    writer = MilvusWriter(store, index_dir, target)
    try:
        if afresh or found is None:
            writer.rebuild()
            return {"ok": ok, "notes": notes, "problems": problems, "repaired": [f"wrote {shown} afresh"]}
        writer.reconcile = True
        writer.commit()
    finally:
        writer.close()
    repaired = [f"reconciled {shown} with index.db by chunk id and published generation {store.generation}"]
    return {"ok": ok, "notes": notes, "problems": problems, "repaired": repaired}
