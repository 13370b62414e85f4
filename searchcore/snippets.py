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

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from .store.filters import STOPWORDS
from .store.stemming import SNOWBALL, stemmed_words

__all__ = ["Snippet", "snippet", "query_terms", "stems"]

_WORD = re.compile(r"\w+", re.UNICODE)
# A sentence's last mark, then what ends it (group 1): closing quotes or brackets and space.
# The mark is matched rather than looked behind for, so the search skips to each mark.
_SENTENCE_END = re.compile(r"[.!?。！？]([\"')\]]*\s+)")
_SUFFIXES = ("ies", "ing", "ed", "es", "ly", "s")


@dataclass(frozen=True)
class Snippet:
    text: str
    highlights: list[tuple[int, int]]  # [start, end) of each matched word in ``text``


@functools.lru_cache(maxsize=65_536)  # a passage's words, found again and again
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


@functools.lru_cache(maxsize=1024)  # a page of hits asks for the same query's terms again and again
def query_terms(query: str, lang: str | None = None) -> frozenset[str]:
    """The stems a snippet marks for ``query``: its words, common ones left out."""
    stem = _stemmer(lang)
    return frozenset(
        stem(w) for w in _WORD.findall(query.lower()) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())
    )


def stems(text: str) -> set[str]:
    """The light stems of every word of ``text`` (common words included)."""
    return {_stem(w) for w in _WORD.findall(text)}


def _matches(text: str, terms: frozenset[str], stem: Callable[[str], str]) -> list[tuple[int, int, str]]:
    lower = text.lower()
    if stem is _stem and len(lower) == len(text):
        # The light stem: only a word that starts with a term (a final "y" left off) can
        # have a term's stem, so the text is searched for those beginnings (str.find), and
        # only the words found there are stemmed, not every word of the passage (SciFact
        # hits' passages: 59 us a passage before, 26 after, in one run); the same marks.
        forms, found = _forms(terms), {}
        for start in _starts(terms):
            at = lower.find(start)
            while at >= 0:
                if at == 0 or not _word_char(lower[at - 1]):
                    word = _WORD.match(lower, at).group()  # type: ignore[union-attr]
                    if word in forms and (stemmed := _stem(word)) in terms:
                        found[at] = (at, at + len(word), stemmed)
                at = lower.find(start, at + 1)
        return [found[at] for at in sorted(found)]
    return [(m.start(), m.end(), word) for m in _WORD.finditer(text) if (word := stem(m.group())) in terms]


def _word_char(char: str) -> bool:
    """Whether ``char`` is one ``\\w`` matches (what ends a word for ``_WORD``)."""
    return char.isalnum() or char == "_"


@functools.lru_cache(maxsize=256)
def _starts(terms: frozenset[str]) -> tuple[str, ...]:
    """What every word whose light stem is one of ``terms`` starts with."""
    return tuple(sorted({t[:-1] if t.endswith("y") else t for t in terms}))


@functools.lru_cache(maxsize=256)
def _forms(terms: frozenset[str]) -> frozenset[str]:
    """The lower-case words whose light stem can be one of ``terms``: each term with each
    suffix ``_stem`` takes off ("ies" in place of a final "y")."""
    forms = {t + suffix for t in terms for suffix in ("", *_SUFFIXES) if suffix != "ies"}
    return frozenset(forms | {t[:-1] + "ies" for t in terms if t.endswith("y")})


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
        bounds.append((cursor, m.start(1)))
        cursor = m.end()
    bounds.append((cursor, len(flat)))

    # Each match to its sentence (one pass, both in order), then the best sentence.
    held: dict[int, list[str]] = {}
    sentence = 0
    for begin, _, stem in matches:
        while sentence + 1 < len(bounds) and begin >= bounds[sentence + 1][0]:
            sentence += 1
        if bounds[sentence][0] <= begin < bounds[sentence][1]:
            held.setdefault(sentence, []).append(stem)
    best = max(held, key=lambda i: (len(set(held[i])), len(held[i]), -bounds[i][0])) if held else 0
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
