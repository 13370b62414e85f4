"""The keyword side of a local index: a tantivy inverted index, a derived cache of index.db.

SQLite FTS5 ranks every row that holds any query word before it returns the best ones,
so its time grows with the collection (a common word matches a large part of it).
tantivy keeps block-max posting lists and returns the top k without scoring the rest:
on SciFact's 10,174 chunks a keyword top-100 took 0.16 ms against FTS5's 8.3 ms, and the
gap widens with size (see the README, "A million chunks").

The cache lives in ``keywords/`` beside index.db and is rebuilt from it whenever it is
missing, unreadable or not of the committed generation: nothing is ever re-read from the
documents. Each chunk is one tantivy document: its id (an indexed fast field) and its
terms, the document title and chunk text reduced exactly as FTS5 reduces them
(``searchcore.terms``: lower case, diacritics removed, Porter stems), split on spaces.
Scores are BM25 (k1 1.2, b 0.75) over title and text together, weighted as FTS5's
``bm25()`` weighs a word: tantivy (as Lucene) takes idf = ln(1 + (N - n + 0.5)/(n + 0.5)),
which never falls below ln 2, while FTS5 takes ln((N - n + 0.5)/(n + 0.5)), floored at
1e-6, so a word found in more than half of the chunks counts for nothing. Each query term
is boosted by the ratio of the two, which makes the cache score every term as FTS5 does.
With tantivy's own idf, words in most chunks kept a weight of ln 2 or more, which costs
collections whose requests are long and full of such words (0.029 hybrid nDCG@10 below
FTS5 on one held-out collection); see the README, "Retrieval quality". What is left
between the two is tantivy's one-byte document lengths (Lucene's encoding: exact to 24
terms, then within about 6 %).

A removed chunk's postings stay in tantivy's segments (and its BM25 statistics: document
frequencies, average length) until they are merged away, as in Lucene, so after removals
keyword scores can differ slightly from a fresh build's; ``keywords/generation`` also
counts the chunks removed since the cache was built, and past REBUILD_SHARE of the
collection a run builds it afresh (so does ``searchctl compact``).

Consistency with index.db goes by generation, in the file ``keywords/generation`` (which
also names the version of the terms, so a cache of other terms is made again):
a writer removes it before it changes the index and writes the new generation after
tantivy's commit; a reader opens its tantivy searcher first and reads the file after,
and uses the cache only when it names the reader's own generation. Any other state
(a run in progress, a run killed between the two steps, a cache deleted or damaged)
makes the reader fall back to FTS5 in index.db, which every run writes in the same
transactions as the chunks, and the next writer rebuild the cache.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .terms import TERMS_VERSION, document_terms, query_terms

if TYPE_CHECKING:
    from .store import Store

__all__ = ["KeywordIndex", "KEYWORDS_DIR", "generation_of", "sync", "rebuild", "verify", "fts5_idf", "tantivy_idf"]

KEYWORDS_DIR = "keywords"
_MARK = "generation"
# The writer's indexing memory (tantivy flushes a segment whenever it is full).
_HEAP_BYTES = 128_000_000
# Larger allow-lists filter a deeper unfiltered list instead of going into the query.
_LISTED_MAX = 50_000
# A run rebuilds the cache once the chunks removed since it was built pass this share.
REBUILD_SHARE = 0.1


@functools.cache
def _tantivy():
    import tantivy

    return tantivy


@functools.cache
def _schema():
    tantivy = _tantivy()
    builder = tantivy.SchemaBuilder()
    # Terms come reduced and lower-cased already: split on spaces only, keep frequencies
    # (BM25 needs them), no positions (no phrase queries).
    builder.add_text_field("terms", tokenizer_name="whitespace", index_option="freq")
    builder.add_integer_field("id", indexed=True, fast=True)
    return builder.build()


def _folder(index_dir: Path) -> Path:
    return Path(index_dir) / KEYWORDS_DIR


def _read_marks(folder: Path) -> tuple[int | None, int]:
    """(the generation the cache holds, chunks removed from it since it was built); no
    generation for a cache whose terms another version of ``searchcore.terms`` made."""
    try:
        words = (folder / _MARK).read_text().split()
        if words[2:3] != [TERMS_VERSION]:
            return None, 0
        return int(words[0]), int(words[1])
    except (OSError, ValueError, IndexError):
        return None, 0


def _read_mark(folder: Path) -> int | None:
    return _read_marks(folder)[0]


def _write_mark(folder: Path, generation: int, removed: int = 0) -> None:
    tmp = folder / f".{_MARK}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        fh.write(f"{generation} {removed} {TERMS_VERSION}")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / _MARK)


def generation_of(index_dir: Path) -> int | None:
    """The generation the cache holds, None when it is being written or absent."""
    return _read_mark(_folder(index_dir))


def fts5_idf(n: int, total: int) -> float:
    """SQLite FTS5's ``bm25()`` idf of a term in ``n`` of ``total`` rows."""
    return max(math.log((total - n + 0.5) / (n + 0.5)), 1e-6)


def tantivy_idf(n: int, total: int) -> float:
    """tantivy's (and Lucene's) BM25 idf of a term in ``n`` of ``total`` documents."""
    return math.log(1 + (total - n + 0.5) / (n + 0.5))


class KeywordIndex:
    """A reader's view of the cache of one generation."""

    def __init__(self, searcher, removed: int = 0):
        self.searcher = searcher
        # tantivy counts removed chunks in its statistics until their segments merge
        self.held = int(searcher.num_docs) + removed

    def _term_query(self, term: str):
        """The term's query, boosted so that its idf is FTS5's; None for a term no chunk holds."""
        tantivy = _tantivy()
        n = int(self.searcher.doc_freq("terms", term))
        if n == 0:
            return None
        boost = fts5_idf(min(n, self.searcher.num_docs), self.searcher.num_docs) / tantivy_idf(n, max(self.held, n))
        return tantivy.Query.boost_query(tantivy.Query.term_query(_schema(), "terms", term), boost)

    @classmethod
    def open(cls, index_dir: Path, generation: int, chunks: int) -> KeywordIndex | None:
        """The cache of ``generation`` holding ``chunks`` chunks, or None (use FTS5)."""
        folder = _folder(index_dir)
        if not (folder / "meta.json").exists():
            return None
        try:
            searcher = _tantivy().Index.open(str(folder)).searcher()
        except Exception:  # damaged or half-written: FTS5 answers, the next writer rebuilds
            return None
        held, removed = _read_marks(folder)
        if held != generation or searcher.num_docs != chunks:
            return None
        return cls(searcher, removed)

    def search(
        self, text: str, k: int, allowed: np.ndarray | None = None, languages: Sequence[str] = ()
    ) -> list[tuple[int, float]]:
        """Best-first (chunk id, BM25 score) of the chunks holding any word of ``text`` (or
        of its stems in ``languages``, as ``terms.query_terms``)."""
        tantivy = _tantivy()
        if k <= 0:
            return []
        clauses = [q for q in (self._term_query(t) for t in query_terms(text, languages).split()) if q is not None]
        if not clauses:
            return []
        Query, Occur = tantivy.Query, tantivy.Occur
        schema = _schema()
        query = Query.boolean_query([(Occur.Should, q) for q in clauses])
        if allowed is not None and len(allowed) > _LISTED_MAX:
            # Most chunks allowed: a term set of them all costs more than the search, so
            # take a deeper unfiltered list and keep the allowed (the same top k, since
            # a filter removes hits and never reorders them).
            allowed = np.sort(np.asarray(allowed, dtype=np.int64))
            want = 2 * k
            while True:
                found = self._top(query, want)
                ids = np.fromiter((c for c, _ in found), dtype=np.int64, count=len(found))
                place = np.minimum(np.searchsorted(allowed, ids), len(allowed) - 1)
                kept = [hit for hit, ok in zip(found, allowed[place] == ids) if ok]
                if len(kept) >= k or len(found) < want:
                    return kept[:k]
                if want >= 64 * k:
                    break
                want *= 4
        if allowed is not None:
            only = Query.const_score_query(Query.term_set_query(schema, "id", [int(i) for i in allowed]), 0.0)
            query = Query.boolean_query([(Occur.Must, query), (Occur.Must, only)])
        return self._top(query, k)

    def _top(self, query, k: int) -> list[tuple[int, float]]:
        hits = self.searcher.search(query, int(k), count=False).hits
        ids = self.searcher.fast_field_values("id", [address for _, address in hits])
        return [(int(i), float(score)) for (score, _), i in zip(hits, ids)]


def _add(writer, rows: Iterable[tuple]) -> int:
    tantivy = _tantivy()
    n = 0
    for chunk_id, title, text in rows:
        doc = tantivy.Document()
        doc.add_integer("id", int(chunk_id))
        doc.add_text("terms", document_terms(title, text))
        writer.add_document(doc)
        n += 1
    return n


def rebuild(store: Store, index_dir: Path) -> None:
    """Writers: the cache of the committed generation, made afresh from index.db in a
    new folder and swapped in (a reader meanwhile finds none and uses FTS5)."""
    folder = _folder(index_dir)
    fresh = folder.with_name(f"{KEYWORDS_DIR}.new-{os.getpid()}")
    old = folder.with_name(f"{KEYWORDS_DIR}.old-{os.getpid()}")
    for leftover in folder.parent.glob(f"{KEYWORDS_DIR}.*-*"):  # of a writer killed mid-rebuild
        shutil.rmtree(leftover, ignore_errors=True)
    fresh.mkdir()
    with store.snapshot():
        generation = store.generation
        index = _tantivy().Index(_schema(), path=str(fresh))
        writer = index.writer(_HEAP_BYTES, 1)
        for rows in store.keyword_rows():
            _add(writer, rows)
        writer.commit()
        writer.wait_merging_threads()
    _write_mark(fresh, generation)
    if folder.exists():
        folder.rename(old)
    fresh.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def sync(store: Store, index_dir: Path, since: int, added: set[int], removed: set[int]) -> None:
    """Writers, after a run's last commit: the cache of generation ``since`` with
    ``removed`` taken out and ``added`` put in, when that cache is sound and the result
    holds every chunk; else a rebuild."""
    folder = _folder(index_dir)
    with store.snapshot():
        generation, chunks = store.generation, store.counts()["chunks"]
    held, gone = _read_marks(folder)
    gone += len(removed - added)
    # A removed chunk stays in tantivy's BM25 statistics until its segment is merged away:
    # past REBUILD_SHARE of the chunks, the cache is made afresh instead.
    if held == since and (folder / "meta.json").exists() and gone <= REBUILD_SHARE * max(chunks, 1):
        try:
            index = _tantivy().Index.open(str(folder))
            (folder / _MARK).unlink()  # from here until the new mark, readers use FTS5
            writer = index.writer(_HEAP_BYTES, 1)
            for chunk_id in removed - added:
                writer.delete_documents_by_term("id", int(chunk_id))
            with store.snapshot():
                for rows in store.keyword_rows(sorted(added - removed)):
                    _add(writer, rows)
            writer.commit()
            writer.wait_merging_threads()
            index.reload()
            if index.searcher().num_docs == chunks:
                _write_mark(folder, generation, gone)
                return
        except Exception:  # a damaged cache: made afresh below
            pass
    rebuild(store, index_dir)


def verify(store: Store, index_dir: Path) -> str:
    """The cache: "ok", "missing", "stale" (of another generation) or "damaged"."""
    folder = _folder(index_dir)
    if not (folder / "meta.json").exists():
        return "missing"
    try:
        searcher = _tantivy().Index.open(str(folder)).searcher()
        held = searcher.num_docs
    except Exception:
        return "damaged"
    if _read_mark(folder) != store.generation:
        return "stale"
    return "ok" if held == store.counts()["chunks"] else "damaged"
