"""PDF text extraction: PDFium (pypdfium2, what searchctl uses) against pypdf, in one run.

Builds PDFs here (fpdf2 with a TrueType font, so the text layer has a Unicode mapping):
pages of prose with ligatures (U+FB01..FB04) and words hyphenated at line ends, then
times each extractor over them and counts what a keyword search would trip on: ligature
characters left in the text, hyphenated words left broken, and words from the source
that are missing from the extracted text.

    python bench/readers.py [--pages 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import io
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the test corpus builder

WORDS = (
    "the efficient flow of significant fields affects the final figures in difficult offices where "
    "findings reflect official flights and fluid profiles of fine structures under influence"
).split()
LIGATURES = {"ffi": "\ufb03", "ffl": "\ufb04", "fi": "\ufb01", "fl": "\ufb02", "ff": "\ufb00"}


def _ligate(word: str) -> str:
    for plain, ligature in LIGATURES.items():
        word = word.replace(plain, ligature)
    return word


def build(pages: int, seed: int = 0) -> tuple[bytes, list[str]]:
    from corpus import _font
    from fpdf import FPDF

    rng = random.Random(seed)
    pdf = FPDF()
    pdf.add_font("dejavu", fname=_font())
    pdf.set_font("dejavu", size=10)
    source: list[str] = []
    for _ in range(pages):
        pdf.add_page()
        for _ in range(45):
            words = [rng.choice(WORDS) for _ in range(11)]
            source += words
            line = " ".join(_ligate(w) for w in words)
            last = words[-1]
            if len(last) > 6 and rng.random() < 0.3:  # hyphenate the last word across the line end
                cut = len(last) // 2
                line = " ".join(_ligate(w) for w in words[:-1]) + " " + _ligate(last[:cut]) + "-"
                pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
                line = _ligate(last[cut:])
            pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output()), source


def pdfium_text(data: bytes) -> str:
    from indexer.readers.pdf import pdf_pages

    return "\n".join(p.replace("\ufffe", "") for p in pdf_pages(data)[0])


def pypdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data, source = build(args.pages)
    wanted = set(source)
    print(f"{args.pages} pages, {len(source):,} words, {len(data) / 1e6:.1f} MB")
    print(f"{'extractor':<10} {'seconds':>8} {'pages/s':>8} {'ligatures':>10} {'broken':>7} {'missing words':>14}")
    for name, extract in (("pdfium", pdfium_text), ("pypdf", pypdf_text)):
        times, text = [], ""
        for _ in range(args.runs):
            started = time.perf_counter()
            text = extract(data)
            times.append(time.perf_counter() - started)
        seconds = statistics.median(times)
        ligatures = sum(text.count(ch) for ch in LIGATURES.values())
        broken = len(re.findall(r"[a-z]-\s*\n", text))
        found = set(re.findall(r"[a-z]+", text))
        missing = len(wanted - found)
        print(f"{name:<10} {seconds:>8.3f} {args.pages / seconds:>8.1f} {ligatures:>10,} {broken:>7,} {missing:>14,}")


if __name__ == "__main__":
    main()
