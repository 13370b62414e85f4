"""Every reader over a corpus of real files nobody here wrote, and over damaged copies of
them: no exception escapes, and no file ends as "reader failed" (every failure a reader
meets is one it names).

The corpus is what the installed packages ship (Word, PowerPoint and OpenDocument
templates, matplotlib's PDFs and pictures, scikit-learn's CSV datasets and their
reStructuredText descriptions, the HTML, SVG, JSON, Markdown and XML of many projects),
found at test time in the environment, never copied into this repository; the damaged
copies are each file cut in half and each file with its middle bytes scrambled."""

from __future__ import annotations

import random
import sysconfig
from collections import Counter
from pathlib import Path

import pytest

from indexer.readers import Skip, file_kind, read_document

SITE = Path(sysconfig.get_paths()["purelib"])
# Files read per kind: enough variety, a few seconds in all.
PER_KIND = 25


def _corpus() -> list[Path]:
    chosen: dict[str, list[Path]] = {}
    for path in sorted(SITE.rglob("*")):
        if "__pycache__" in path.parts or ".dist-info" in str(path) or not path.is_file():
            continue
        kind = file_kind(path)
        if kind is None or kind == "text" or path.stat().st_size > 2_000_000:
            continue
        picked = chosen.setdefault(kind, [])
        if len(picked) < PER_KIND:
            picked.append(path)
    return [p for paths in chosen.values() for p in paths]


CORPUS = _corpus()


def _damaged(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    middle = bytearray(data)
    for _ in range(min(64, len(middle))):
        middle[rng.randrange(len(middle) // 4, max(len(middle) // 4 + 1, 3 * len(middle) // 4))] = rng.randrange(256)
    return [data[: len(data) // 2], bytes(middle)]


def test_the_corpus_is_real_and_varied():
    kinds = Counter(file_kind(p) for p in CORPUS)
    assert len(CORPUS) >= 100, kinds
    assert {"pdf", "docx", "pptx", "odt", "rst", "html", "svg", "json", "csv", "image", "markdown"} <= set(kinds), kinds


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(SITE)))
def test_every_reader_names_what_it_cannot_read(path):
    data = path.read_bytes()
    for n, variant in enumerate([data, *_damaged(data, seed=len(data))]):
        try:
            reading = read_document(path, variant)
        except Skip as skip:
            assert not str(skip).startswith("reader failed"), f"{path.name} (variant {n}): {skip}"
            continue
        assert reading.kind == file_kind(path)
        for document in reading.documents:
            assert isinstance(document.text, str) and "\x00" not in document.text
