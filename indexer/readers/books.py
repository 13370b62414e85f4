"""E-books, notebooks, reStructuredText and gettext catalogues.

- EPUB (ebooklib): the chapters in reading (spine) order, each as its visible text with
  its headings as Markdown headings; title and author from the book's Dublin Core.
- Jupyter notebooks (nbformat): Markdown cells as they are, code cells as fenced code
  blocks; outputs are dropped (they are results, often huge, rarely what people search).
- reStructuredText (docutils): parsed, not read as plain text: sections become headings,
  markup is stripped (``**bold**``, roles, link targets), the document title is the
  title and a bibliographic field list (``:Author:``, ``:Date:``...) becomes metadata.
  Nothing outside the file is read: ``include`` and ``raw`` directives are disabled, and
  directives docutils does not know (Sphinx's) are left out, not fatal.
- gettext catalogues (.po, polib): each message with its translation, one per line.
"""

from __future__ import annotations

import io
import re
import zipfile

from .errors import Document, Skip
from .markup import _VisibleText
from .text import decode_text, first_line_title, good_title, tidy

__all__ = ["read_epub", "read_notebook", "read_rst", "read_po"]


def _chapter(markup: bytes) -> str:
    """The visible text of an XHTML chapter, headings as Markdown headings."""

    class Chapter(_VisibleText):
        def handle_starttag(self, tag: str, attrs: list) -> None:
            super().handle_starttag(tag, attrs)
            if tag in self._HEADINGS and not self._hidden:
                self.parts.append("#" * int(tag[1]) + " ")

    parser = Chapter()
    parser.feed(markup.decode("utf-8", errors="replace"))
    parser.close()
    return tidy("".join(parser.parts))


def read_epub(data: bytes, notes: list[str]) -> list[Document]:
    import ebooklib
    from ebooklib import epub

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise Skip("corrupt EPUB (not a zip container)")
    try:
        book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": True})
    except Exception as exc:  # ebooklib raises EpubException, KeyError, lxml errors...
        raise Skip("corrupt EPUB") from exc
    by_id = {item.get_id(): item for item in book.get_items_of_type(ebooklib.ITEM_DOCUMENT)}
    order = [by_id.pop(idref) for idref, _ in book.spine if idref in by_id] + list(by_id.values())
    chapters = [text for item in order if (text := _chapter(item.get_content()))]
    text = "\n\n".join(chapters)
    titles = [value for value, _ in book.get_metadata("DC", "title")]
    authors = [value for value, _ in book.get_metadata("DC", "creator")]
    metadata = {"author": authors[0]} if authors and good_title(authors[0]) else {}
    title = good_title(titles[0]) if titles else None
    return [Document("", text, title=title or first_line_title(text), metadata=metadata)]


def read_notebook(data: bytes, notes: list[str]) -> list[Document]:
    import nbformat

    try:
        notebook = nbformat.reads(decode_text(data, notes), as_version=4)
    except Exception as exc:  # NotJSONError, validation errors
        raise Skip("corrupt notebook (not nbformat JSON)") from exc
    language = notebook.metadata.get("language_info", {}).get("name") or notebook.metadata.get("kernelspec", {}).get(
        "language", ""
    )
    parts = []
    for cell in notebook.cells:
        source = cell.get("source", "").strip()
        if not source:
            continue
        if cell.cell_type == "code":
            parts.append(f"```{language}\n{source}\n```")
        elif cell.cell_type == "markdown":
            parts.append(source)
    text = "\n\n".join(parts)
    return [Document("", text, title=first_line_title(text), metadata={"language": language} if language else {})]


_RST_SETTINGS = {
    "report_level": 5,  # say nothing
    "halt_level": 5,  # never stop on an error
    "file_insertion_enabled": False,  # `.. include::` must not read other files
    "raw_enabled": False,
    "input_encoding": "unicode",
    "_disable_config": True,
    "warning_stream": io.StringIO(),
}


# The first block of a file, when every line is "Field: value" (or a continuation).
_RFC2822 = re.compile(r"\A(?:[A-Za-z][\w-]*:[ \t]+\S.*\n(?:[ \t]+\S.*\n)*)+(?=\s*\n)")
_HEADER_TITLE = re.compile(r"^Title:", re.M)


def read_rst(data: bytes, notes: list[str]) -> list[Document]:
    from docutils import nodes
    from docutils.core import publish_doctree
    from docutils.parsers.rst import Parser

    source = decode_text(data, notes)
    # An RFC 2822 header first ("PEP: 238", "Title: ...", "Author: ..."): docutils reads it
    # as the document's fields (its PEP reader's parser), so Title is the title.
    header = _RFC2822.match(source)
    parser = Parser(rfc2822=True) if header and _HEADER_TITLE.search(header.group(0)) else None
    try:
        tree = publish_doctree(
            source, parser=parser, settings_overrides=dict(_RST_SETTINGS, warning_stream=io.StringIO())
        )
    except Exception as exc:  # docutils' own errors, or a recursion in a hostile file
        raise Skip("reStructuredText that docutils cannot parse") from exc
    lines: list[str] = []
    metadata: dict = {}

    def walk(node, depth: int) -> None:
        for child in node.children:
            if isinstance(child, (nodes.system_message, nodes.comment, nodes.substitution_definition, nodes.target)):
                continue
            if isinstance(child, nodes.docinfo):
                for field in child.children:
                    name = field.tagname if not isinstance(field, nodes.field) else field[0].astext()
                    value = field.astext() if not isinstance(field, nodes.field) else field[1].astext()
                    metadata[name.lower()] = " ".join(value.split())
            elif isinstance(child, nodes.section):
                title = child.next_node(nodes.title)
                if title is not None:
                    lines.append("#" * min(6, depth + 1) + " " + " ".join(title.astext().split()))
                walk(child, depth + 1)
            elif isinstance(child, nodes.title):
                continue  # a section's title, written above
            elif isinstance(child, (nodes.literal_block, nodes.doctest_block)):
                lines.append(child.astext())
            elif isinstance(child, (nodes.paragraph, nodes.line_block, nodes.rubric, nodes.field_name)):
                lines.append(" ".join(child.astext().split()))
            elif isinstance(child, nodes.Element):
                walk(child, depth)

    walk(tree, 1 if tree.get("title") else 0)
    text = "\n\n".join(line for line in lines if line.strip())
    title = good_title(tree.get("title")) or good_title(metadata.pop("title", None)) or first_line_title(text)
    if tree.get("title"):
        text = f"# {tree['title']}\n\n{text}" if text else f"# {tree['title']}"
    return [Document("", text, title=title, metadata=metadata)]


def read_po(data: bytes, notes: list[str]) -> list[Document]:
    import polib

    try:
        catalogue = polib.pofile(decode_text(data, notes))
    except (OSError, ValueError) as exc:
        raise Skip("corrupt gettext catalogue") from exc
    lines = []
    for entry in catalogue:
        if entry.obsolete or not entry.msgid:
            continue
        translated = entry.msgstr or " / ".join(v for _, v in sorted(entry.msgstr_plural.items()) if v)
        lines.append(f"{entry.msgid} = {translated}" if translated else entry.msgid)
    meta = catalogue.metadata
    metadata = {"language": meta["Language"]} if meta.get("Language") else {}
    return [Document("", "\n".join(lines), title=good_title(meta.get("Project-Id-Version")), metadata=metadata)]
