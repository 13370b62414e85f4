"""Languages: each document's detected, its keywords stemmed by its own language's stemmer
(in FTS5, the tantivy cache and Milvus alike), ``--where lang=``, and the run's summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import write
from indexer.build import build_index
from indexer.languages import describe, detect
from searchcore.config import Config
from searchcore.maintenance import check
from searchcore.options import Filters
from searchcore.search import Searcher
from searchcore.snippets import snippet
from searchctl.cli import cli

GERMAN = (
    "# Das alte Rathaus\n\nDas Haus am Marktplatz wurde im Jahr 1620 gebaut und gehört zu den ältesten Gebäuden "
    "der Stadt. Seine Fassade aus rotem Sandstein wurde nach dem Krieg sorgfältig wiederhergestellt.\n"
)
GERMAN_PLURAL = (
    "# Neubaugebiet\n\nIm Norden der Gemeinde entstehen zurzeit viele neue Häuser für junge Familien, "
    "dazu eine Schule und ein kleiner Park mit Spielplatz.\n"
)
FRENCH = (
    "# La ferme\n\nLa ferme élève des chevaux de trait depuis trois générations. Chaque matin, les chevaux "
    "sont menés au pré derrière les granges du village.\n"
)
ENGLISH = (
    "# Reading on a Mac\n\nAn ebook reader for the Mac opens EPUB and PDF files, keeps your place in every "
    "book, and syncs your highlights between devices.\n"
)


def _folder(root: Path) -> Path:
    docs = root / "docs"
    write(docs, "rathaus.md", GERMAN)
    write(docs, "neubau.md", GERMAN_PLURAL)
    write(docs, "ferme.md", FRENCH)
    write(docs, "reader.md", ENGLISH)
    return docs


def _names(config: Config, embedder, query: str, **kw) -> list[str]:
    """The files keyword search finds for ``query``, by name, in alphabetical order."""
    with Searcher(config, embedder=embedder) as s:
        return sorted(Path(h.path).name for h in s.search(query, k=5, mode="bm25", **kw))


def test_detection_names_the_language_only_when_it_can_tell():
    assert detect(GERMAN) == "de" and detect(FRENCH) == "fr" and detect(ENGLISH) == "en"
    assert detect("Haus") is None  # too few letters to tell
    assert detect("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20") is None
    given = {"lang": "pt_BR"}
    assert describe(given, ENGLISH, None) == "pt" and given == {"lang": "pt"}  # a record's own language wins
    own = {"lang": "python"}  # a record's field that is no language: never overwritten
    assert describe(own, ENGLISH, None) is None and own == {"lang": "python"}


def test_inflected_forms_find_each_other_in_every_keyword_engine(tmp_path, hashing):
    config = Config(index_dir=tmp_path / "idx")
    summary = build_index(config, _folder(tmp_path), embedder=hashing)
    assert summary.languages == {"de": 2, "fr": 1, "en": 1}
    assert "languages: de 2, en 1, fr 1" in summary.line()
    for engine in ("tantivy", "fts5"):
        if engine == "fts5":  # no keyword cache of this generation: index.db's own table answers
            shutil.rmtree(config.index_dir / "keywords")
        # "Häuser" finds the document that says only "Haus", and "Haus" the one that says "Häuser"
        assert _names(config, hashing, "Häuser") == ["neubau.md", "rathaus.md"], engine
        assert _names(config, hashing, "Hauses") == ["neubau.md", "rathaus.md"], engine
        assert _names(config, hashing, "cheval") == ["ferme.md"], engine  # chevaux
        assert _names(config, hashing, "highlighted books") == ["reader.md"], engine  # English as before
        assert _names(config, hashing, "Haus", filters=Filters(where=(("lang", "fr"),))) == []
        assert _names(config, hashing, "Häuser", filters=Filters(where=(("lang", "de"),))) == [
            "neubau.md",
            "rathaus.md",
        ]


def test_edits_and_removals_keep_the_full_text_table_whole(tmp_path, hashing):
    config = Config(index_dir=tmp_path / "idx")
    docs = _folder(tmp_path)
    build_index(config, docs, embedder=hashing)
    write(docs, "rathaus.md", GERMAN.replace("Sandstein", "Backstein"))
    (docs / "ferme.md").unlink()
    summary = build_index(config, docs, embedder=hashing)
    assert (summary.updated, summary.removed) == (1, 1)
    assert _names(config, hashing, "Sandstein") == [] and _names(config, hashing, "Backsteine") == ["rathaus.md"]
    assert _names(config, hashing, "chevaux") == []
    shutil.rmtree(config.index_dir / "keywords")
    assert _names(config, hashing, "Sandstein") == [] and _names(config, hashing, "Backsteine") == ["rathaus.md"]
    report = check(config.index_dir)
    assert report.healthy, report.problems


def test_a_copied_file_keeps_its_stems(tmp_path, hashing):
    config = Config(index_dir=tmp_path / "idx")
    docs = _folder(tmp_path)
    build_index(config, docs, embedder=hashing)
    write(docs, "kopie/neubau.md", GERMAN_PLURAL)  # the same bytes at a second path: copied, not read again
    summary = build_index(config, docs, embedder=hashing)
    assert summary.copied == 1 and summary.chunks_embedded == 0
    assert _names(config, hashing, "Haus") == ["neubau.md", "neubau.md", "rathaus.md"]
    assert check(config.index_dir).healthy


def test_a_snippet_marks_the_inflected_form():
    found = snippet("Das Haus am Marktplatz ist alt.", "Häuser", lang="de")
    assert [found.text[s:e] for s, e in found.highlights] == ["Haus"]
    assert snippet("Das Haus am Marktplatz ist alt.", "Häuser").highlights == []  # English stems: no match


def test_records_carry_their_language_and_the_cli_filters_and_names_it(tmp_path):
    docs = _folder(tmp_path)
    rows = [
        {"id": "r1", "text": "Die Häuser an der Elbe stehen seit Jahrhunderten am Ufer des Flusses.", "lang": "de-DE"},
        {"id": "r2", "text": "The harbour of the old town is full of small fishing boats every morning."},
    ]
    write(docs, "records.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    runner = CliRunner()
    idx = tmp_path / "idx"
    out = runner.invoke(cli, ["index", str(docs), "--index", str(idx)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "languages: de 3, en 2, fr 1" in out.output
    assert "not trained on" in out.output and "--model" in out.output  # the default model's card says English
    result = runner.invoke(
        cli, ["query", "Haus", "--where", "lang=de", "--json", "--index", str(idx), "--mode", "bm25"]
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    found = {Path(h["path"]).name + (f"#{h['key']}" if h["key"] else "") for h in answer["hits"]}
    assert found == {"rathaus.md", "neubau.md", "records.jsonl#r1"}
    assert answer["languages"] == {"de": 3}
    assert all(h["metadata"]["lang"] == "de" for h in answer["hits"])


@pytest.mark.parametrize("engine", ["milvus"])
def test_milvus_stems_each_language_as_the_local_engine(tmp_path, hashing, engine):
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    config = Config(index_dir=tmp_path / "idx", engine=engine, milvus_uri=str(tmp_path / "chunks.db"))
    build_index(config, _folder(tmp_path), embedder=hashing)
    assert _names(config, hashing, "Häuser") == ["neubau.md", "rathaus.md"]
    assert _names(config, hashing, "cheval") == ["ferme.md"]
