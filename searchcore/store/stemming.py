"""Porter stems exactly as index.db's full-text table makes them, from SQLite itself.

FTS5's ``porter`` tokenizer is the C implementation Martin Porter published, with its
departures from the 1980 paper (``logi`` -> ``log``, ``bli`` -> ``ble``; words of one or
two letters left whole), not the Snowball "porter" that PyStemmer implements. Measured on
the four shared collections: 159 of 47,742 distinct words, 1.8 % of all word occurrences,
stem differently, and they are words that matter: "technology" is ``technolog`` to FTS5
(as "technological" is) but ``technologi`` to Snowball (so the two no longer match),
"pathology", "methodology", "possibly"; "ms" and "us" lose their last letter. The keyword
engines that get their terms from us (the tantivy cache, Milvus) therefore ask SQLite's
own tokenizer, once per distinct word, and keep the answer: their terms are FTS5's by
construction.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence

__all__ = ["Stems"]

# Distinct words remembered (a large collection has millions, numbers and names included).
_KEPT = 500_000
_TOKENIZER = "porter unicode61 remove_diacritics 2"  # as the chunks_fts table of index.db


class Stems:
    """word -> its FTS5 terms (one for a word, more where FTS5 splits it, none where it
    drops it). Thread-safe."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._known: dict[str, tuple[str, ...]] = {}

    def of(self, words: Sequence[str]) -> list[str]:
        """The terms of ``words``, in order."""
        known = self._known
        missing = [w for w in dict.fromkeys(words) if w not in known]
        learned = self._learn(missing) if missing else {}
        return [term for w in words for term in (learned[w] if w in learned else known[w])]

    def _learn(self, words: Iterable[str]) -> dict[str, tuple[str, ...]]:
        words = list(words)
        with self._lock:
            conn = self._conn
            conn.execute(f"CREATE VIRTUAL TABLE temp.words USING fts5(w, tokenize='{_TOKENIZER}')")
            try:
                conn.execute("CREATE VIRTUAL TABLE temp.terms USING fts5vocab(temp, words, 'instance')")
                conn.executemany("INSERT INTO temp.words (rowid, w) VALUES (?, ?)", enumerate(words, 1))
                found: dict[int, list[tuple[int, str]]] = {}
                for term, doc, offset in conn.execute("SELECT term, doc, offset FROM temp.terms"):
                    found.setdefault(doc, []).append((offset, term))
            finally:
                conn.execute("DROP TABLE IF EXISTS temp.terms")
                conn.execute("DROP TABLE temp.words")
            learned = {w: tuple(t for _, t in sorted(found.get(i, []))) for i, w in enumerate(words, 1)}
            if len(self._known) + len(learned) > _KEPT:
                self._known = {}  # a new dict: a reader holding the old one still finds its words
            self._known.update(learned)
        return learned
