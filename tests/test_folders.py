"""What an indexing run says about a real folder: every skipped file by name and reason,
counts that add up to the files on disk, warnings, moves and copies that embed nothing,
and progress lines in a log."""

import io
import json
import os
import shutil

from click.testing import CliRunner
from corpus import type3_garbage_pdf

from conftest import write
from indexer.build import build_index
from indexer.progress import Progress
from searchcore.config import Config
from searchcore.search import Searcher
from searchctl.cli import cli


def _every_skip_reason(root):
    write(root, "good.md", "# Kites\n\nA kite needs steady wind.")
    write(root, "also-good.txt", "Balloons rise in warm air.")
    write(root, "warned.md", "Caf\u00e9 notes ".encode() + b"\xff\xfe\xfa" + b" more")
    write(root, "fake.txt", b"\x00\x01binary\x00")
    write(root, "picture.xyz", b"\x89 not a known type")
    write(root, "broken.pdf", b"%PDF-1.4 this is not a pdf")
    write(root, "garbage.pdf", type3_garbage_pdf())
    write(root, "big.txt", "x" * (2 * 1024 * 1024))
    write(root, ".hidden-notes.txt", "hidden")
    write(root, "drafts/one.txt", "ignored by the user")
    write(root, ".searchignore", "drafts/\n")
    os.symlink(root / "nowhere", root / "dangling.txt")


def test_every_skipped_file_is_named_and_the_counts_add_up(tmp_path, hashing):
    root = tmp_path / "docs"
    _every_skip_reason(root)
    config = Config(index_dir=tmp_path / "idx", max_file_mb=1)
    summary = build_index(config, root, embedder=hashing)
    named = {os.path.relpath(p, root): why for p, why in summary.skipped_files}
    assert named == {
        "fake.txt": "binary",
        "picture.xyz": "unsupported file type",
        "broken.pdf": "corrupt PDF",
        "garbage.pdf": "unreadable text (and OCR read no page)",
        "big.txt": "larger than 1 MB (--max-file-size)",
        ".hidden-notes.txt": "hidden",
        ".searchignore": "hidden",
        "drafts": "excluded by .searchignore",
        "dangling.txt": "broken symlink",
    }
    entries = sorted(os.listdir(root))  # what a person sees in the folder
    indexed = summary.added
    assert indexed + len(summary.skipped_files) == len(entries)
    assert summary.notes == [(str(root / "warned.md"), "3 undecodable bytes replaced")]
    assert "1 read with warnings" in summary.line()

    # The skipped files stay listed for `searchctl files --skipped`, and an unchanged run names them again.
    again = build_index(config, root, embedder=hashing)
    assert sorted(again.skipped_files) == sorted(summary.skipped_files)
    runner = CliRunner()
    listed = runner.invoke(cli, ["files", "--skipped", "--json", "--index", str(config.index_dir)])
    assert listed.exit_code == 0, listed.output
    assert {os.path.relpath(r["path"], root): r["reason"] for r in json.loads(listed.stdout)} == named
    files = runner.invoke(cli, ["files", "--index", str(config.index_dir)])
    assert "warned.md  markdown, 1 document, 1 chunks\n    warning: 3 undecodable bytes replaced" in files.stdout

    # Fixing a file takes it off the list; deleting one forgets it.
    write(root, "fake.txt", "Now it is text about gliders.")
    (root / "broken.pdf").unlink()
    third = build_index(config, root, embedder=hashing)
    assert third.added == 1
    listed = runner.invoke(cli, ["files", "--skipped", "--json", "--index", str(config.index_dir)])
    remaining = {os.path.relpath(r["path"], root) for r in json.loads(listed.stdout)}
    assert "fake.txt" not in remaining and "broken.pdf" not in remaining and "garbage.pdf" in remaining


def test_the_cli_names_the_first_skipped_files_and_json_has_them_all(tmp_path):
    root = tmp_path / "docs"
    write(root, "ok.txt", "Some words about owls.")
    for i in range(8):
        write(root, f"bin{i}.txt", b"\x00\x00binary")
    args = ["index", str(root), "--index", str(tmp_path / "idx"), "--model", "hash:64"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("skipped:")]
    assert len(lines) == 6 and lines[0].endswith("bin0.txt: binary")
    assert lines[-1] == "skipped: ... and 3 more (`searchctl files --skipped` lists them all)"
    as_json = CliRunner().invoke(cli, [*args, "--json"])
    data = json.loads(as_json.stdout)
    assert len(data["skipped_files"]) == 8 and data["skipped"] == {"binary": 8}


def test_a_renamed_folder_embeds_nothing_and_a_copy_embeds_nothing(tmp_path, hashing):
    root = tmp_path / "docs"
    for i in range(100):
        write(root, f"notes/n{i:03d}.md", f"# Note {i}\n\nThe number {i} is {'even' if i % 2 == 0 else 'odd'}.")
    config = Config(index_dir=tmp_path / "idx")
    first = build_index(config, root, embedder=hashing)
    assert first.added == 100 and first.chunks_embedded == 100
    os.rename(root / "notes", root / "archive")
    moved = build_index(config, root, embedder=hashing)
    assert (moved.chunks_embedded, moved.moved, moved.added, moved.removed) == (0, 100, 0, 0)
    shutil.copy(root / "archive" / "n007.md", root / "copy-of-seven.md")
    copied = build_index(config, root, embedder=hashing)
    assert (copied.chunks_embedded, copied.copied) == (0, 1)
    with Searcher(config, embedder=hashing) as searcher:
        assert searcher.counts["chunks"] == 101 and searcher.engine.size == 101
        paths = {os.path.relpath(h.path, root) for h in searcher.search("The number 7 is odd", 5, mode="bm25")}
        assert {"archive/n007.md", "copy-of-seven.md"} <= paths
        assert not any(p.startswith("notes/") for p in paths)
    # the index equals a clean build of the folder as it is now
    clean = Config(index_dir=tmp_path / "clean")
    build_index(clean, root, embedder=hashing)
    with Searcher(config, embedder=hashing) as a, Searcher(clean, embedder=hashing) as b:
        sa, sb = a.snapshot.records, b.snapshot.records
        assert sorted(sa.file_paths()) == sorted(sb.file_paths())
        assert sorted(r[2:] for r in sa.chunk_rows()) == sorted(r[2:] for r in sb.chunk_rows())


def test_progress_lines_in_a_log():
    out = io.StringIO()
    progress = Progress("lines", 20, every_seconds=3600, quiet_seconds=0, stream=out)
    for i in range(20):
        progress.file_done()
        if i % 5 == 4:
            progress.embedded(50, 0.5)
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "progress: 20 files to look at"
    assert 10 <= len(lines) <= 12  # about every tenth of the files
    assert lines[-1].startswith("progress: 20/20 files, 200 chunks embedded, 100.0 chunks/s, ")
    assert "ETA 0s" in lines[-1]


def test_nothing_in_a_log_for_a_short_run():
    out = io.StringIO()
    progress = Progress("lines", 5, stream=out)
    for _ in range(5):
        progress.file_done()
    assert out.getvalue() == ""
