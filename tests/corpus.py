"""Test documents of every format searchctl reads, built here with each format's own
library (nothing is downloaded, nothing is shipped): Word, PowerPoint, OpenDocument text
and slides, EPUB, a notebook, reStructuredText, gettext, RTF, SVG, and PDFs with the
troubles real ones have (ligatures, words broken at line ends, a font without a Unicode
mapping, an empty-password encryption, a junk title)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

__all__ = ["FORMATS", "write_formats", "pdf_with_lines", "type3_garbage_pdf"]


def _font() -> str:
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


def pdf_with_lines(lines: list[str], *, title: str | None = None, password: str | None = None) -> bytes:
    """A text PDF (TrueType font with a Unicode mapping) of ``lines``, one per line."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.add_font("dejavu", fname=_font())
    pdf.set_font("dejavu", size=11)
    if title is not None:
        pdf.set_title(title)
    for line in lines:
        pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    if password is not None:
        pdf.set_encryption(owner_password="owner-secret", user_password=password)
    return bytes(pdf.output())


def type3_garbage_pdf(rows: int = 30, seed: int = 1) -> bytes:
    """A PDF whose text is drawn with a Type 3 font with made-up glyph names and no
    ToUnicode map: what an extractor gets is control characters or glyph codes."""
    rng = random.Random(seed)
    names = [f"g{i}" for i in range(1, 40)]
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
    ]
    procs = b" ".join(b"/%s %d 0 R" % (n.encode(), 6 + i) for i, n in enumerate(names))
    differences = b" ".join(b"/" + n.encode() for n in names)
    widths = b" ".join(b"500" for _ in names)
    objects.append(
        b"<< /Type /Font /Subtype /Type3 /FontBBox [0 0 500 600] /FontMatrix [0.001 0 0 0.001 0 0] "
        b"/CharProcs << " + procs + b" >> /Encoding << /Type /Encoding /Differences [1 " + differences + b"] >> "
        b"/FirstChar 1 /LastChar %d /Widths [%s] >>" % (len(names), widths)
    )
    shown = []
    for _ in range(rows):
        codes = bytes(rng.randint(1, len(names)) for _ in range(60))
        shown.append(b"(" + codes.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b") Tj T*")
    stream = b"BT /F1 12 Tf 14 TL 72 740 Td\n" + b"\n".join(shown) + b"\nET"
    objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    glyph = b"500 0 0 0 400 600 d1 0 0 400 600 re f"
    objects += [b"<< /Length %d >>\nstream\n" % len(glyph) + glyph + b"\nendstream" for _ in names]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _docx() -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = "Greenhouse handbook"
    document.core_properties.author = "Ada Gardener"
    document.add_heading("Watering tomatoes", level=1)
    document.add_paragraph("Water tomatoes deeply twice a week so the roots grow down.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Crop", "Litres"
    table.cell(1, 0).text, table.cell(1, 1).text = "Cucumber", "Four"
    document.add_heading("Ventilation", level=2)
    document.add_paragraph("Open the roof vents when the thermometer passes twenty-five degrees.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _pptx() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    deck.core_properties.title = "Presentation1"  # a junk title: the first slide's title wins
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly lighthouse maintenance"
    slide.placeholders[1].text = "Polish the Fresnel lens and replace the lamp bulbs."
    slide.notes_slide.notes_text_frame.text = "Mention the keeper's logbook."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Fog signals"
    box = second.shapes.add_textbox(Inches(1), Inches(2), Inches(6), Inches(1))
    box.text_frame.text = "Test the foghorn compressor every month."
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def _odf(slides: bool) -> bytes:
    from odf.dc import Title
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation, OpenDocumentText
    from odf.style import MasterPage, PageLayout
    from odf.text import H, P

    if not slides:
        document = OpenDocumentText()
        document.meta.addElement(Title(text="Beekeeping notes"))
        document.text.addElement(H(outlinelevel=1, text="Spring inspection"))
        document.text.addElement(P(text="Check the brood frames for the queen's eggs and signs of swarming."))
        out = io.BytesIO()
        document.write(out)
        return out.getvalue()
    document = OpenDocumentPresentation()
    layout = PageLayout(name="layout")
    document.automaticstyles.addElement(layout)
    master = MasterPage(name="master", pagelayoutname=layout)
    document.masterstyles.addElement(master)
    page = Page(name="Harbour tides", masterpagename=master)
    document.presentation.addElement(page)
    frame = Frame(width="20cm", height="5cm", x="1cm", y="1cm")
    page.addElement(frame)
    box = TextBox()
    frame.addElement(box)
    box.addElement(P(text="High tide floods the slipway twice a day; moor the dinghy above the line."))
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def _epub() -> bytes:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("test-book-1")
    book.set_title("The Clockmaker's Apprentice")
    book.set_language("en")
    book.add_author("Jane Escapement")
    chapters = []
    for number, (heading, body) in enumerate(
        [
            ("The workshop", "Gears and springs covered every bench of the clockmaker's workshop."),
            ("The pendulum", "A pendulum's period depends on its length, not on its weight."),
        ],
        start=1,
    ):
        chapter = epub.EpubHtml(title=heading, file_name=f"chap{number}.xhtml", lang="en")
        chapter.content = f"<html><body><h1>{heading}</h1><p>{body}</p></body></html>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.spine = ["nav", *chapters]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    out = io.BytesIO()
    epub.write_epub(out, book)
    return out.getvalue()


def _notebook() -> bytes:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    notebook = new_notebook(metadata={"language_info": {"name": "python"}})
    notebook.cells = [
        new_markdown_cell("# Fitting a regression\n\nWe fit a least-squares line to the rainfall data."),
        new_code_cell(
            "import numpy as np\nslope, intercept = np.polyfit(rainfall, yield_, 1)",
            outputs=[new_output("stream", name="stdout", text="OUTPUT-THAT-MUST-NOT-BE-INDEXED\n" * 50)],
        ),
    ]
    return nbformat.writes(notebook).encode()


RST = """\
=====================
 Sailing for starters
=====================

:Author: Grace Mariner
:Date: 2024-05-01

Reefing the **mainsail** early is the `first rule <https://example.org/rules>`_ of
heavy weather.

Knots
=====

The *bowline* makes a fixed loop at the end of a line.

.. include:: /etc/passwd

.. note:: Practise the knot with your eyes closed.

.. toctree::

   unknown-sphinx-directive
"""

PO = """\
msgid ""
msgstr ""
"Project-Id-Version: Weather app 2.1\\n"
"Language: de\\n"
"Content-Type: text/plain; charset=UTF-8\\n"

msgid "Thunderstorm warning"
msgstr "Gewitterwarnung"

msgid "Light drizzle"
msgstr "Leichter Nieselregen"
"""

RTF = r"""{\rtf1\ansi\deff0 {\fonttbl {\f0 Times New Roman;}}
{\pard\b Sourdough starter\b0\par}
{\pard Feed the starter with equal weights of flour and water every \i twelve\i0  hours.\par}
}"""

SVG = """<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100">
  <title>Volcano cross-section</title>
  <desc>Diagram of a stratovolcano showing the magma chamber</desc>
  <path d="M 10 90 L 100 10 L 190 90 Z M0123456789 pathdata pathdata"/>
  <text x="20" y="80">magma chamber</text>
</svg>
"""

# name -> (bytes maker, a phrase the text must hold, the kind, the title)
FORMATS = {
    "handbook.docx": (_docx, "Water tomatoes deeply twice a week", "docx", "Greenhouse handbook"),
    "lighthouse.pptx": (_pptx, "Polish the Fresnel lens", "pptx", "Quarterly lighthouse maintenance"),
    "bees.odt": (lambda: _odf(False), "Check the brood frames", "odt", "Beekeeping notes"),
    "harbour.odp": (lambda: _odf(True), "High tide floods the slipway", "odp", "Harbour tides"),
    "clocks.epub": (_epub, "A pendulum's period depends on its length", "epub", "The Clockmaker's Apprentice"),
    "rainfall.ipynb": (_notebook, "np.polyfit(rainfall, yield_, 1)", "notebook", "Fitting a regression"),
    "sailing.rst": (lambda: RST.encode(), "Reefing the mainsail early", "rst", "Sailing for starters"),
    "weather.po": (lambda: PO.encode(), "Thunderstorm warning = Gewitterwarnung", "po", "Weather app 2.1"),
    "starter.rtf": (lambda: RTF.encode(), "Feed the starter with equal weights", "rtf", "Sourdough starter"),
    "volcano.svg": (lambda: SVG.encode(), "magma chamber", "svg", "Volcano cross-section"),
    "ligatures.pdf": (
        lambda: pdf_with_lines(
            ["The e\ufb03cient \ufb02ow was signi\ufb01cantly faster in the", "second experi-", "ment than before."],
            title="paper.dvi",
        ),
        "efficient flow was significantly faster",
        "pdf",
        "The efficient flow was significantly faster in the",
    ),
    "protected.pdf": (
        lambda: pdf_with_lines(["Harvest the lavender before the flowers fully open."], password=""),
        "Harvest the lavender",
        "pdf",
        "Harvest the lavender before the flowers fully open.",  # no title: the first line
    ),
}


def write_formats(folder: Path) -> dict[str, Path]:
    """Every file of ``FORMATS`` in ``folder``; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (make, *_rest) in FORMATS.items():
        path = folder / name
        path.write_bytes(make())
        out[name] = path
    return out


def jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()
