"""HTML and XML as the text a person sees: HTML pages, the XHTML of an EPUB, SVG.

HTML keeps its visible text (no scripts, styles, markup) with blocks on their own lines
and ``<title>`` as the title; SVG keeps only what it says in words (``<title>``,
``<desc>`` and ``<text>``), never its path data.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from .errors import Document, Skip
from .text import decode_text, good_title, tidy

__all__ = ["html_text", "read_html", "read_svg"]


class _VisibleText(HTMLParser):
    _HIDDEN = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object"}
    _BLOCK = set(
        "address article aside blockquote br dd div dl dt fieldset figcaption figure footer form "
        "h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section table td th tr ul".split()
    )
    _HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self.first_heading: list[str] = []
        self._hidden = 0
        self._in_title = False
        self._heading = 0  # inside the first heading

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")
            if tag in self._HEADINGS and not self.first_heading:
                self._heading = 1

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")
            if tag in self._HEADINGS:
                self._heading = 0

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._hidden:
            self.parts.append(data)
            if self._heading:
                self.first_heading.append(data)


def html_text(markup: str) -> tuple[str, str | None]:
    """(visible text, title or first heading) of an HTML or XHTML page."""
    parser = _VisibleText()
    parser.feed(markup)
    parser.close()
    title = good_title(tidy("".join(parser.title_parts))) or good_title(tidy("".join(parser.first_heading)))
    return tidy("".join(parser.parts)), title


def read_html(data: bytes, notes: list[str]) -> list[Document]:
    text, title = html_text(decode_text(data, notes))
    return [Document("", text, title=title)]


def read_svg(data: bytes, notes: list[str]) -> list[Document]:
    try:
        root = ET.fromstring(data)  # noqa: S314 - entities are not expanded by ElementTree
    except ET.ParseError as exc:
        raise Skip("invalid SVG (not well-formed XML)") from exc
    title, lines = None, []
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
        if name in ("title", "desc", "text"):
            words = " ".join("".join(element.itertext()).split())
            if not words:
                continue
            if name == "title" and title is None:
                title = good_title(words)
            lines.append(words)
    return [Document("", "\n".join(dict.fromkeys(lines)), title=title)]
