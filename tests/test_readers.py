"""Every format people keep, read by its own library: the text, the title, the metadata,
and the troubles of real files (ligatures, broken words, garbage text layers, encryption,
junk titles, a few bad bytes, one bad JSONL line)."""

from pathlib import Path

import pytest
from corpus import FORMATS, jsonl, pdf_with_lines, type3_garbage_pdf, write_formats

from indexer.build import build_index
from indexer.readers import Skip, read_document
from indexer.readers.text import good_title, normalise, unreadable
from searchcore.config import Config
from searchcore.search import Searcher


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_format_is_read_with_its_title(tmp_path, name):
    make, phrase, kind, title = FORMATS[name]
    reading = read_document(tmp_path / name, make())
    [doc] = reading.documents
    assert reading.kind == kind and reading.notes == []
    assert phrase in doc.text
    assert doc.title == title


def test_structure_and_metadata_survive_and_markup_does_not(tmp_path):
    files = write_formats(tmp_path)
    docx = read_document(files["handbook.docx"], files["handbook.docx"].read_bytes()).documents[0]
    assert "# Watering tomatoes" in docx.text and "## Ventilation" in docx.text
    assert "Crop | Litres" in docx.text and docx.metadata == {"author": "Ada Gardener"}
    pptx = read_document(files["lighthouse.pptx"], files["lighthouse.pptx"].read_bytes()).documents[0]
    assert "# Fog signals" in pptx.text and "keeper's logbook" in pptx.text  # slide notes
    notebook = read_document(files["rainfall.ipynb"], files["rainfall.ipynb"].read_bytes()).documents[0]
    assert "```python\nimport numpy as np" in notebook.text
    assert "OUTPUT-THAT-MUST-NOT-BE-INDEXED" not in notebook.text  # outputs are dropped
    rst = read_document(files["sailing.rst"], files["sailing.rst"].read_bytes()).documents[0]
    assert rst.text.startswith("# Sailing for starters") and "## Knots" in rst.text
    assert "Reefing the mainsail early is the first rule of" in rst.text  # no ** or link markup
    assert "`" not in rst.text and "**" not in rst.text and "toctree" not in rst.text
    assert "root:" not in rst.text  # `.. include:: /etc/passwd` is never followed
    assert rst.metadata == {"author": "Grace Mariner", "date": "2024-05-01"}
    svg = read_document(files["volcano.svg"], files["volcano.svg"].read_bytes()).documents[0]
    assert "pathdata" not in svg.text and "M 10 90" not in svg.text


def test_pdf_ligatures_and_broken_words_are_mended_and_junk_titles_fall_back(tmp_path):
    make, *_ = FORMATS["ligatures.pdf"]
    doc = read_document(tmp_path / "x.pdf", make()).documents[0]
    assert "\ufb01" not in doc.text and "significantly" in doc.text
    assert "second experiment than before" in doc.text  # the hyphen at the line end is gone
    assert doc.title != "paper.dvi"


@pytest.mark.parametrize(
    "title,good",
    [
        ("paper.dvi", None),
        ("Microsoft Word - thesis final.doc", None),
        ("untitled", None),
        ("Presentation1", None),
        ("  ", None),
        ("123-456", None),
        ("The PageRank Citation Ranking", "The PageRank Citation Ranking"),
    ],
)
def test_junk_titles(title, good):
    assert good_title(title) == good


def test_a_garbage_text_layer_is_unreadable_text():
    with pytest.raises(Skip) as info:
        read_document(Path("g.pdf"), type3_garbage_pdf())
    assert str(info.value) == "unreadable text (no OCR engine)"
    assert unreadable("/97/112/112/108/101 /115/101/101/100/115 " * 20) == "glyph codes instead of text"
    assert unreadable("The quick brown fox jumps over the lazy dog. " * 5) is None


def test_a_pdf_with_one_garbage_page_keeps_the_others(tmp_path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for data in (pdf_with_lines(["Otters hold hands while they sleep."]), type3_garbage_pdf()):
        writer.append(PdfReader(__import__("io").BytesIO(data)))
    out = tmp_path / "mixed.pdf"
    with open(out, "wb") as fh:
        writer.write(fh)
    reading = read_document(out, out.read_bytes())
    assert "Otters hold hands" in reading.documents[0].text
    assert reading.notes == ["1 of 2 pages left out: unreadable text, no OCR engine (page 2)"]


def test_a_pdf_that_needs_a_real_password_is_skipped():
    data = pdf_with_lines(["secret"], password="hunter2")
    with pytest.raises(Skip) as info:
        read_document(Path("locked.pdf"), data)
    assert str(info.value) == "encrypted PDF (needs a password)"


def test_normalise_keeps_line_numbers():
    text = "The ﬁrst signi-\nficant result\nand a well-\nKnown name"
    out = normalise(text)
    assert out == "The first significant\n result\nand a well-\nKnown name"
    assert out.count("\n") == text.count("\n")


def test_a_few_bad_bytes_are_replaced_and_reported(tmp_path):
    data = "# Café notes\n\nNaïve espresso tips ".encode() + b"\xff\xfe\xfa" + b" end\n"
    reading = read_document(tmp_path / "notes.md", data)
    assert "Naïve espresso tips" in reading.documents[0].text
    assert reading.notes == ["3 undecodable bytes replaced"]


def test_a_bad_jsonl_line_skips_that_line_only(tmp_path):
    data = jsonl([{"_id": "a", "text": "first"}]) + b"{not json}\n" + jsonl([{"_id": "b", "text": "second"}])
    data += jsonl([{"_id": "a", "text": "again"}])
    reading = read_document(tmp_path / "r.jsonl", data)
    assert [d.key for d in reading.documents] == ["a", "b"]
    assert reading.notes == ["1 line left out: invalid JSON (line 2)", "1 line left out: repeated id (line 4)"]


def test_one_huge_line_is_indexed_with_a_warning(tmp_path):
    reading = read_document(tmp_path / "dump.txt", ("word " * 30_000).encode())
    assert reading.notes == ["one line of 150,000 characters (chunked by sentences and tokens)"]


def test_keyword_search_finds_ligature_and_hyphenated_words(tmp_path, hashing):
    root = tmp_path / "docs"
    write_formats(root)
    config = Config(index_dir=tmp_path / "idx")
    summary = build_index(config, root, embedder=hashing)
    assert summary.skipped == {} and summary.added == len(FORMATS)
    with Searcher(config, embedder=hashing) as searcher:
        for word in ("significantly", "experiment", "efficient"):
            [hit] = searcher.search(word, 1, mode="bm25")
            assert hit.path.endswith("ligatures.pdf"), word
        assert searcher.search("Gewitterwarnung", 1, mode="bm25")[0].path.endswith("weather.po")


def test_the_search_filter_knows_every_kind_a_reader_records():
    from indexer.readers import KINDS
    from searchcore.options import FILE_KINDS

    assert set(FILE_KINDS) == set(KINDS)
