"""Where indexed files are shown from: paths relative to the indexed folder.

An index remembers the folders it was built from (meta ``roots``). Its files are shown
relative to their *base*: the folder itself when there is one, else the deepest folder
that holds them all, so two files never show the same relative path. ``Places`` turns an
indexed path into that relative form and back, refusing any relative path that could
leave the base (``..``, an absolute path, an empty segment).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .errors import UsageError
from .meta import IndexMeta

__all__ = ["Places", "base_folder"]


def base_folder(roots: Sequence[str]) -> str | None:
    """The folder every indexed path is shown relative to; None when nothing was recorded."""
    folders = [os.path.normpath(r) for r in roots if r]
    if not folders:
        return None
    return os.path.commonpath(folders) if len(folders) > 1 else folders[0]


class Places:
    """Indexed paths shown relative to the index's base folder, and back."""

    def __init__(self, roots: Sequence[str]):
        self.base = base_folder(roots)
        self._prefix = self.base.rstrip(os.sep) + os.sep if self.base is not None else None

    @classmethod
    def of(cls, meta: IndexMeta) -> Places:
        return cls(meta.roots)

    def relative(self, path: str) -> str | None:
        """``path`` relative to the base (with ``/`` separators), or None when it is not under it."""
        if self._prefix is None or not path.startswith(self._prefix):
            return None
        # what os.path.relpath gives for a path under the base, without its two abspath calls
        return os.path.normpath(path[len(self._prefix) :]).replace(os.sep, "/")

    def shown(self, path: str) -> str:
        """How a page shows ``path``: relative to the base when under it, else as it is."""
        return self.relative(path) or path

    def absolute(self, relative: str) -> str:
        """The indexed path a relative path names (UsageError when it could leave the base)."""
        if self.base is None:
            raise UsageError("this index does not record the folder it was built from; re-run `searchctl index DIR`")
        parts = relative.split("/")
        if (
            not relative
            or relative.startswith("/")
            or "\x00" in relative
            or any(part in ("", ".", "..") for part in parts)
        ):
            raise UsageError(
                f"{relative[:200]!r} is not a path inside the indexed folder; give it relative to that folder, "
                "without '..' or a leading '/'"
            )
        return os.path.join(self.base, *parts)
