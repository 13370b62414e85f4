"""One writer per index, any number of readers.

The writer holds an exclusive ``flock`` on ``writer.lock`` in the index folder for the
whole indexing run and writes its pid there. The kernel drops the lock when the process
dies, however it dies, so a lock left by a killed writer is never stale: the next writer
simply takes it. Readers never take it; they only ask whether a writer is at work (to
tell "the FAISS file is still being written" from "the writer crashed before writing it").

``writing(index_dir)`` is how every writer starts: the lock, then the store, both let go
of on the way out, whatever happens.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import IndexLockedError, IndexReadOnlyError
from .store import Store

__all__ = ["WriterLock", "writer_active", "writing", "LOCK_NAME"]

LOCK_NAME = "writer.lock"


class WriterLock:
    def __init__(self, index_dir: Path):
        self.path = Path(index_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, wait: bool = False, poll: float = 0.2) -> WriterLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except (PermissionError, OSError) as exc:
            if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
                raise IndexReadOnlyError(self.path.parent, exc.strerror) from None
            raise
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    holder = _read_pid(fd)
                    os.close(fd)
                    raise IndexLockedError(self.path.parent, holder) from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        return self if self._fd is not None else self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None


def writer_active(index_dir: Path) -> bool:
    path = Path(index_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a shared lock we may have taken
    return False


@contextlib.contextmanager
def writing(
    index_dir: Path, *, wait: bool = False, create: bool = False, unlocked_if_read_only: bool = False
) -> Iterator[Store]:
    """The writer lock and the index's Store, for one writing command.

    ``create``: make the folder and an empty index if there is none. ``wait``: wait for
    another writer instead of failing. ``unlocked_if_read_only``: a folder this user
    cannot write is opened without the lock (no writer of this user can be at work
    there); for commands that only write when asked to, such as ``check``."""
    index_dir = Path(index_dir)
    if create:
        index_dir.mkdir(parents=True, exist_ok=True)
    lock = WriterLock(index_dir)
    try:
        lock.acquire(wait=wait)
    except IndexReadOnlyError:
        if not unlocked_if_read_only:
            raise
    try:
        with Store.open(index_dir, create=create) as store:
            yield store
    finally:
        lock.release()  # a no-op when it was never taken
