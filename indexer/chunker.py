"""Split a document's text into chunks that each fit the embedding model whole.

Scope: structure first, then size. Markdown headings start a new section that no chunk
crosses; inside a section the text is cut into paragraphs, a paragraph that is too long
into lines, a line into sentences, and a sentence into windows of tokens. The pieces are
then packed greedily into chunks of at most ``size`` tokens, and consecutive chunks share
up to ``overlap`` tokens of whole pieces (windows of one long sentence overlap by
``overlap`` tokens themselves).

Sizes are counted in the model's own tokens, from one tokenisation of the whole text
(the ``spans`` argument: each token's character start and end), never in characters or
words, so no chunk is silently truncated by the model. Every chunk keeps its character
span (``text[char_start:char_end] == chunk.text``) and its 1-based line span.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Chunk", "chunk_text"]

_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"')\]]*\s+")
# How far back a token window may move its cut to land between two words.
_MAX_BACKOFF = 16


@dataclass(frozen=True)
class Chunk:
    text: str
    char_start: int
    char_end: int
    line_start: int
    line_end: int


class _Tokens:
    """Token counts over character ranges, by binary search over the token spans."""

    def __init__(self, spans: Sequence[tuple[int, int]] | np.ndarray):
        spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
        self.starts = spans[:, 0]
        # Tokens never end before the one ahead of them ends, but make sure for bisection.
        self.ends = np.maximum.accumulate(spans[:, 1]) if len(spans) else spans[:, 1]

    def __len__(self) -> int:
        return len(self.starts)

    def index_range(self, start: int, end: int) -> tuple[int, int]:
        """Indices [first, last) of the tokens lying wholly inside [start, end)."""
        return int(np.searchsorted(self.starts, start, "left")), int(np.searchsorted(self.ends, end, "right"))

    def count(self, start: int, end: int) -> int:
        first, last = self.index_range(start, end)
        return max(0, last - first)


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _split(text: str, start: int, end: int, pattern: re.Pattern) -> list[tuple[int, int]]:
    pieces, cursor = [], start
    for match in pattern.finditer(text, start, end):
        pieces.append((cursor, match.start()))
        cursor = match.end()
    pieces.append((cursor, end))
    return [span for a, b in pieces if (span := _trim(text, a, b))]


def _sections(text: str, markdown: bool) -> list[tuple[int, int]]:
    if not markdown:
        return [(0, len(text))]
    bounds, offset, fenced = [0], 0, False
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and _HEADING.match(line) and offset > 0:
            bounds.append(offset)
        offset += len(line)
    bounds.append(len(text))
    return list(zip(bounds, bounds[1:]))


class _Chunker:
    def __init__(self, text: str, spans: Sequence[tuple[int, int]] | np.ndarray, size: int, overlap: int):
        self.text = text
        self.tokens = _Tokens(spans)
        self.size = size
        self.overlap = overlap

    def _word_boundary(self, index: int) -> bool:
        """Whether cutting before token ``index`` falls between words, not inside one."""
        starts, ends, text = self.tokens.starts, self.tokens.ends, self.text
        if index <= 0 or index >= len(self.tokens):
            return True
        if ends[index - 1] < starts[index]:
            return True  # whitespace (or nothing the tokenizer keeps) between them
        before, after = text[ends[index - 1] - 1], text[starts[index]]
        return not (before.isalnum() and after.isalnum())

    def _cut(self, index: int, floor: int) -> int:
        for candidate in range(index, max(floor, index - _MAX_BACKOFF), -1):
            if self._word_boundary(candidate):
                return candidate
        return index

    def _windows(self, start: int, end: int) -> list[tuple[int, int]]:
        first, last = self.tokens.index_range(start, end)
        starts, ends = self.tokens.starts, self.tokens.ends
        out, i = [], first
        while i < last:
            j = min(i + self.size, last)
            if j < last:
                j = self._cut(j, i + 1)
            out.append((int(starts[i]), int(ends[j - 1])))
            if j >= last:
                break
            nxt = self._cut(max(j - self.overlap, i + 1), i + 1)
            i = nxt if nxt > i else j
        return out

    def _pieces(self, start: int, end: int, level: int = 0) -> list[tuple[int, int]]:
        """Spans of at most ``size`` tokens covering the text in [start, end)."""
        if self.tokens.count(start, end) <= self.size:
            return [(start, end)]
        if level == 0:
            parts = _split(self.text, start, end, _PARAGRAPH_BREAK)
        elif level == 1:
            parts = _split(self.text, start, end, re.compile(r"\n"))
        elif level == 2:
            parts = _split(self.text, start, end, _SENTENCE_END)
        else:
            return self._windows(start, end)
        if len(parts) == 1 and parts[0] == (start, end):
            return self._pieces(start, end, level + 1)
        out = []
        for a, b in parts:
            out.extend(self._pieces(a, b, level + 1))
        return out

    def _pack(self, pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
        count = self.tokens.count
        out, i, n = [], 0, len(pieces)
        while i < n:
            j = i
            while j + 1 < n and count(pieces[i][0], pieces[j + 1][1]) <= self.size:
                j += 1
            out.append((pieces[i][0], pieces[j][1]))
            if j + 1 >= n:
                break
            nxt = j + 1
            if self.overlap:
                t = j
                while t > i and count(pieces[t][0], pieces[j][1]) <= self.overlap:
                    t -= 1
                nxt = t + 1
                # The next chunk must reach past this one, or packing would stall.
                while nxt <= j and count(pieces[nxt][0], pieces[j + 1][1]) > self.size:
                    nxt += 1
            i = nxt
        return out

    def spans(self, markdown: bool) -> list[tuple[int, int]]:
        out = []
        for start, end in _sections(self.text, markdown):
            trimmed = _trim(self.text, start, end)
            if trimmed is None:
                continue
            pieces = self._pieces(*trimmed)
            out.extend(self._pack(pieces))
        return out


def chunk_text(
    text: str,
    spans: Sequence[tuple[int, int]] | np.ndarray,
    size: int,
    overlap: int = 0,
    *,
    markdown: bool = False,
) -> list[Chunk]:
    """Chunks of ``text``, each of at most ``size`` tokens according to ``spans``.

    ``spans`` are the (start, end) character offsets of the tokens of ``text``, as the
    model's tokenizer gives them, without special tokens.
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1 token, not {size}")
    if overlap < 0 or overlap >= size:
        raise ValueError(f"chunk overlap ({overlap}) must be at least 0 and smaller than the chunk size ({size})")
    newlines = [m.start() for m in re.finditer("\n", text)]
    chunks = []
    for start, end in _Chunker(text, spans, size, overlap).spans(markdown):
        chunks.append(
            Chunk(
                text=text[start:end],
                char_start=start,
                char_end=end,
                line_start=bisect.bisect_left(newlines, start) + 1,
                line_end=bisect.bisect_left(newlines, end - 1) + 1,
            )
        )
    return chunks
