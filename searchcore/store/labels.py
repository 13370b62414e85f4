"""Labels: one per document and classifier facet, with what says whether it is current.

A label row carries the document's hash and the classifier's id, so a changed document
or a retrained classifier is labelled again; ``meta.classifiers`` remembers which
classifier folder labels each facet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .core import StoreBase

__all__ = ["Labels"]


class Labels(StoreBase):
    def classifiers(self) -> dict[str, dict]:
        """The classifiers whose labels this index keeps: facet -> {"path", "id"}."""
        return dict(self.meta().classifiers)

    def documents_to_label(self, facet: str, classifier_id: str) -> list[tuple[int, str]]:
        """(doc id, hash) of documents with no current label of ``facet``."""
        rows = self.conn.execute(
            "SELECT documents.id, documents.hash FROM documents LEFT JOIN labels "
            "ON labels.doc_id = documents.id AND labels.facet = ? "
            "WHERE labels.doc_id IS NULL OR labels.classifier != ? OR labels.doc_hash != documents.hash "
            "ORDER BY documents.id",
            (facet, classifier_id),
        )
        return [(int(r[0]), r[1]) for r in rows]

    def documents_by_key(self, keys: Iterable[str]) -> dict[str, list[tuple[int, str | None]]]:
        """record id -> [(doc id, title)] of the documents with that key (one per file holding it)."""
        out: dict[str, list[tuple[int, str | None]]] = {}
        wanted = [k for k in dict.fromkeys(keys) if k]
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            for doc_id, key, title in self.conn.execute(
                f"SELECT id, key, title FROM documents WHERE key IN ({marks}) ORDER BY id", part
            ):
                out.setdefault(key, []).append((int(doc_id), title))
        return out

    def put_labels(self, facet: str, classifier_id: str, rows: Iterable[tuple[int, str, float, str]]) -> None:
        """Inside ``write()``: (doc id, label, score, doc hash) rows of one facet."""
        rows = list(rows)
        self.relabelled.update(int(r[0]) for r in rows)
        self.conn.executemany(
            "INSERT OR REPLACE INTO labels (doc_id, facet, label, score, classifier, doc_hash) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(int(d), facet, label, float(score), classifier_id, h) for d, label, score, h in rows],
        )

    def drop_facet(self, facet: str) -> int:
        """Inside ``write()``: forget a classifier's labels; returns how many."""
        self.relabelled.update(
            int(r[0]) for r in self.conn.execute("SELECT doc_id FROM labels WHERE facet = ?", (facet,))
        )
        removed = self.conn.execute("DELETE FROM labels WHERE facet = ?", (facet,)).rowcount
        known = self.classifiers()
        known.pop(facet, None)
        self.update_meta(classifiers=known)
        return removed

    def labels_of(self, doc_ids: Sequence[int]) -> dict[int, dict[str, dict]]:
        """doc id -> {facet: {"label", "score"}}."""
        ids = sorted({int(d) for d in doc_ids})
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        out: dict[int, dict[str, dict]] = {}
        rows = self.conn.execute(f"SELECT doc_id, facet, label, score FROM labels WHERE doc_id IN ({marks})", ids)
        for doc_id, facet, label, score in rows:
            out.setdefault(doc_id, {})[facet] = {"label": label, "score": round(float(score), 4)}
        return out

    def label_counts(self) -> dict[str, dict[str, int]]:
        """facet -> label -> documents, over the whole index."""
        out: dict[str, dict[str, int]] = {}
        rows = self.conn.execute(
            "SELECT facet, label, count(*) FROM labels GROUP BY facet, label ORDER BY facet, label"
        )
        for facet, label, n in rows:
            out.setdefault(facet, {})[label] = int(n)
        return out

    def set_classifiers(self, record: dict[str, dict]) -> None:
        """Inside ``write()``: facet -> {"path", "id"} of the classifiers this index keeps."""
        self.update_meta(classifiers=record)
