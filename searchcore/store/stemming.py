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

import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence

__all__ = ["Stems", "SNOWBALL", "words", "stemmed_words", "keyword_text"]

# Distinct words remembered (a large collection has millions, numbers and names included).
_KEPT = 500_000
_TOKENIZER = "porter unicode61 remove_diacritics 2"  # as the chunks_fts table of index.db
_TABLE_USES = 1000  # calls before the scratch tables are made afresh


class Stems:
    """word -> its FTS5 terms (one for a word, more where FTS5 splits it, none where it
    drops it). Thread-safe."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._known: dict[str, tuple[str, ...]] = {}
        self._uses = 0  # of the tables below, since they were made

    def of(self, words: Sequence[str]) -> list[str]:
        """The terms of ``words``, in order."""
        known = self._known
        missing = [w for w in dict.fromkeys(words) if w not in known]
        learned = self._learn(missing) if missing else {}
        return [term for w in words for term in (learned[w] if w in learned else known[w])]

    def _tables(self) -> None:
        """The scratch full-text table the words go through, and its vocabulary, kept from
        one call to the next (making and dropping them cost a query's new words 0.67 ms,
        emptying them 0.21 ms), made afresh now and then so deleted rows never pile up."""
        conn = self._conn
        if self._uses and self._uses < _TABLE_USES:
            conn.execute("DELETE FROM temp.words")
        else:
            conn.execute("DROP TABLE IF EXISTS temp.terms")
            conn.execute("DROP TABLE IF EXISTS temp.words")
            conn.execute(f"CREATE VIRTUAL TABLE temp.words USING fts5(w, tokenize='{_TOKENIZER}')")
            conn.execute("CREATE VIRTUAL TABLE temp.terms USING fts5vocab(temp, words, 'instance')")
            self._uses = 0
        self._uses += 1

    def _learn(self, words: Iterable[str]) -> dict[str, tuple[str, ...]]:
        words = list(words)
        with self._lock:
            conn = self._conn
            try:
                self._tables()
                conn.executemany("INSERT INTO temp.words (rowid, w) VALUES (?, ?)", enumerate(words, 1))
                found: dict[int, list[tuple[int, str]]] = {}
                for term, doc, offset in conn.execute("SELECT term, doc, offset FROM temp.terms"):
                    found.setdefault(doc, []).append((offset, term))
            except BaseException:
                self._uses = 0  # made afresh by the next call
                raise
            learned = {w: tuple(t for _, t in sorted(found.get(i, []))) for i, w in enumerate(words, 1)}
            if len(self._known) + len(learned) > _KEPT:
                self._known = {}  # a new dict: a reader holding the old one still finds its words
            self._known.update(learned)
        return learned


# -- other languages: Snowball stems under FTS5's own ------------------------------------

# ISO 639-1 code -> PyStemmer's Snowball stemmer of that language. English is not here: its
# words go to FTS5 as written and FTS5's porter stems them, as in every index before languages.
SNOWBALL = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech", "da": "danish",
    "nl": "dutch", "eo": "esperanto", "et": "estonian", "fi": "finnish", "fr": "french", "de": "german",
    "el": "greek", "hi": "hindi", "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian",
    "lt": "lithuanian", "ne": "nepali", "no": "norwegian", "nb": "norwegian", "nn": "norwegian",
    "fa": "persian", "pl": "polish", "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian",
    "st": "sesotho", "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}  # fmt: skip
# Letters and digits as unicode61 keeps them, with the vowel signs and other combining marks
# of the Indic, Thai and Arabic scripts inside a word (Python's \w would cut a word at each).
_WORD = re.compile(r"(?:[^\W_]|[\u0300-\u036f\u064b-\u065f\u0900-\u0dff\u0e00-\u0e7f])+")
_local = threading.local()


def _snowball(lang: str):
    stemmers = _local.__dict__.setdefault("stemmers", {})  # PyStemmer's stemmers are not thread-safe
    if lang not in stemmers:
        import Stemmer

        stemmers[lang] = Stemmer.Stemmer(SNOWBALL[lang])
    return stemmers[lang]


def words(text: str) -> list[str]:
    """The words of ``text`` in lower case, split as unicode61 splits them."""
    return _WORD.findall(text.lower())


def stemmed_words(found: Sequence[str], lang: str | None) -> list[str] | None:
    """``found`` (words in lower case) reduced by ``lang``'s Snowball stemmer; None for a
    language without one of its own (English included: FTS5's porter stems those)."""
    if lang not in SNOWBALL:
        return None
    return _snowball(lang).stemWords(list(found))


def keyword_text(text: str, lang: str | None) -> str | None:
    """What the keyword side indexes for ``text`` of a document in ``lang``: its words
    stemmed by the language's Snowball stemmer, joined by spaces (FTS5 then lowers, strips
    diacritics and porter-stems them as it does every text, so a German "Häuser" and
    "Haus" are both ``hau``); None when the text itself is indexed (English, languages
    without a stemmer, no language known)."""
    stems = stemmed_words(words(text), lang)
    return None if stems is None else " ".join(stems)
