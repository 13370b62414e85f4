"""Text as every reader hands it on: decoded, normalised, and checked for being language.

Decoding: a byte-order mark wins (UTF-8, UTF-16, UTF-32); otherwise UTF-8; a file that
is UTF-8 but for a few bad bytes (it has valid multi-byte characters too) is read with
the bad bytes replaced, and says how many; a file with no valid multi-byte character is
legacy 8-bit text and read as cp1252. A NUL byte, or many control characters, in the first
8 KiB means binary.

Normalisation (``normalise``), applied to every document before chunking and BM25:
Unicode NFKC (ligatures such as "ﬁ" become "fi", full-width forms plain), soft hyphens
dropped, and a word broken by a hyphen at the end of a line joined again ("signi-\\n
ficantly" -> "significantly\\n"): the line break moves after the word, so line numbers
stay those of the file.

The quality gate (``unreadable``) says why an extracted text is not language: runs of
glyph codes (``/g12/g7`` or ``/97/112``, what some PDF fonts give instead of text),
control or private-use characters, or too few letters. It is applied to what a reader
extracts from a layout (PDF pages, office files), not to files people write as text: a
CSV of numbers is fine.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

from .errors import Skip

__all__ = ["decode_text", "normalise", "unreadable", "tidy", "good_title", "longest_line"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(data: bytes, notes: list[str] | None = None) -> str:
    """The text of ``data``; a note is appended to ``notes`` when bad bytes were replaced."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise Skip(f"undecodable ({encoding} with errors)") from exc
    if b"\x00" in data[:8192]:
        raise Skip("binary")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = _legacy_or_replaced(data, notes)
    head = text[:8192]
    if sum(1 for ch in head if ord(ch) < 32 and ch not in "\t\n\r\f") > len(head) * 0.01:
        raise Skip("binary")
    return text


def _legacy_or_replaced(data: bytes, notes: list[str] | None) -> str:
    replaced = data.decode("utf-8", errors="replace")
    bad = replaced.count("\ufffd") - data.count("\ufffd".encode())
    valid_multibyte = sum(1 for ch in replaced if ord(ch) > 0x7F and ch != "\ufffd")
    if valid_multibyte == 0:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            pass
    if bad > max(16, len(data) // 20):
        raise Skip("undecodable (not UTF-8, UTF-16 or cp1252)")
    if notes is not None:
        notes.append(f"{bad} undecodable byte{'s' if bad != 1 else ''} replaced")
    return replaced


# A letter, then a hyphen (ASCII or U+2010), a line break and the rest of the word in
# lower case: a word broken at the end of a line.
_BROKEN_WORD = re.compile(r"(\w*[^\W\d_])[-\u2010][ \t]*\n([ \t]*)([a-z\u00df-\u00ff]+)([,.;:!?)\]\"']*)")
_SOFT_HYPHEN = "\u00ad"


def normalise(text: str) -> str:
    """NFKC, no soft hyphens or stray NUL bytes, words broken over a line end joined (line
    count unchanged)."""
    text = unicodedata.normalize("NFKC", text.replace(_SOFT_HYPHEN, "").replace("\x00", ""))
    if "-\n" in text or "\u2010\n" in text or "- \n" in text:
        text = _BROKEN_WORD.sub(r"\1\3\4\n\2", text)
    return text


_GLYPH_CODES = re.compile(r"(?:/[A-Za-z]{0,3}\d{1,5}){4,}|(?:\(cid:\d+\)){3,}")


def unreadable(text: str) -> str | None:
    """Why ``text`` is not language (None when it reads as text)."""
    sample = text[:200_000]
    visible = [ch for ch in sample if not ch.isspace()]
    if not visible:
        return None
    codes = sum(len(m.group()) for m in _GLYPH_CODES.finditer(sample))
    if codes > len(visible) * 0.2:
        return "glyph codes instead of text"
    odd = sum(1 for ch in visible if unicodedata.category(ch) in ("Cc", "Co", "Cs", "Cn"))
    if odd > len(visible) * 0.05:
        return "control or private-use characters"
    letters = sum(1 for ch in visible if ch.isalpha())
    if len(visible) >= 40 and letters < len(visible) * 0.4:
        return "too few letters"
    return None


def tidy(text: str) -> str:
    """Collapse runs of spaces inside lines and of blank lines between paragraphs."""
    lines = [re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip() for line in text.split("\n")]
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return out.strip()


# Titles that name a tool or a file instead of the document.
_JUNK_TITLE = re.compile(
    r"""^(?:untitled|no\s*title|title|document\d*|slide\s*\d*|presentation\d*|book\d*|draft|
    microsoft\s+(?:word|powerpoint|excel)\s*-.*|.*\.(?:dvi|docx?|pptx?|xlsx?|odt|rtf|tex|pdf|txt|ps|eps|indd|qxd|pages)|
    [\W\d_]*)$""",
    re.IGNORECASE | re.VERBOSE,
)


def good_title(title: object) -> str | None:
    """``title`` if it names the document; None for "untitled", "paper.dvi", "Microsoft Word - x.doc"..."""
    if title is None:
        return None
    text = " ".join(str(title).split())
    if not text or len(text) > 300 or _JUNK_TITLE.match(text):
        return None
    return text


def first_line_title(text: str) -> str | None:
    """The first heading or line of ``text`` that reads as a title (for documents whose
    metadata title is missing or junk)."""
    for line in text.splitlines()[:40]:
        line = line.strip().lstrip("#").strip()
        if 3 <= len(line) <= 200 and sum(ch.isalpha() for ch in line) >= len(line) * 0.5:
            return good_title(line[:120])
    return None


def longest_line(text: str) -> int:
    return max((len(line) for line in text.split("\n")), default=0)
