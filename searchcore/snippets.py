"""Snippets: the passage of a hit that matched, with the query's words marked.

A chunk is up to 256 tokens; a result list shows a line or two of it. The snippet is
centred on the chunk's best sentence for the query: the one holding the most distinct
query words (then the most matches, then the earliest), widened with the sentences around
it while they fit. Words match by a light stem (plural, -ed, -ing, -ly), as the keyword
index's Porter stemmer would match most of them; in a document of another language with a
stemmer of its own (``lang``), by that language's Snowball stem, as its keywords were
indexed. Common words never count. A hit found by meaning alone, sharing no word with the
query, shows the start of its chunk.

``snippet`` returns the text and the character spans of the matched words in it, so the
command line can embolden them and the search page can mark them without guessing again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .store.filters import STOPWORDS
from .store.stemming import SNOWBALL, stemmed_words

__all__ = ["Snippet", "snippet", "query_terms", "stems"]

_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"')\]]*\s+")
_SUFFIXES = ("ies", "ing", "ed", "es", "ly", "s")


@dataclass(frozen=True)
class Snippet:
    text: str
    highlights: list[tuple[int, int]]  # [start, end) of each matched word in ``text``


def _stem(word: str) -> str:
    word = word.lower()
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _stemmer(lang: str | None) -> Callable[[str], str]:
    if lang not in SNOWBALL:
        return _stem
    return lambda word: (stemmed_words([word.lower()], lang) or [word])[0]


def query_terms(query: str, lang: str | None = None) -> set[str]:
    """The stems a snippet marks for ``query``: its words, common ones left out."""
    stem = _stemmer(lang)
    return {stem(w) for w in _WORD.findall(query.lower()) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())}


def stems(text: str) -> set[str]:
    """The light stems of every word of ``text`` (common words included)."""
    return {_stem(w) for w in _WORD.findall(text)}


def _matches(text: str, terms: set[str], stem: Callable[[str], str]) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), found) for m in _WORD.finditer(text) if (found := stem(m.group())) in terms]


def snippet(text: str, query: str, width: int = 240, lang: str | None = None) -> Snippet:
    """At most about ``width`` characters of ``text`` (of a document in ``lang``) around its
    best sentence for ``query``."""
    flat = " ".join(text.split())
    terms = query_terms(query, lang)
    matches = _matches(flat, terms, _stemmer(lang)) if terms else []
    if not matches:
        return _cut(flat, 0, width, [])
    bounds, cursor = [], 0
    for m in _SENTENCE_END.finditer(flat):
        bounds.append((cursor, m.start()))
        cursor = m.end()
    bounds.append((cursor, len(flat)))

    def score(span: tuple[int, int]) -> tuple[int, int, int]:
        inside = [stem for start, _, stem in matches if span[0] <= start < span[1]]
        return (len(set(inside)), len(inside), -span[0])

    best = max(range(len(bounds)), key=lambda i: score(bounds[i]))
    start, end = bounds[best]
    if end - start > width:  # one long sentence: centre on its first match
        first = next(s for s, _, _ in matches if start <= s < end)
        start = max(start, first - width // 3)
        return _cut(flat, start, width, matches)
    before, after = best - 1, best + 1
    while True:  # widen with whole sentences while they fit, after first, then before
        if after < len(bounds) and bounds[after][1] - start <= width:
            end = bounds[after][1]
            after += 1
        elif before >= 0 and end - bounds[before][0] <= width:
            start = bounds[before][0]
            before -= 1
        else:
            break
    return _cut(flat, start, end - start, matches)


def _cut(flat: str, start: int, width: int, matches: list[tuple[int, int, str]]) -> Snippet:
    end = min(len(flat), start + width)
    if end < len(flat) and flat[end] != " " and flat[end - 1] != " ":  # end between words
        space = flat.rfind(" ", start, end)
        end = space if space > start + width // 2 else end
    if start > 0 and flat[start - 1] != " ":  # start at a word
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(flat) else ""
    body = flat[start:end]
    shift = len(prefix) - start
    spans = [(s + shift, e + shift) for s, e, _ in matches if s >= start and e <= end]
    return Snippet(prefix + body + suffix, spans)
