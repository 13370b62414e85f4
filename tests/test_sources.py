import os
from pathlib import Path

import pytest

from conftest import write
from indexer.build import build_index
from indexer.readers import Skip, read_document
from indexer.sources import walk
from searchcore.config import Config

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def names(result, root):
    return sorted(p.relative_to(root).as_posix() for p in result.files)


def test_walk_skips_hidden_index_and_ignored_paths(tmp_path):
    write(tmp_path, "a.md", "a")
    write(tmp_path, ".hidden.txt", "h")
    write(tmp_path, ".git/config.txt", "g")
    write(tmp_path, "build/out.txt", "b")
    write(tmp_path, "notes/keep.txt", "k")
    write(tmp_path, "notes/draft.tmp.txt", "d")
    write(tmp_path, "idx/index.db", "x")
    write(tmp_path, ".searchignore", "build/\n*.tmp.txt\n")
    result = walk(tmp_path, index_dir=tmp_path / "idx")
    assert names(result, tmp_path) == ["a.md", "notes/keep.txt"]
    assert sorted((p.relative_to(tmp_path).as_posix(), why) for p, why in result.skips) == [
        (".git", "hidden"),
        (".hidden.txt", "hidden"),
        (".searchignore", "hidden"),
        ("build", "excluded by .searchignore"),
        ("notes/draft.tmp.txt", "excluded by .searchignore"),
    ]


def test_searchignore_can_reinclude_a_hidden_folder(tmp_path):
    write(tmp_path, ".github/workflows/ci.yml", "on: push")
    write(tmp_path, ".cache/junk.txt", "x")
    write(tmp_path, ".searchignore", "!.github/\n")
    result = walk(tmp_path)
    assert names(result, tmp_path) == [".github/workflows/ci.yml"]
    assert ("hidden" in result.skipped) and result.skipped["hidden"] == 2  # .cache and .searchignore


def test_walk_survives_a_symlink_loop(tmp_path):
    write(tmp_path, "d/file.txt", "x")
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    os.symlink(tmp_path, tmp_path / "d" / "up")
    result = walk(tmp_path)
    assert names(result, tmp_path) == ["d/file.txt"]
    assert result.skipped == {"symlink to a folder already walked": 2}


def test_walk_of_a_single_file(tmp_path):
    path = write(tmp_path, "one.txt", "x")
    assert walk(path).files == [path]


@pytest.mark.parametrize(
    "name,content,text",
    [
        ("utf8.txt", "naïve café 東京".encode(), "naïve café 東京"),
        ("bom.txt", "\ufeffwith bom".encode("utf-8"), "with bom"),
        ("utf16.txt", "UTF-16 text ü".encode("utf-16"), "UTF-16 text ü"),
        ("latin1.txt", "Größe über".encode("cp1252"), "Größe über"),
        ("README", b"no extension but a known name", "no extension but a known name"),
        ("code.py", b"def f():\n    return 1\n", "def f():\n    return 1\n"),
    ],
)
def test_text_decoding(tmp_path, name, content, text):
    path = write(tmp_path, name, content)
    kind, [doc], notes = read_document(path, content)
    assert doc.text == text and doc.key == "" and notes == []


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("image.png", b"\x89PNG\r\n", "not an image"),
        ("photo.heic", b"\x00\x00\x00\x18ftypheic", "unsupported file type"),
        ("fake.txt", b"\x00\x01\x02binary\x00data" * 10, "binary"),
        ("ctrl.txt", bytes(range(1, 32)) * 20, "binary"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "corrupt PDF"),
        ("bad.jsonl", b"{not json}\n[1]\n", "invalid JSON on line 1"),
        ("dup.json", b'[{"_id": "1", "text": "a"}, {"_id": "1", "text": "b"}]', "duplicate record id '1'"),
        ("list.json", b"[1, 2]", "JSON record is not an object (item 0)"),
    ],
)
def test_unreadable_content_is_skipped_with_a_reason(tmp_path, name, content, reason):
    path = write(tmp_path, name, content)
    with pytest.raises(Skip) as info:
        read_document(path, content)
    assert str(info.value) == reason


def test_html_keeps_visible_text_only():
    path = SAMPLE / "camping-checklist.html"
    kind, [doc], _ = read_document(path, path.read_bytes())
    assert kind == "html" and doc.title == "Weekend camping checklist"
    assert "Sleeping mat: it insulates you from the cold ground" in doc.text
    for hidden in ("analytics", "tracking-pixel", "font-family", "querySelectorAll", "<li>"):
        assert hidden not in doc.text


def test_pdf_text_and_title():
    path = SAMPLE / "fire-safety-at-home.pdf"
    kind, [doc], _ = read_document(path, path.read_bytes())
    assert kind == "pdf" and doc.title == "Fire safety at home" and doc.metadata == {"pages": 1}
    assert "Never throw water on burning oil." in doc.text


def test_json_array_of_records(tmp_path):
    data = b'[{"id": "a", "title": "T", "text": "body", "tags": ["x"]}, {"text": "no id"}]'
    kind, docs, _ = read_document(write(tmp_path, "r.json", data), data)
    assert [(d.key, d.title, d.text, d.metadata) for d in docs] == [
        ("a", "T", "body", {"tags": ["x"]}),
        ("item-1", None, "no id", {}),
    ]


def test_summary_counts_skips_by_reason_and_the_run_goes_on(tmp_path, hashing):
    root = tmp_path / "docs"
    write(root, "good.txt", "Good text about gardens.")
    write(root, "empty.txt", b"")
    write(root, "fake.txt", b"\x00\x00binary")
    write(root, "pic.jpg", b"\xff\xd8\xff")
    write(root, "broken.pdf", b"%PDF-1.4 garbage")
    write(root, "a name with spaces, ünïcode.md", "Spaces and unicode in the name.")
    summary = build_index(Config(index_dir=tmp_path / "idx"), root, embedder=hashing)
    assert summary.skipped == {"binary": 1, "not an image": 1, "corrupt PDF": 1, "empty file": 1}
    assert sorted((Path(p).name, why) for p, why in summary.skipped_files) == [
        ("broken.pdf", "corrupt PDF"),
        ("empty.txt", "empty file"),
        ("fake.txt", "binary"),
        ("pic.jpg", "not an image"),
    ]
    assert summary.added == 2 and summary.chunks == 2  # nothing is indexed empty in silence
    assert "4 skipped (1 binary, 1 corrupt PDF, 1 empty file, 1 not an image)" in summary.line()


def test_a_file_that_turns_binary_loses_its_old_text(tmp_path, hashing):
    root = tmp_path / "docs"
    path = write(root, "note.txt", "Some words.")
    build_index(Config(index_dir=tmp_path / "idx"), root, embedder=hashing)
    write(root, "note.txt", b"\x00\x01 now binary")
    summary = build_index(Config(index_dir=tmp_path / "idx"), root, embedder=hashing)
    assert summary.removed == 1 and summary.documents == 0 and summary.skipped == {"binary": 1}
    assert path.exists()
