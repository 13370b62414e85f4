"""Office documents: Word (.docx), PowerPoint (.pptx), OpenDocument (.odt, .odp), RTF.

Each is read by the library that maintains the format: python-docx, python-pptx, odfpy
and striprtf. Headings become Markdown headings (``# ...``), so the chunker starts a
section at each and no chunk crosses one; a slide is a section titled with its title.
Tables become rows of cells joined by `` | ``; slide notes follow their slide. The title is
the document's own (core properties, Dublin Core) unless it is junk ("Presentation1",
"Microsoft Word - x.doc"), else the first heading.
"""

from __future__ import annotations

import io
import re
import zipfile

from .errors import Document, Skip
from .text import first_line_title, good_title

__all__ = ["read_docx", "read_pptx", "read_odf", "read_rtf"]

# ODF encodes characters of style and page names as _XX_ (hex): "Harbour_20_tides".
_ODF_NAME = re.compile(r"_([0-9A-Fa-f]{2})_")
# A DOCTYPE naming an external DTD, with no internal subset (no entities declared in it).
_DOCTYPE = re.compile(rb"<!DOCTYPE[^>\[]*>")
_HEADING_STYLE = re.compile(r"^(?:heading|überschrift|titre|título)\s*(\d)$", re.IGNORECASE)


def _done(lines: list[str], title: object, metadata: dict | None = None) -> list[Document]:
    text = "\n\n".join(line for line in lines if line.strip())
    return [Document("", text, title=good_title(title) or first_line_title(text), metadata=metadata or {})]


def _zip_guard(data: bytes, what: str) -> None:
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise Skip(f"corrupt {what} (not a zip container)")


# The main part's content type of a template, a slide show or a macro-enabled file, and the
# plain document's that python-docx / python-pptx open (the parts are the same otherwise).
_MAIN_TYPES = {
    b"wordprocessingml.template.main+xml": b"wordprocessingml.document.main+xml",
    b"application/vnd.ms-word.document.macroEnabled.main+xml": (
        b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    ),
    b"application/vnd.ms-word.template.macroEnabledTemplate.main+xml": (
        b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    ),
    b"presentationml.slideshow.main+xml": b"presentationml.presentation.main+xml",
    b"presentationml.template.main+xml": b"presentationml.presentation.main+xml",
    b"application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml": (
        b"application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
    ),
    b"application/vnd.ms-powerpoint.slideshow.macroEnabled.main+xml": (
        b"application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
    ),
}


def _as_document(data: bytes) -> bytes:
    """``data`` with a template's or slide show's main content type named as a document's:
    Word and PowerPoint save those with the same parts, which the libraries then read."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        try:
            types = source.read("[Content_Types].xml")
        except KeyError:
            return data
        changed = types
        for old, new in _MAIN_TYPES.items():
            changed = changed.replace(old, new)
        if changed == types:
            return data
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
            for item in source.infolist():
                target.writestr(item, changed if item.filename == "[Content_Types].xml" else source.read(item))
    return out.getvalue()


def read_docx(data: bytes, notes: list[str]) -> list[Document]:
    import docx
    from docx.table import Table

    _zip_guard(data, "Word document")
    data = _as_document(data)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors...
        raise Skip("corrupt Word document") from exc
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            lines += _table_rows(block)
            continue
        text = block.text.strip()
        if not text:
            continue
        style = block.style.name if block.style is not None else ""
        match = _HEADING_STYLE.match(style or "")
        if style == "Title":
            lines.append("# " + text)
        elif match:
            lines.append("#" * min(6, int(match.group(1))) + " " + text)
        else:
            lines.append(text)
    props = document.core_properties
    metadata = {"author": props.author} if good_title(props.author) else {}
    return _done(lines, props.title, metadata)


def _table_rows(table) -> list[str]:
    """Each row of a Word table as its cells joined by `` | ``; a table inside a cell (where
    python-docx's ``cell.text`` sees nothing) is read into its cell, row by row."""
    from docx.table import Table

    def cell_text(cell) -> str:
        parts = [
            "; ".join(_table_rows(block)) if isinstance(block, Table) else block.text
            for block in cell.iter_inner_content()
        ]
        return " ".join(" ".join(parts).split())

    rows = []
    for row in table.rows:
        cells = [cell_text(cell) for cell in row.cells]
        rows.append(" | ".join(dict.fromkeys(c for c in cells if c)))
    return rows


def read_pptx(data: bytes, notes: list[str]) -> list[Document]:
    from pptx import Presentation

    _zip_guard(data, "PowerPoint file")
    data = _as_document(data)
    try:
        deck = Presentation(io.BytesIO(data))
    except Exception as exc:
        raise Skip("corrupt PowerPoint file") from exc
    lines: list[str] = []
    first_title = None
    for number, slide in enumerate(deck.slides, start=1):
        title_shape = slide.shapes.title
        # a picture put into the title placeholder has no text frame
        titled = title_shape is not None and getattr(title_shape, "has_text_frame", False)
        heading = " ".join(title_shape.text_frame.text.split()) if titled else ""
        first_title = first_title or heading
        lines.append(f"# {heading or f'Slide {number}'}")
        for shape in slide.shapes:
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if getattr(shape, "has_text_frame", False) and shape.text_frame.text.strip():
                lines.append(shape.text_frame.text.strip())
            elif getattr(shape, "has_table", False):
                for row in shape.table.rows:
                    lines.append(" | ".join(c.text.strip() for c in row.cells if c.text.strip()))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            note = slide.notes_slide.notes_text_frame.text.strip()
            if note:
                lines.append(note)
    return _done(lines, deck.core_properties.title or first_title, {"slides": len(deck.slides)})


def read_odf(data: bytes, notes: list[str]) -> list[Document]:
    """OpenDocument text (.odt) and presentations (.odp)."""
    from odf import teletype
    from odf.dc import Title
    from odf.namespaces import DRAWNS, TEXTNS
    from odf.opendocument import load

    _zip_guard(data, "OpenDocument file")
    try:
        try:
            document = load(io.BytesIO(data))
        except Exception as first:
            if "ExternalReference" not in type(first).__name__:
                raise
            # Files of older office suites declare a DTD (<!DOCTYPE manifest:manifest PUBLIC
            # ... "Manifest.dtd">) that the safe XML parser refuses to fetch; without the
            # declaration the same XML reads (nothing in it refers to the DTD).
            document = load(io.BytesIO(_without_doctypes(data)))
    except Exception as exc:
        raise Skip(f"corrupt OpenDocument file ({type(exc).__name__})") from exc
    lines: list[str] = []
    slides = 0

    def walk(node) -> None:
        nonlocal slides
        for child in node.childNodes:
            qname = getattr(child, "qname", None)
            if qname == (DRAWNS, "page"):
                slides += 1
                name = _ODF_NAME.sub(lambda m: chr(int(m.group(1), 16)), child.getAttribute("name") or "")
                lines.append(f"# {name or f'Slide {slides}'}")
                walk(child)
            elif qname == (TEXTNS, "h"):
                level = int(child.getAttribute("outlinelevel") or 1)
                lines.append("#" * min(6, max(1, level)) + " " + " ".join(teletype.extractText(child).split()))
            elif qname == (TEXTNS, "p"):
                lines.append(teletype.extractText(child).strip())
            elif getattr(child, "childNodes", None):
                walk(child)

    walk(document.body)
    titles = [teletype.extractText(t) for t in document.meta.getElementsByType(Title)]
    return _done(lines, titles[0] if titles else None, {"slides": slides} if slides else {})


def _without_doctypes(data: bytes) -> bytes:
    """The zip with the external DOCTYPE declarations of its XML parts left out."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as given, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as made:
        for item in given.infolist():
            part = given.read(item.filename)
            if item.filename.endswith(".xml"):
                part = _DOCTYPE.sub(b"", part, count=1)
            made.writestr(item, part)
    return out.getvalue()


def read_rtf(data: bytes, notes: list[str]) -> list[Document]:
    from striprtf.striprtf import rtf_to_text

    raw = data.decode("cp1252", errors="replace")
    if not raw.lstrip().startswith("{\\rtf"):
        raise Skip("corrupt RTF (no {\\rtf header)")
    try:
        text = rtf_to_text(raw, errors="replace")
    except Exception as exc:
        raise Skip("corrupt RTF") from exc
    return _done([line.strip() for line in text.splitlines()], None)
