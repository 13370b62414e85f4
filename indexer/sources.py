"""Which files an indexing run looks at.

Walks folders recursively in a stable (sorted) order. Skips the index folder itself,
hidden files and folders (a name starting with ".") and whatever the root's
``.searchignore`` excludes (gitignore syntax). The hidden rule is the first line of that
file as if it were written there (``.*``), so the file can re-include what it hides
(``!.github/``). Every entry passed over is named with its reason ("hidden", "excluded by
.searchignore", ...); a skipped folder counts once, its contents are never walked.
Symlinks are followed, but a folder already visited in this walk (by device and inode) is
never entered twice, so a symlink loop ends the descent instead of recursing forever.
Unreadable folders are reported, not fatal.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

__all__ = ["walk", "walk_roots", "Walk", "IGNORE_FILE"]

IGNORE_FILE = ".searchignore"


HIDDEN = "hidden"
EXCLUDED = f"excluded by {IGNORE_FILE}"


@dataclass
class Walk:
    """The files found under some roots, and what was passed over and why."""

    files: list[Path] = field(default_factory=list)
    skips: list[tuple[Path, str]] = field(default_factory=list)

    def skip(self, path: Path, reason: str) -> None:
        self.skips.append((path, reason))

    @property
    def skipped(self) -> dict[str, int]:
        """reason -> how many entries were passed over for it."""
        out: dict[str, int] = {}
        for _, reason in self.skips:
            out[reason] = out.get(reason, 0) + 1
        return out


class _Rules:
    """The hidden rule and the root's .searchignore, as one gitignore file would say them."""

    def __init__(self, root: Path):
        path = root / IGNORE_FILE
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else []
        self.user = pathspec.GitIgnoreSpec.from_lines(lines) if lines else None
        self.all = pathspec.GitIgnoreSpec.from_lines([".*", *lines])

    def reason(self, rel: str, name: str) -> str | None:
        """Why ``rel`` (a folder ends in "/") is passed over, or None."""
        if not self.all.match_file(rel):
            return None
        if name.startswith(".") and not (self.user is not None and self.user.match_file(rel)):
            return HIDDEN
        return EXCLUDED


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
    rules = _Rules(root)
    seen: set[tuple[int, int]] = set()
    result.files.extend(_walk_dir(root, root, rules, exclude, seen, result))
    return result


def _walk_dir(
    folder: Path,
    root: Path,
    rules: _Rules,
    exclude: set[tuple[int, int]],
    seen: set[tuple[int, int]],
    result: Walk,
) -> Iterator[Path]:
    try:
        st = folder.stat()
    except OSError:
        result.skip(folder, "unreadable folder")
        return
    ident = (st.st_dev, st.st_ino)
    if ident in seen:
        result.skip(folder, "symlink to a folder already walked")
        return
    if ident in exclude:
        return
    seen.add(ident)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        result.skip(folder, "unreadable folder")
        return
    for entry in entries:
        path = Path(entry.path)
        rel = path.relative_to(root).as_posix()
        try:
            is_dir = entry.is_dir()  # follows symlinks
            is_file = not is_dir and entry.is_file()
        except OSError:
            result.skip(path, "unreadable")
            continue
        if is_dir:
            if entry.name.startswith(".") or rules.user is not None:
                if (why := rules.reason(rel + "/", entry.name)) is not None:
                    if not _is_index(path, exclude):
                        result.skip(path, why)
                    continue
            yield from _walk_dir(path, root, rules, exclude, seen, result)
        elif is_file:
            if entry.name.startswith(".") or rules.user is not None:
                if (why := rules.reason(rel, entry.name)) is not None:
                    result.skip(path, why)
                    continue
            yield path
        elif entry.is_symlink():
            result.skip(path, "broken symlink")
        else:  # a FIFO, socket or device: reading it could block forever
            result.skip(path, "not a regular file")


def _is_index(path: Path, exclude: set[tuple[int, int]]) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return (st.st_dev, st.st_ino) in exclude


def walk_roots(
    paths: list[Path], index_dir: Path, summary, skips: list, readers_version: str
) -> tuple[list[Path], set[str], list[str]]:
    """The files to look at under ``paths`` (each once), their names, and the roots;
    what the walk passed over goes into the run's summary and ``skips``."""
    roots = [os.path.abspath(p) for p in paths]
    seen: set[str] = set()
    files: list[Path] = []
    for root in roots:
        found = walk(Path(root), index_dir)
        for path, reason in found.skips:
            if str(path) not in seen:
                seen.add(str(path))
                summary.skip(reason, path=str(path))
                skips.append((str(path), reason, -1, -1, readers_version))
        for file in found.files:
            if str(file) not in seen:
                seen.add(str(file))
                files.append(file)
    return files, seen, roots
