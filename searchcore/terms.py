"""Keyword terms made on our side, for engines whose own analysers differ.

index.db's FTS5 table tokenises with ``porter unicode61 remove_diacritics 2``: lower case,
diacritics removed, split on anything that is not a letter or digit, each word reduced
by the original Porter stemmer. An engine that does BM25 itself (Milvus) is given text
already reduced the same way, words joined by spaces, so that its plain tokenizer (split
on non-word characters, lower case) finds exactly our terms: Milvus Lite has no stemmer,
and a cluster's "english" analyser is another stemmer again. Queries are reduced the same
way, without the stop words FTS5 queries leave out (``store.filters.STOPWORDS``).
"""

from __future__ import annotations

import functools
import re
import unicodedata

from .store.filters import STOPWORDS

__all__ = ["document_terms", "query_terms"]

# unicode61 keeps letters and digits together and splits on everything else, "_" included.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@functools.cache
def _stemmer():
    import Stemmer  # PyStemmer: the Snowball project's stemmers, "porter" is the original algorithm

    return Stemmer.Stemmer("porter")


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _WORD.findall(plain)


def document_terms(*texts: str | None) -> str:
    """The stemmed words of ``texts`` (a title and a chunk), in order, joined by spaces."""
    words = [w for text in texts if text for w in _words(text)]
    return " ".join(_stemmer().stemWords(words))


def query_terms(text: str) -> str:
    """The stemmed words of a query, each once, stop words left out ("" when none is left)."""
    words = [w for w in dict.fromkeys(_words(text)) if w not in STOPWORDS]
    return " ".join(dict.fromkeys(_stemmer().stemWords(words)))
