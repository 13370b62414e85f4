"""PDF: the text layer of every page, by PDFium (pypdfium2).

PDFium over pypdf, measured by ``bench/readers.py`` (100 pages of prose with ligatures
and words hyphenated at line ends): 4.1x faster (0.079 s against 0.324 s), no ligature
characters left (pypdf: 32,192), 8 words left broken at a line end against 372 (the
normalisation joins what is left), no word of the source missing (pypdf: 17). An encrypted PDF is
opened with the empty password (what most "protected" PDFs use to forbid printing, not
reading); one that needs a real password is skipped. Each page passes the quality gate
on its own: a page whose text layer is glyph codes or control characters (a font with no
Unicode mapping) is a page to read by OCR, as a scan is (its text layer says nothing,
but it renders as clean type); only a page OCR cannot read either is left out, counted
in a note by its number; a PDF with no readable page is skipped as "unreadable text".
The title is the metadata title unless it names a tool or
a file ("paper.dvi", "Microsoft Word - x.doc"), else the first line that reads as one.

A scanned page (a text layer of fewer than ``SCANNED_LETTERS`` letters), or a garbled one,
is rendered at
``OCR_DPI`` (fewer dots for a huge page: at most ``MAX_RENDER_PIXELS``) and read by OCR
when the run has an OCR engine; pages with a text layer are kept as they are.
"""

from __future__ import annotations

from collections.abc import Iterator

from searchcore.ocr_pool import POOL_PAGES, BrokenProcessPool

from .errors import Document, Skip
from .text import first_line_title, good_title, tidy, unreadable

__all__ = ["read_pdf", "pdf_pages", "render_pages", "SCANNED_LETTERS"]

SCANNED_LETTERS = 20
OCR_DPI = 200
MAX_RENDER_PIXELS = 16_000_000


def _open(data: bytes):
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data, password="")
    except pdfium.PdfiumError as exc:
        message = str(exc).lower()
        if "password" in message:
            raise Skip("encrypted PDF (needs a password)") from exc
        raise Skip("corrupt PDF") from exc


def pdf_pages(data: bytes, damaged: list[int] | None = None) -> tuple[list[str], dict]:
    """The raw text of each page and the document's metadata; a page PDFium cannot load
    (a damaged file) is empty, its number added to ``damaged``."""
    import pypdfium2 as pdfium

    document = _open(data)
    try:
        pages = []
        for index in range(len(document)):
            try:
                page = document[index]
            except pdfium.PdfiumError:
                pages.append("")
                if damaged is not None:
                    damaged.append(index + 1)
                continue
            try:
                textpage = page.get_textpage()
                try:
                    pages.append(textpage.get_text_range())
                finally:
                    textpage.close()
            finally:
                page.close()
        try:
            metadata = document.get_metadata_dict(skip_empty=True)
        except Exception:  # a damaged Info dictionary does not cost the text
            metadata = {}
        return pages, metadata
    finally:
        document.close()


def render_pages(data: bytes, indexes: list[int]):
    """(index, PIL image) of each page in ``indexes`` (0-based) at OCR_DPI, or fewer dots
    for a huge page; the document is opened once, each image made only when asked for."""
    import pypdfium2 as pdfium

    document = _open(data)
    try:
        for index in indexes:
            try:
                page = document[index]
            except pdfium.PdfiumError:
                continue  # a damaged page: pdf_pages named it
            try:
                width, height = page.get_size()  # in points
                scale = OCR_DPI / 72
                if width * height * scale * scale > MAX_RENDER_PIXELS:
                    scale = (MAX_RENDER_PIXELS / max(width * height, 1.0)) ** 0.5
                yield index, page.render(scale=scale).to_pil()
            finally:
                page.close()
    finally:
        document.close()


def _scanned(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) < SCANNED_LETTERS


def _read_pages(data: bytes, looked: list[int], vision) -> Iterator[tuple[int, str]]:
    """(page index, text OCR read) for each page of ``looked`` PDFium can load, in order:
    through the run's OCR pool when there are pages enough to share, else here; a pool
    that breaks leaves the rest of the pages to be read here."""
    pool = vision.pool if len(looked) >= POOL_PAGES else None
    done: set[int] = set()
    if pool is not None:
        try:
            for index, text in pool.read_all(render_pages(data, looked)):
                done.add(index)
                yield index, text
            return
        except BrokenProcessPool:
            pass
    for index, image in render_pages(data, [i for i in looked if i not in done]):
        yield index, vision.ocr.read(image)


def read_pdf(data: bytes, notes: list[str], vision=None) -> list[Document]:
    damaged: list[int] = []
    raw_pages, metadata = pdf_pages(data, damaged)
    # PDFium joins a word hyphenated at a line end and marks the hyphen with U+FFFE.
    pages = [tidy(raw.replace("\ufffe", "").replace("\r\n", "\n").replace("\r", "\n")) for raw in raw_pages]
    # No text layer, or one of glyph codes and control characters: what the page shows is
    # read by OCR, exactly as a scan is, when the run has an OCR engine.
    looked = [i for i, text in enumerate(pages) if _scanned(text) or unreadable(text)]
    ocr = bool(vision is not None and looked and vision.make_ocr is not None)  # engines are made when needed
    read_by_ocr = 0
    if ocr:
        for done, (index, found) in enumerate(_read_pages(data, looked, vision), start=1):
            found = tidy(found)
            if found and not unreadable(found):
                pages[index] = found
                read_by_ocr += 1
            if vision.on_page is not None:
                vision.on_page(done, len(looked))
        vision.counts["pages_ocr"] += len(looked)
    kept, bad = [], []
    for number, text in enumerate(pages, start=1):
        if not text:
            continue
        if unreadable(text):
            bad.append(number)
        else:
            kept.append(text)
    if damaged:
        shown = ", ".join(str(n) for n in damaged[:5]) + (", ..." if len(damaged) > 5 else "")
        notes.append(f"{len(damaged)} of {len(pages)} pages left out: damaged, PDFium cannot load them (page {shown})")
    if not kept:
        if damaged and not bad:
            raise Skip("corrupt PDF (no page can be loaded)")
        if bad:
            raise Skip("unreadable text" + (" (and OCR read no page)" if ocr else " (no OCR engine)"))
        raise Skip("PDF without extractable text")
    if read_by_ocr:
        notes.append(f"{read_by_ocr} of {len(pages)} pages read by OCR (no text layer, or an unreadable one)")
    if bad:
        shown = ", ".join(str(n) for n in bad[:5]) + (", ..." if len(bad) > 5 else "")
        why = "OCR read nothing" if ocr else "no OCR engine"
        notes.append(f"{len(bad)} of {len(pages)} pages left out: unreadable text, {why} (page {shown})")
    text = "\n\n".join(kept)
    title = good_title(metadata.get("Title")) or first_line_title(text)
    meta: dict = {"pages": len(pages)}
    if author := good_title(metadata.get("Author")):
        meta["author"] = author
    return [Document("", text, title=title, metadata=meta)]
