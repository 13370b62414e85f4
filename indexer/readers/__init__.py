"""Bytes of a file -> documents of plain text: one reader per format.

| kind | extensions | reader |
|---|---|---|
| text | .txt, source and config files, README... | ``text`` |
| markdown | .md .markdown .mdx | ``text`` (headings start sections) |
| rst | .rst .rest | docutils (``books``) |
| html | .html .htm .xhtml | ``markup`` |
| svg | .svg | ``markup``: title, desc and text only |
| pdf | .pdf | PDFium (``pdf``); scanned pages by OCR |
| image | .png .jpg .jpeg .webp .gif .bmp .tif .tiff | ``images``: OCR, and a caption with a caption model |
| docx, pptx, odt, odp, rtf | .docx .pptx .odt .odp .rtf | ``office`` |
| epub, notebook, po | .epub .ipynb .po .pot | ``books`` |
| json, jsonl | .json; .jsonl .ndjson | ``records`` |
| xlsx, ods, csv | .xlsx .xlsm; .ods; .csv .tsv | ``sheets``: a section per sheet, a line per row |
| eml, mbox | .eml; .mbox | ``mail``: a document per message, readable attachments their own |

Every document's text and title are then normalised (``text.normalise``: NFKC,
de-hyphenation), so chunks and BM25 see "significantly" where a PDF had "signiﬁ-
cantly". Anything else, binary or undecodable raises ``Skip`` with a short reason that
the run names the file with; what was read with a warning comes back as notes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from .books import read_epub, read_notebook, read_po, read_rst
from .errors import Document, Reading, Skip
from .images import IMAGE_SUFFIXES, Vision, read_image
from .mail import read_eml, read_mbox
from .markup import read_html, read_svg
from .office import read_docx, read_odf, read_pptx, read_rtf
from .pdf import read_pdf
from .records import read_json, read_jsonl
from .sheets import read_csv, read_ods, read_xlsx
from .text import decode_text, longest_line, normalise

logger = logging.getLogger("indexer")

__all__ = [
    "Document",
    "Reading",
    "Skip",
    "Vision",
    "read_document",
    "file_kind",
    "TEXT_EXTENSIONS",
    "KINDS",
    "SECTIONED",
    "LONG_LINE",
    "READERS_VERSION",
]

# Recorded with every skipped file: a file skipped by older readers is read again.
READERS_VERSION = "4"

TEXT_EXTENSIONS = frozenset(
    """
    .txt .text .adoc .asciidoc .org .tex .log
    .py .pyi .js .mjs .cjs .ts .tsx .jsx .java .kt .kts .scala .go .rs .c .h .cc .cpp .cxx .hpp .hh
    .cs .fs .swift .m .mm .rb .php .pl .pm .lua .r .jl .dart .ex .exs .erl .hs .ml .mli .clj
    .sh .bash .zsh .fish .ps1 .bat .sql .graphql .proto .css .scss .sass .less .vue .svelte
    .toml .yaml .yml .ini .cfg .conf .properties .env.example .xml
    """.split()
)
# Files commonly named without an extension that are text.
TEXT_NAMES = frozenset("README LICENSE LICENCE COPYING AUTHORS CHANGELOG NOTICE Makefile Dockerfile".split())

_BY_SUFFIX = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".rst": "rst",
    ".rest": "rst",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".svg": "svg",
    ".pdf": "pdf",
    ".docx": "docx",
    ".docm": "docx",
    ".dotx": "docx",
    ".dotm": "docx",
    ".pptx": "pptx",
    ".pptm": "pptx",
    ".ppsx": "pptx",
    ".ppsm": "pptx",
    ".potx": "pptx",
    ".odt": "odt",
    ".odp": "odp",
    ".rtf": "rtf",
    ".epub": "epub",
    ".ipynb": "notebook",
    ".po": "po",
    ".pot": "po",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".ods": "ods",
    ".csv": "csv",
    ".tsv": "csv",
    ".eml": "eml",
    ".mbox": "mbox",
    **{suffix: "image" for suffix in sorted(IMAGE_SUFFIXES)},
}

_READERS: dict[str, Callable[[bytes, list[str]], list[Document]]] = {
    "rst": read_rst,
    "html": read_html,
    "svg": read_svg,
    "docx": read_docx,
    "pptx": read_pptx,
    "odt": read_odf,
    "odp": read_odf,
    "rtf": read_rtf,
    "epub": read_epub,
    "notebook": read_notebook,
    "po": read_po,
    "jsonl": read_jsonl,
    "json": read_json,
    "xlsx": read_xlsx,
    "ods": read_ods,
    "csv": read_csv,
}
KINDS = ("text", *dict.fromkeys(_BY_SUFFIX.values()))
# Kinds whose text is Markdown-like: headings start sections no chunk crosses.
SECTIONED = frozenset({"markdown", "rst", "docx", "pptx", "odt", "odp", "epub", "notebook", "image", "xlsx", "ods"})
# A line longer than this in a text file is worth a note (a minified bundle, a one-line dump).
LONG_LINE = 100_000


def file_kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    if suffix in TEXT_EXTENSIONS or (not suffix and path.name in TEXT_NAMES):
        return "text"
    return None


def read_document(path: Path, data: bytes, vision: Vision | None = None) -> Reading:
    """The kind, documents and notes of one file's bytes, or raise ``Skip``. ``vision``
    reads images and scanned PDF pages (without it, images have no text)."""
    kind = file_kind(path)
    if kind is None:
        raise Skip("unsupported file type")
    if not data:
        raise Skip("empty file")
    notes: list[str] = []
    try:
        docs = _read(kind, data, notes, vision)
    except (Skip, MemoryError):
        raise
    except Exception as exc:  # a reader's bug or a library's on one odd file: skip that file, never the run
        logger.warning("%s: the %s reader failed", path, kind, exc_info=True)
        raise Skip(f"reader failed: {type(exc).__name__} in the {kind} reader ({_first_line(exc)})") from None
    for doc in docs:
        doc.text = normalise(doc.text)
        if doc.title:
            doc.title = normalise(doc.title)
    if kind != "image" and not any(doc.text.strip() or (doc.title or "").strip() for doc in docs):
        raise Skip(_NO_TEXT.get(kind, "no text: the file was read and holds no words to index"))
    return Reading(kind, docs, notes)


_NO_TEXT = {
    "json": 'no text: no record has a "text" or "title" field (see the README, JSON records)',
    "jsonl": 'no text: no record has a "text" or "title" field (see the README, JSON records)',
    "pdf": "no text: no page has a text layer or text that OCR could read",
}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else "no message"


def _attachment(name: str, data: bytes, notes: list[str]) -> list[Document] | None:
    """The documents of a mail attachment in a format the index reads (images and mail
    inside mail are not read); what could not be read is a warning of the message's file."""
    kind = file_kind(Path(name))
    if kind is None or kind in ("image", "eml", "mbox"):
        return None
    read: list[str] = []
    try:
        docs = _read(kind, data, read, None)
    except Skip as skip:
        notes.append(f"attachment {name}: {skip}")
        return None
    except Exception as exc:  # as for a file: one attachment never stops its message
        notes.append(f"attachment {name}: reader failed: {type(exc).__name__} in the {kind} reader")
        return None
    notes.extend(f"attachment {name}: {note}" for note in read)
    return [doc for doc in docs if doc.text.strip() or doc.title] or None


def _read(kind: str, data: bytes, notes: list[str], vision: Vision | None) -> list[Document]:
    reader = _READERS.get(kind)
    if kind in ("eml", "mbox"):
        return (read_eml if kind == "eml" else read_mbox)(data, notes, _attachment)
    if kind == "image":
        return read_image(data, notes, vision)
    if kind == "pdf":
        return read_pdf(data, notes, vision)
    if reader is not None:
        return reader(data, notes)
    docs = [Document("", decode_text(data, notes))]
    if kind in ("text", "markdown") and (longest := longest_line(docs[0].text)) > LONG_LINE:
        notes.append(f"one line of {longest:,} characters (chunked by sentences and tokens)")
    return docs
