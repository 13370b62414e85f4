"""Keyword terms made on our side, for keyword engines other than index.db's FTS5 table.

index.db's FTS5 table tokenises with ``porter unicode61 remove_diacritics 2``: lower case,
diacritics removed, split on anything that is not a letter or digit, each word reduced by
SQLite's Porter stemmer. The tantivy keyword cache and Milvus are given text already
reduced the same way, words joined by spaces, so that their plain tokenizers (split on
spaces, or on non-word characters) find exactly FTS5's terms: the words are split here
and each distinct word is stemmed by SQLite's own tokenizer (``store.stemming``; Milvus
Lite has no stemmer, a cluster's "english" analyser is another one again, and PyStemmer's
"porter" differs from SQLite's). Queries are reduced the same way, without the stop words
FTS5 queries leave out (``store.filters.STOPWORDS``).

``TERMS_VERSION`` names this reduction; a keyword cache or collection made by another is
made again.
"""

from __future__ import annotations

import functools
import re

from .store.filters import STOPWORDS
from .store.stemming import Stems

__all__ = ["document_terms", "query_terms", "TERMS_VERSION"]

# 1: PyStemmer's Snowball "porter"; 2: SQLite's porter, as FTS5.
TERMS_VERSION = "2"
# unicode61 keeps letters and digits together and splits on everything else, "_" included.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@functools.cache
def _stems() -> Stems:
    return Stems()


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def document_terms(*texts: str | None) -> str:
    """The stemmed words of ``texts`` (a title and a chunk), in order, joined by spaces."""
    return " ".join(_stems().of([w for text in texts if text for w in _words(text)]))


def query_terms(text: str) -> str:
    """The stemmed words of a query, each once, stop words left out ("" when none is left)."""
    words = [w for w in dict.fromkeys(_words(text)) if w not in STOPWORDS]
    return " ".join(dict.fromkeys(_stems().of(words)))
