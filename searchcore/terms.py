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
from collections.abc import Sequence

from .store.filters import STOPWORDS
from .store.stemming import Stems, keyword_text, stemmed_words

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


def document_terms(*texts: str | None, lang: str | None = None) -> str:
    """The stemmed words of ``texts`` (a title and a chunk), in order, joined by spaces;
    with ``lang``, texts as written, first reduced by that language's stemmer as index.db
    keeps them (``store.keyword_text``)."""
    if lang is not None:
        texts = tuple(keyword_text(text, lang) or text if text else text for text in texts)
    return " ".join(_stems().of([w for text in texts if text for w in _words(text)]))


def query_terms(text: str, languages: Sequence[str] = ()) -> str:
    """The stemmed words of a query, each once, stop words left out ("" when none is left);
    with ``languages``, also the words as each language's stemmer reduces them (as
    ``store.fts_query``)."""
    words = [w for w in dict.fromkeys(_words(text)) if w not in STOPWORDS]
    words += [s for lang in languages for s in stemmed_words(words, lang) or ()]
    return " ".join(dict.fromkeys(_stems().of(words)))
