"""Real folders: one bad file never stops a run (nor `watch`), nothing is indexed empty in
silence, and what real files hold is read (nested Word tables, a picture as a slide's title)."""

from __future__ import annotations

import io
import os
import time

import pytest
from test_watch import Watcher

from conftest import write
from indexer.build import build_index
from searchcore.config import Config
from searchcore.options import Filters
from searchcore.search import Searcher


def picture_titled_deck() -> bytes:
    """A real python-pptx deck whose title placeholder holds a picture (what some decks
    saved by PowerPoint do): python-pptx gives that shape as the slide's title, without a
    text frame."""
    from PIL import Image
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[8])  # picture with caption
    image = io.BytesIO()
    Image.new("RGB", (20, 20), "red").save(image, "PNG")
    image.seek(0)
    picture = slide.placeholders[1].insert_picture(image)
    title = slide.placeholders[0]
    title._element.getparent().remove(title._element)
    placeholder = picture._element.xpath(".//p:nvPr/p:ph")[0]
    placeholder.set("type", "title")
    placeholder.set("idx", "0")
    slide.placeholders[2].text = "The ferry timetable for the winter harbour crossing."
    assert type(slide.shapes.title).__name__ == "PlaceholderPicture"
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def table_crashing_docx() -> bytes:
    """A Word file python-docx opens but cannot walk: a table whose first row continues a
    vertical merge from a row that does not exist (ValueError inside python-docx)."""
    import docx
    from docx.oxml import OxmlElement

    document = docx.Document()
    document.add_paragraph("Minutes of the lighthouse committee.")
    table = document.add_table(rows=2, cols=2)
    table.cell(1, 1).text = "Paint the lantern room."
    cell = table.rows[0]._tr.tc_lst[0]
    cell.get_or_add_tcPr().append(OxmlElement("w:vMerge"))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def nested_tables_docx() -> bytes:
    import docx

    document = docx.Document()
    outer = document.add_table(rows=1, cols=2)
    outer.cell(0, 0).text = "Schedule"
    inner = outer.cell(0, 1).add_table(rows=2, cols=2)
    inner.cell(0, 0).text = "Monday"
    inner.cell(0, 1).text = "The keeper polishes the great brass lens before sunset."
    inner.cell(1, 0).text = "Tuesday"
    inner.cell(1, 1).text = "Fog drill with the foghorn at noon."
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _reasons(summary) -> dict[str, str]:
    return {path.rsplit("/", 1)[-1]: why for path, why in summary.skipped_files}


def test_a_reader_that_fails_on_one_file_skips_that_file_and_the_run_commits(tmp_path, hashing):
    root = tmp_path / "docs"
    write(root, "good.md", "# Tides\n\nHigh water comes twice a day in the harbour.")
    write(root, "deck.pptx", picture_titled_deck())
    write(root, "minutes.docx", table_crashing_docx())
    write(root, "schedule.docx", nested_tables_docx())
    write(root, "empty.txt", b"")
    write(root, "settings.json", '{"theme": "dark", "fontSize": 12}')
    write(root, "blank.md", "   \n\n  \n")
    config = Config(index_dir=tmp_path / "idx")
    summary = build_index(config, root, embedder=hashing)
    reasons = _reasons(summary)
    assert reasons["minutes.docx"].startswith("reader failed: ValueError in the docx reader")
    assert "no tr above topmost tr" in reasons["minutes.docx"]
    assert reasons["empty.txt"] == "empty file"
    assert reasons["settings.json"].startswith('no text: no record has a "text" or "title" field')
    assert reasons["blank.md"].startswith("no text")
    assert summary.added == 3  # good.md, the deck (its picture title passed over), the nested tables
    with Searcher(config, embedder=hashing) as searcher:
        assert searcher.search("ferry timetable winter crossing", k=1, mode="bm25")[0].path.endswith("deck.pptx")
        found = searcher.search("keeper polishes the great brass lens", k=1, mode="bm25")[0]
        assert found.path.endswith("schedule.docx") and "brass lens" in found.text
    # the next run remembers the skips and still commits what changed
    write(root, "more.md", "# Fog\n\nThe foghorn sounds every thirty seconds.")
    again = build_index(config, root, embedder=hashing)
    assert again.added == 1 and _reasons(again)["minutes.docx"] == reasons["minutes.docx"]


@pytest.mark.timeout(120)
def test_watch_goes_on_past_a_file_its_reader_cannot_walk(tmp_path, hashing):
    root = tmp_path / "docs"
    write(root, "good.md", "# Tides\n\nHigh water comes twice a day.")
    config = Config(index_dir=tmp_path / "idx")
    with Watcher(config, root, hashing) as watcher:
        write(root, "minutes.docx", table_crashing_docx())
        write(root, "later.md", "# Gulls\n\nGulls nest on the cliff above the lighthouse.")
        deadline = time.time() + 30
        while not any("minutes.docx" in p for run in watcher.runs for p, _ in run.summary.skipped_files):
            assert time.time() < deadline, "watch never named the bad file"
            time.sleep(0.05)
        watcher.settle(quiet=1.0)
        assert watcher.thread.is_alive()
    with Searcher(config, embedder=hashing) as searcher:
        assert searcher.search("gulls nest cliff", k=1, mode="bm25")[0].path.endswith("later.md")


def _retyped(data: bytes, old: bytes, new: bytes) -> bytes:
    """``data`` (an Office zip) with its main part's content type changed, as Word saves a
    template and PowerPoint a slide show."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            part = source.read(item)
            target.writestr(item, part.replace(old, new) if item.filename == "[Content_Types].xml" else part)
    return out.getvalue()


def _with_manifest_dtd(data: bytes) -> bytes:
    """An .odt as older office suites write it: its manifest declares an external DTD."""
    import zipfile

    doctype = b'<!DOCTYPE manifest:manifest PUBLIC "-//OpenOffice.org//DTD Manifest 1.0//EN" "Manifest.dtd">\n'
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            part = source.read(item)
            if item.filename == "META-INF/manifest.xml":
                part = part.replace(b"<manifest:manifest", doctype + b"<manifest:manifest", 1)
            target.writestr(item, part)
    return out.getvalue()


def test_templates_slide_shows_and_pep_headers_are_read_as_what_they_are(tmp_path, hashing):
    import docx
    from odf.opendocument import OpenDocumentText
    from odf.text import P
    from pptx import Presentation

    root = tmp_path / "docs"
    document = docx.Document()
    document.add_paragraph("The quarterly report template about harbour dues.")
    saved = io.BytesIO()
    document.save(saved)
    template = b"wordprocessingml.template.main+xml"
    write(root, "report.docx", _retyped(saved.getvalue(), b"wordprocessingml.document.main+xml", template))
    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Ferry routes"
    slide.placeholders[1].text = "Boats leave the quay every hour in summer."
    saved = io.BytesIO()
    deck.save(saved)
    show = b"presentationml.slideshow.main+xml"
    write(root, "routes.pptx", _retyped(saved.getvalue(), b"presentationml.presentation.main+xml", show))
    write(
        root,
        "pep-0238.rst",
        "PEP: 238\nTitle: Changing the Division Operator\nAuthor: Moshe Zadka <moshez@example.org>,\n"
        "        Guido van Rossum <guido@example.org>\nStatus: Final\n\n\nAbstract\n========\n\n"
        "The current division operator has an ambiguous meaning for numerical arguments.\n",
    )
    minutes = OpenDocumentText()
    minutes.text.addElement(P(text="Minutes of the lock keepers' meeting about the canal tolls."))
    saved = io.BytesIO()
    minutes.save(saved)
    write(root, "minutes.odt", _with_manifest_dtd(saved.getvalue()))
    config = Config(index_dir=tmp_path / "idx")
    summary = build_index(config, root, embedder=hashing)
    assert summary.skipped_files == [] and summary.added == 4
    with Searcher(config, embedder=hashing) as searcher:
        query = "harbour dues quay ambiguous canal tolls"
        hits = {h.path.rsplit("/", 1)[-1]: h for h in searcher.search(query, k=10, mode="bm25")}
        assert {"report.docx", "routes.pptx", "pep-0238.rst", "minutes.odt"} <= set(hits)
        pep = hits["pep-0238.rst"]
        assert pep.title == "Changing the Division Operator"
        assert pep.metadata["pep"] == "238" and pep.metadata["status"] == "Final"
        assert "PEP: 238" not in pep.text and "Title:" not in pep.text
        assert hits["routes.pptx"].text.count("Ferry routes") == 1


def test_a_filter_on_a_field_no_document_has_says_so(tmp_path):
    import httpx
    from click.testing import CliRunner

    from conftest import LiveServer
    from searchctl.cli import cli
    from searchd import create_app

    root = tmp_path / "docs"
    write(root, "faq.jsonl", '{"id": "a", "text": "Returns within thirty days.", "lang": "en"}\n')
    config = Config(index_dir=tmp_path / "idx")
    runner = CliRunner()
    assert (
        runner.invoke(cli, ["index", str(root), "--index", str(config.index_dir), "--model", "hash:64"]).exit_code == 0
    )
    with Searcher(config) as searcher:
        german = Filters(where=(("lang", "de"),))
        assert searcher.search("returns", k=1, filters=german) == []  # a field some document has
    args = ["query", "returns", "--index", str(config.index_dir)]
    missing = runner.invoke(cli, [*args, "--where", "language=de"])
    assert missing.exit_code == 2 and missing.output.count("\n") == 1
    assert (
        "no document has a field 'language' to filter on" in missing.output and "the fields are: lang" in missing.output
    )
    assert runner.invoke(cli, [*args, "--where", "lang=de"]).output.strip() == "no hits"
    with LiveServer(create_app(config)) as live:
        answer = httpx.get(live.url + "/search", params={"q": "returns", "where": "language=de"})
        assert answer.status_code == 404 and "no document has a field 'language'" in answer.json()["detail"]


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path, hashing):
    import socket
    import subprocess
    import sys

    root = tmp_path / "docs"
    write(root, "a.md", "Harbour notes.")
    build_index(Config(index_dir=tmp_path / "idx"), root, embedder=hashing)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "searchctl", "serve", "--index", str(tmp_path / "idx"), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1 and done.stdout == ""
    assert (
        done.stderr == f"error: port {port} on 127.0.0.1 is in use; stop what holds it, or choose another with --port\n"
    )


def _workbook_with_a_cached_formula() -> bytes:
    """An .xlsx made by openpyxl, with the value Excel would have cached for its formula
    (openpyxl writes none; the reader shows what Excel computed, never the formula)."""
    import zipfile

    import openpyxl

    book = openpyxl.Workbook()
    sales = book.active
    sales.title = "Sales"
    sales.append(["Region", "Product", "Units", "Total"])
    sales.append(["North", "Kayak paddles", 12, "=C2*10"])
    sales.append(["South", "Life jackets", 30, 300])
    staff = book.create_sheet("Staff")
    staff.append(["Name", "Role"])
    staff.append(["Ada Lovelace", "Harbour master"])
    saved = io.BytesIO()
    book.save(saved)
    out = io.BytesIO()
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            part = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert b"<f>C2*10</f><v></v>" in part
                part = part.replace(b"<f>C2*10</f><v></v>", b"<f>C2*10</f><v>120</v>")
            target.writestr(item, part)
    return out.getvalue()


def _ods() -> bytes:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    table = Table(name="Moorings")
    for values in (["Berth", "Boat"], ["B7", "The Grey Heron"], ["B8", "Saltwind"]):
        row = TableRow()
        for value in values:
            cell = TableCell()
            cell.addElement(P(text=value))
            row.addElement(cell)
        table.addElement(row)
    empty = TableRow(numberrowsrepeated=1_000_000)  # what spreadsheets write below the data
    empty.addElement(TableCell(numbercolumnsrepeated=1024))
    table.addElement(empty)
    document.spreadsheet.addElement(table)
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def test_spreadsheets_and_tables_are_read_row_by_row_with_their_headers(tmp_path, hashing):
    root = tmp_path / "docs"
    write(root, "book.xlsx", _workbook_with_a_cached_formula())
    write(root, "harbour.ods", _ods())
    write(root, "tides.csv", "port;high water;low water\nOslo;06:12;12:30\nBergen;07:45;13:58\n")
    write(root, "fees.tsv", "service\tfee\nCrane lift\t80\nWinter storage\t450\n")
    write(root, "broken.xlsx", _workbook_with_a_cached_formula()[:300])
    config = Config(index_dir=tmp_path / "idx")
    summary = build_index(config, root, embedder=hashing)
    assert _reasons(summary) == {"broken.xlsx": "corrupt Excel workbook (not a zip container)"}
    with Searcher(config, embedder=hashing) as searcher:
        role = searcher.search("Role Harbour master", k=1, mode="bm25")[0]
        assert role.path.endswith("book.xlsx") and "Role: Harbour master" in role.text
        assert role.metadata == {"sheets": 2}
        total = searcher.search("Kayak paddles Total", k=1, mode="bm25")[0]
        assert "Total: 120" in total.text and "C2*10" not in total.text
        boat = searcher.search("Boat Saltwind", k=1, mode="bm25")[0]
        assert boat.path.endswith("harbour.ods") and "Berth: B8 | Boat: Saltwind" in boat.text
        tide = searcher.search("Bergen low water", k=1, mode="bm25")[0]
        assert tide.path.endswith("tides.csv") and "port: Bergen | high water: 07:45 | low water: 13:58" in tide.text
        fee = searcher.search("Winter storage fee", k=1, mode="bm25")[0]
        assert fee.path.endswith("fees.tsv") and "service: Winter storage | fee: 450" in fee.text
        assert {h.kind for h in searcher.search("fee", k=5, filters=Filters(kinds=("csv",)))} == {"csv"}


def test_a_huge_sheet_is_bounded_and_says_so():
    from indexer.readers.sheets import MAX_ROWS, read_csv

    notes: list[str] = []
    rows = "".join(f"{n},value {n}\n" for n in range(MAX_ROWS + 500))
    document = read_csv(("number,value\n" + rows).encode(), notes)[0]
    assert document.text.count("\n") == MAX_ROWS - 1  # the header row and MAX_ROWS - 1 rows
    assert notes == [f"the table: 501 rows left out past {MAX_ROWS:,} (a sheet is read up to {MAX_ROWS:,} rows)"]


def _message(subject: str, sender: str, body: str, attachment: tuple[str, bytes] | None = None, charset=None):
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = sender
    message["To"] = "harbour-office@example.org"
    message["Subject"] = subject
    message["Date"] = "Tue, 03 Dec 2024 09:30:00 +0100"
    message["Message-ID"] = f"<{subject.split()[0].lower()}@example.org>"
    message.set_content(body)
    if attachment is not None:
        name, data = attachment
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    if charset is not None:  # a charset no codec knows: the message cannot be decoded
        message.replace_header("Content-Type", f'text/plain; charset="{charset}"')
    return message


def test_mail_messages_and_their_attachments_are_found_and_filtered(tmp_path, hashing):
    import mailbox

    root = tmp_path / "docs"
    minutes = b"item;owner\nRepaint the breakwater light;Ada\n"
    eml = _message("Winter moorings", "Ada <ada@example.org>", "The pontoons come out on the first of November.")
    eml.add_attachment(minutes, maintype="text", subtype="csv", filename="actions.csv")
    write(root, "moorings.eml", eml.as_bytes())
    box = mailbox.mbox(str(tmp_path / "box.mbox"))
    box.add(_message("Dredging schedule", "Bo <bo@example.org>", "The dredger works the channel in March."))
    box.add(_message("Broken", "Cy <cy@example.org>", "Unreadable", charset="x-no-such-charset"))
    box.add(_message("Crane hire", "Ada <ada@example.org>", "The crane is booked for the ninth of April."))
    box.close()
    write(root, "box.mbox", (tmp_path / "box.mbox").read_bytes())
    config = Config(index_dir=tmp_path / "idx")
    summary = build_index(config, root, embedder=hashing)
    assert summary.skipped_files == [] and summary.added == 4  # 1 message + its attachment, 2 of 3 messages
    notes = {path.rsplit("/", 1)[-1]: note for path, note in summary.notes}
    assert notes["box.mbox"].startswith("1 message left out, unreadable: 2 (LookupError")
    with Searcher(config, embedder=hashing) as searcher:
        found = searcher.search("Winter moorings", k=1, mode="bm25")[0]
        assert found.path.endswith("moorings.eml") and found.title == "Winter moorings" and found.key == ""
        assert found.metadata["from"] == "ada@example.org" and found.metadata["from_name"] == "Ada"
        assert found.metadata["to"] == ["harbour-office@example.org"]
        assert found.metadata["date"] == "2024-12-03T09:30:00+01:00"
        attachment = searcher.search("Repaint the breakwater light", k=1, mode="bm25")[0]
        assert attachment.key == "#actions.csv" and attachment.title == "actions.csv"
        assert attachment.metadata["attachment"] == "actions.csv" and "owner: Ada" in attachment.text
        ada = Filters(where=(("from", "ada@example.org"),))
        hits = searcher.search("harbour office", k=10, mode="bm25", filters=ada)
        assert {h.title for h in hits} >= {"Winter moorings", "Crane hire"} and "Dredging schedule" not in {
            h.title for h in hits
        }
        crane = searcher.search("crane booked April", k=1, mode="bm25")[0]
        assert crane.path.endswith("box.mbox") and crane.key == "crane@example.org"
        from searchcore.reading import read_file

        read = read_file(searcher.records, searcher.places, "moorings.eml##actions.csv")
        assert "item: Repaint the breakwater light | owner: Ada" in read["text"]
        message = read_file(searcher.records, searcher.places, "moorings.eml")["text"]
        assert message.startswith("From: Ada <ada@example.org>\nTo: harbour-office@example.org\nDate: 2024-12-03")


def test_editing_one_sentence_re_embeds_its_chunk_not_the_document(tmp_path, hashing):
    import json as jsonlib

    from click.testing import CliRunner

    from searchctl.cli import cli

    root = tmp_path / "docs"
    sentences = [f"Entry {n}: the keeper logged wind force {n % 9} and a swell from the west." for n in range(400)]
    path = write(root, "log.md", "# Logbook\n\n" + "\n\n".join(sentences) + "\n")
    config = Config(index_dir=tmp_path / "idx")
    first = build_index(config, root, embedder=hashing)
    assert first.chunks_embedded >= 100  # a long document: many chunks
    with Searcher(config, embedder=hashing) as searcher:
        before = {h.text: h.chunk_id for h in searcher.search("keeper wind swell", k=1000, mode="bm25")}
    sentences[200] = "Entry 200: a seal slept on the slipway all afternoon."
    path.write_text("# Logbook\n\n" + "\n\n".join(sentences) + "\n")
    second = build_index(config, root, embedder=hashing)
    assert second.updated == 1 and second.chunks_embedded <= 3, second.line()
    assert second.chunks_kept == second.chunks - second.chunks_embedded
    assert f"({second.chunks_kept} unchanged kept)" in second.line()
    with Searcher(config, embedder=hashing) as searcher:  # what was kept is what a fresh build holds
        assert searcher.search("seal slept on the slipway", k=1, mode="bm25")[0].text.count("seal slept") == 1
        fresh = Config(index_dir=tmp_path / "fresh")
        build_index(fresh, root, embedder=hashing)
        with Searcher(fresh, embedder=hashing) as rebuilt:
            ours = [(h.text, round(h.score, 5)) for h in searcher.search("wind force 3 west", k=20, mode="dense")]
            theirs = [(h.text, round(h.score, 5)) for h in rebuilt.search("wind force 3 west", k=20, mode="dense")]
            assert ours == theirs
    assert len(before) > 50
    # the command line says it too
    sentences[10] = "Entry 10: fog all day."
    path.write_text("# Logbook\n\n" + "\n\n".join(sentences) + "\n")
    out = CliRunner().invoke(cli, ["index", str(root), "--index", str(tmp_path / "cli"), "--model", "hash:64"])
    assert out.exit_code == 0
    sentences[11] = "Entry 11: fog again."
    path.write_text("# Logbook\n\n" + "\n\n".join(sentences) + "\n")
    again = CliRunner().invoke(cli, ["index", str(root), "--index", str(tmp_path / "cli"), "--json"])
    figures = jsonlib.loads(again.stdout)
    assert figures["chunks_embedded"] <= 3 and figures["chunks_kept"] > 10


def garbled_pdf(lines: list[str]) -> bytes:
    """A page that shows ``lines`` as clean type (an image of them) over a text layer of
    glyph codes (``/g12/g7...``), as papers set with fonts that have no Unicode map do."""
    from fpdf import FPDF
    from fpdf.enums import TextMode
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.new("RGB", (1700, 100 + 100 * len(lines)), "white")
    face = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    font = ImageFont.truetype(face, 48) if os.path.exists(face) else ImageFont.load_default(48)
    for i, line in enumerate(lines):
        ImageDraw.Draw(picture).text((20, 30 + 100 * i), line, fill="black", font=font)
    image = io.BytesIO()
    picture.save(image, "PNG")
    image.seek(0)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(image, x=10, y=20, w=190)
    pdf.set_font("helvetica", size=10)
    pdf.text_mode = TextMode.INVISIBLE
    for row in range(10):
        pdf.text(10, 30 + row * 5, "".join(f"/g{(row * 7 + i) % 90 + 3}" for i in range(25)))
    return bytes(pdf.output())


def test_a_pdf_whose_text_layer_is_glyph_codes_is_read_by_ocr(tmp_path, hashing):
    from pypdf import PdfReader, PdfWriter

    root = tmp_path / "papers"
    write(
        root, "accident.pdf", garbled_pdf(["The night ferry leaves the harbour at dawn.", "Board at the north quay."])
    )
    writer = PdfWriter()  # a paper whose second page alone has a garbled layer
    for data in (
        _plain_pdf("Tidal streams run strongest at half tide."),
        garbled_pdf(["Moorings are inspected in May."]),
    ):
        writer.append(PdfReader(io.BytesIO(data)))
    mixed = io.BytesIO()
    writer.write(mixed)
    write(root, "mixed.pdf", mixed.getvalue())
    config = Config(index_dir=tmp_path / "idx")
    summary = build_index(config, root, embedder=hashing)
    assert summary.skipped_files == [] and summary.added == 2 and summary.pages_ocr == 2
    notes = {path.rsplit("/", 1)[-1]: note for path, note in summary.notes}
    assert notes["mixed.pdf"] == "1 of 2 pages read by OCR (no text layer, or an unreadable one)"
    with Searcher(config, embedder=hashing) as searcher:
        ferry = searcher.search("night ferry leaves the harbour at dawn", k=1, mode="bm25")[0]
        assert ferry.path.endswith("accident.pdf") and "/g" not in ferry.text
        assert searcher.search("moorings inspected in May", k=1, mode="bm25")[0].path.endswith("mixed.pdf")


def _plain_pdf(line: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(0, 10, line)
    return bytes(pdf.output())


def _scanned_pdf(pages: int) -> bytes:
    """A PDF whose pages are pictures only (no text layer at all): "Scanned page N: ..."."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw, ImageFont

    face = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    font = ImageFont.truetype(face, 40) if os.path.exists(face) else ImageFont.load_default(40)
    pdf = FPDF()
    for n in range(pages):
        page = Image.new("RGB", (1200, 300), "white")
        ImageDraw.Draw(page).text((30, 120), f"Scanned page {n + 1}: the tide table", fill="black", font=font)
        image = io.BytesIO()
        page.save(image, "PNG")
        image.seek(0)
        pdf.add_page()
        pdf.image(image, x=10, y=20, w=190)
    return bytes(pdf.output())


def test_progress_moves_inside_a_long_scanned_pdf(tmp_path, hashing, monkeypatch):
    from indexer.progress import Progress

    monkeypatch.setenv("SEARCHCTL_OCR_WORKERS", "2")  # the pages go through the pool, on any machine
    root = tmp_path / "scans"
    write(root, "tides.pdf", _scanned_pdf(5))
    log = io.StringIO()
    progress = Progress("lines", 0, every_seconds=0, quiet_seconds=0, stream=log)
    summary = build_index(Config(index_dir=tmp_path / "idx"), root, embedder=hashing, progress=progress)
    assert summary.pages_ocr == 5 and summary.added == 1
    pages = [line for line in log.getvalue().splitlines() if "reading tides.pdf" in line]
    assert [line.split("OCR page ")[1].split(",")[0] for line in pages] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    assert pages[0].startswith("progress: 0/1 files; reading tides.pdf: OCR page 1/5, ")
    with Searcher(Config(index_dir=tmp_path / "idx"), embedder=hashing) as searcher:
        text = " ".join(h.text for h in searcher.search("scanned page tide table", k=20, mode="bm25", per_doc=False))
        assert all(f"Scanned page {n}" in text for n in range(1, 6))


def test_a_bad_ocr_workers_setting_is_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from searchctl.cli import cli

    root = tmp_path / "docs"
    write(root, "note.md", "# Tides\n\nHigh water comes twice a day.")
    monkeypatch.setenv("SEARCHCTL_OCR_WORKERS", "two")
    result = CliRunner().invoke(cli, ["index", str(root), "--index", str(tmp_path / "idx"), "--model", "hash:32"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip() == "error: SEARCHCTL_OCR_WORKERS takes a number of processes (0: no pool), not 'two'"


def test_the_ocr_pool_reads_as_the_run_does_and_a_broken_pool_leaves_the_rest_to_the_run():
    import signal

    from indexer.readers import Vision
    from indexer.readers.pdf import read_pdf
    from searchcore.ocr import make_ocr
    from searchcore.ocr_pool import OcrPool

    data = _scanned_pdf(6)
    alone = Vision(make_ocr=lambda: make_ocr("rapidocr"))
    [expected] = read_pdf(data, [], alone)
    assert all(f"Scanned page {n}: the tide table" in expected.text for n in range(1, 7))
    pooled = Vision(make_ocr=lambda: make_ocr("rapidocr"), make_pool=lambda: OcrPool("rapidocr", 2))
    try:
        [doc] = read_pdf(data, [], pooled)
        assert doc.text == expected.text and pooled.counts["pages_ocr"] == 6

        def kill_the_workers(done: int, total: int) -> None:
            if done == 1:  # a worker killed from outside (out of memory, a signal) mid-file
                for process in list(pooled._pool._executor._processes.values()):  # type: ignore[union-attr]
                    os.kill(process.pid, signal.SIGKILL)

        pooled.on_page = kill_the_workers
        notes: list[str] = []
        [again] = read_pdf(data, notes, pooled)
        assert again.text == expected.text  # the pages the pool lost were read here
        assert pooled.pool is None  # and this run asks the broken pool for nothing more
    finally:
        pooled.close()


def _rendered_line(text: str, size=(1116, 330), px: int = 34, at=(30, 148)):
    from PIL import Image, ImageDraw, ImageFont

    face = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    font = ImageFont.truetype(face, px) if os.path.exists(face) else ImageFont.load_default(px)
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text(at, text, fill="black", font=font)
    return image


def test_ocr_reads_a_clear_rendered_line_and_glued_capitals_are_split():
    from searchcore.ocr import RapidOcr, respace

    line = "The harbour office opens at nine every morning"
    assert RapidOcr().read(_rendered_line(line)).split() == line.split()
    assert respace("MYHAPPYPHARMACYPLT") == "MY HAPPY PHARMACY PLT"  # a stray letter joins its word
    assert respace("MYHAPPYPHARMACYPLT", strays=False) == "MYHAPPYPHARMACYPLT"
    assert respace("TOTALAMOUNT due") == "TOTAL AMOUNT due" and respace("Lighthouses") == "Lighthouses"


def test_ocr_tries_again_only_where_text_was_missed():
    import numpy as np
    from PIL import Image

    from searchcore.ocr import RapidOcr, _plain_background, _variants

    page = _rendered_line("Tide tables for the northern harbour")
    assert _plain_background(page)
    blocks = np.random.default_rng(3).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    photo = Image.fromarray(blocks).resize((400, 300), Image.NEAREST)  # a busy picture: no retry
    assert not _plain_background(photo)
    assert [v.size for v in _variants(page)] == [(1182, 396), (1674, 495), (558, 165)]
    ocr = RapidOcr()
    assert ocr.read(Image.new("RGB", (800, 600), "white")) == ""  # a blank page: tried again, still nothing
    # a picture too small to read is not enlarged into confident nonsense
    assert ocr.read(page.resize((140, 41))) == RapidOcr(retry=False).read(page.resize((140, 41))) == ""


@pytest.mark.skipif(not __import__("shutil").which("tesseract"), reason="tesseract is not installed")
def test_tesseract_gives_a_scored_second_opinion():
    from searchcore.ocr import TesseractOcr

    text, score = TesseractOcr().read_scored(_rendered_line("Ferry tickets are sold at the quay"))
    assert "Ferry tickets are sold at the quay" in text and score > 20
    assert TesseractOcr().read_scored(_rendered_line(""))[1] == 0.0
