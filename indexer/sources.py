"""Which files an indexing run looks at.

Walks folders recursively in a stable (sorted) order. Skips hidden files and folders,
the index folder itself, and whatever the root's ``.searchignore`` excludes (gitignore
syntax). Symlinks are followed, but a folder already visited in this walk (by device
and inode) is never entered twice, so a symlink loop ends the descent instead of
recursing forever. Unreadable folders are reported, not fatal.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

__all__ = ["walk", "Walk", "IGNORE_FILE"]

IGNORE_FILE = ".searchignore"


@dataclass
class Walk:
    """The files found under some roots, and what was passed over and why."""

    files: list[Path] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _ignore_spec(root: Path) -> pathspec.PathSpec | None:
    path = root / IGNORE_FILE
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


def walk(root: Path, index_dir: Path | None = None) -> Walk:
    """Every candidate file under ``root`` (or ``root`` itself if it is a file)."""
    result = Walk()
    root = Path(os.path.abspath(root))
    if root.is_file():
        result.files.append(root)
        return result
    exclude: set[tuple[int, int]] = set()
    if index_dir is not None and Path(index_dir).is_dir():
        st = Path(index_dir).stat()
        exclude.add((st.st_dev, st.st_ino))
    spec = _ignore_spec(root)
    seen: set[tuple[int, int]] = set()
    result.files.extend(_walk_dir(root, root, spec, exclude, seen, result))
    return result


def _walk_dir(
    folder: Path,
    root: Path,
    spec: pathspec.PathSpec | None,
    exclude: set[tuple[int, int]],
    seen: set[tuple[int, int]],
    result: Walk,
) -> Iterator[Path]:
    try:
        st = folder.stat()
    except OSError:
        result.skip("unreadable folder")
        return
    ident = (st.st_dev, st.st_ino)
    if ident in seen:
        result.skip("symlink to a folder already walked")
        return
    if ident in exclude:
        return
    seen.add(ident)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        result.skip("unreadable folder")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        rel = path.relative_to(root).as_posix()
        try:
            is_dir = entry.is_dir()  # follows symlinks
            is_file = not is_dir and entry.is_file()
        except OSError:
            result.skip("unreadable")
            continue
        if is_dir:
            if spec is not None and spec.match_file(rel + "/"):
                continue
            yield from _walk_dir(path, root, spec, exclude, seen, result)
        elif is_file:
            if spec is not None and spec.match_file(rel):
                continue
            yield path
        elif entry.is_symlink():
            result.skip("broken symlink")
        else:  # a FIFO, socket or device: reading it could block forever
            result.skip("not a regular file")
