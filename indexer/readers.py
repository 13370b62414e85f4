"""Bytes of a file -> documents of plain text.

Readers by extension: plain text, Markdown, reStructuredText and common source-code and
config formats as text; HTML as its visible text (no scripts, styles or markup); PDF via
pypdf; JSONL and JSON as records, one document per record. Anything else, binary or
undecodable raises ``Skip`` with a short reason that the run's summary counts.

Text decoding: a BOM wins (UTF-8, UTF-16, UTF-32); otherwise UTF-8, then cp1252 for
legacy 8-bit text. A NUL byte in the first 8 KiB without a UTF-16/32 BOM means binary.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["Document", "Skip", "read_document", "file_kind", "TEXT_EXTENSIONS"]

TEXT_EXTENSIONS = frozenset(
    """
    .txt .text .md .markdown .mdx .rst .adoc .asciidoc .org .tex .log .csv .tsv
    .py .pyi .js .mjs .cjs .ts .tsx .jsx .java .kt .kts .scala .go .rs .c .h .cc .cpp .cxx .hpp .hh
    .cs .fs .swift .m .mm .rb .php .pl .pm .lua .r .jl .dart .ex .exs .erl .hs .ml .mli .clj
    .sh .bash .zsh .fish .ps1 .bat .sql .graphql .proto .css .scss .sass .less .vue .svelte
    .toml .yaml .yml .ini .cfg .conf .properties .env.example .xml .svg
    """.split()
)
# Files commonly named without an extension that are text.
TEXT_NAMES = frozenset("README LICENSE LICENCE COPYING AUTHORS CHANGELOG NOTICE Makefile Dockerfile".split())

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass
class Document:
    key: str  # record id inside a JSON/JSONL file; "" for a whole file
    text: str
    title: str | None = None
    metadata: dict = field(default_factory=dict)


class Skip(Exception):
    """The file cannot be indexed; ``str(skip)`` is the reason counted in the summary."""


def file_kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in {".md", ".markdown", ".mdx"}:
        return "markdown"
    if suffix in {".html", ".htm", ".xhtml"}:
        return "html"
    if suffix == ".pdf":
        return "pdf"
    if suffix == ".jsonl" or suffix == ".ndjson":
        return "jsonl"
    if suffix == ".json":
        return "json"
    if suffix in TEXT_EXTENSIONS or (not suffix and path.name in TEXT_NAMES):
        return "text"
    return None


def decode_text(data: bytes) -> str:
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
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise Skip("undecodable (not UTF-8, UTF-16 or cp1252)") from exc
    head = text[:8192]
    if sum(1 for ch in head if ord(ch) < 32 and ch not in "\t\n\r\f") > len(head) * 0.01:
        raise Skip("binary")
    return text


class _VisibleText(HTMLParser):
    _HIDDEN = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object"}
    _BLOCK = set(
        "address article aside blockquote br dd div dl dt fieldset figcaption figure footer form "
        "h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section table td th tr ul".split()
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

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

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._hidden:
            self.parts.append(data)


def _tidy(text: str) -> str:
    """Collapse runs of spaces inside lines and of blank lines between paragraphs."""
    lines = [re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip() for line in text.split("\n")]
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return out.strip()


def read_html(data: bytes) -> list[Document]:
    parser = _VisibleText()
    parser.feed(decode_text(data))
    parser.close()
    title = _tidy("".join(parser.title_parts)) or None
    return [Document("", _tidy("".join(parser.parts)), title=title)]


def read_pdf(data: bytes) -> list[Document]:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise Skip("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or None
    except Skip:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError) as exc:
        raise Skip("corrupt PDF") from exc
    text = "\n\n".join(_tidy(page) for page in pages if page.strip())
    if not text.strip():
        raise Skip("PDF without extractable text")
    return [Document("", text, title=str(title).strip() or None if title else None, metadata={"pages": len(pages)})]


def _record(obj: object, where: str, fallback_key: str) -> Document:
    if not isinstance(obj, dict):
        raise Skip(f"JSON record is not an object ({where})")
    raw_key = obj.get("_id", obj.get("id"))
    key = str(raw_key) if raw_key is not None and str(raw_key) != "" else fallback_key
    title = obj.get("title")
    text = obj.get("text")
    title = str(title).strip() if title not in (None, "") else None
    text = "" if text is None else (text if isinstance(text, str) else json.dumps(text, ensure_ascii=False))
    metadata = {k: v for k, v in obj.items() if k not in {"_id", "id", "title", "text"}}
    return Document(key, text, title=title, metadata=metadata)


def _unique(docs: list[Document]) -> list[Document]:
    seen: set[str] = set()
    for doc in docs:
        if doc.key in seen:
            raise Skip(f"duplicate record id {doc.key!r}")
        seen.add(doc.key)
    return docs


def read_jsonl(data: bytes) -> list[Document]:
    docs = []
    for lineno, line in enumerate(decode_text(data).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise Skip(f"invalid JSON on line {lineno}") from exc
        docs.append(_record(obj, f"line {lineno}", f"line-{lineno}"))
    return _unique(docs)


def read_json(data: bytes) -> list[Document]:
    try:
        obj = json.loads(decode_text(data))
    except json.JSONDecodeError as exc:
        raise Skip(f"invalid JSON on line {exc.lineno}") from exc
    items = obj if isinstance(obj, list) else [obj]
    return _unique([_record(item, f"item {i}", f"item-{i}") for i, item in enumerate(items)])


def read_document(path: Path, data: bytes) -> tuple[str, list[Document]]:
    """(kind, documents) for one file's bytes, or raise ``Skip``."""
    kind = file_kind(path)
    if kind is None:
        raise Skip("unsupported file type")
    if kind == "pdf":
        return kind, read_pdf(data)
    if kind == "html":
        return kind, read_html(data)
    if kind == "jsonl":
        return kind, read_jsonl(data)
    if kind == "json":
        return kind, read_json(data)
    return kind, [Document("", decode_text(data))]
