"""Folders in the model cache (ONNX exports, the converted default generator): each is made
once in a scratch folder beside its place and moved in whole, so a crash or a second
process never leaves a half-written folder where a whole one is expected."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import SearchctlError

__all__ = ["sha256_file", "new_cache_folder", "atomic_write_text", "quiet_tools"]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def quiet_tools() -> Iterator[None]:
    """Warnings logged by onnxruntime's Python tools (the quantisers, the optimiser: to
    loggers below the root) held back while a cached model is made."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def atomic_write_text(path: Path, text: str) -> None:
    """``path`` holds ``text`` whole or not at all (written beside it, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=".new-", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as fh:
            fh.write(text)
        os.replace(scratch, path)
    finally:
        Path(scratch).unlink(missing_ok=True)


@contextmanager
def new_cache_folder(folder: Path, is_whole: Callable[[], bool]) -> Iterator[Path]:
    """A scratch folder beside ``folder`` to fill; when the block ends without error it
    replaces ``folder``, unless another process moved a whole one (``is_whole``) there first."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".new-", dir=folder.parent))
    except OSError as exc:
        raise SearchctlError(
            f"cannot write the model cache {folder.parent} ({exc.strerror or exc}); "
            "set SEARCHCTL_CACHE to a writable folder"
        ) from exc
    try:
        yield work
        shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(work, folder)
        except OSError:
            if not is_whole():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
