"""The connection to index.db: opening, transactions, migrations, meta.

Tables: ``files`` (one row per source file: path, kind, content hash, size, mtime),
``documents`` (one per file, or one per record of a JSON/JSONL file), ``chunks`` (text,
character and line span), ``vectors`` (one float32 BLOB per chunk) and ``meta``
(``searchcore.meta.IndexMeta``, one row per field).

Trade-offs: the connection runs in autocommit mode and every write goes through
``Store.write()``, an explicit ``BEGIN IMMEDIATE`` ... ``COMMIT``, because a batch of
documents, chunks and vectors must land together or not at all; sqlite-utils' helpers
commit on their own, so they are used only for reads and schema inspection. Ids use
AUTOINCREMENT so that a deleted chunk's id is never reused: an older FAISS file can then
never point at somebody else's text. WAL mode lets readers go on while a writer commits.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, Self

import sqlite_utils

from ..errors import IndexFormatError, IndexNotFoundError
from ..meta import IndexMeta
from .schema import DB_NAME, MIGRATIONS

__all__ = ["StoreBase", "ChunkRecord", "DocumentRow", "now"]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class DocumentRow(NamedTuple):
    """One document as the fine-tuning and evaluation tools list them."""

    doc_id: int
    key: str
    title: str | None
    path: str
    kind: str


@dataclass(frozen=True)
class ChunkRecord:
    chunk_id: int
    doc_id: int
    path: str
    key: str
    title: str | None
    text: str
    char_start: int
    char_end: int
    line_start: int
    line_end: int
    metadata: dict = field(default_factory=dict)
    kind: str = ""  # the file's kind, as its reader named it
    mtime_ns: int = 0  # the file's modification time


# How much of index.db a reader maps into memory (SQLite's own limit is 2 GB).
READER_MAP_BYTES = 1 << 30


class StoreBase:
    """One open index.db. Not thread-safe: give each thread its own Store.

    A writer's Store (the default) brings the schema up to date; a reader's
    (``reader=True``) never writes anything and refuses a schema it would have to migrate.
    """

    def __init__(self, path: Path, *, reader: bool = False):
        self.path = Path(path)
        self.read_only = False
        self.reader = reader
        # Documents whose labels this Store changed: an engine that keeps its own copy of
        # the labels (Milvus) refreshes them at its writer's next commit.
        self.relabelled: set[int] = set()
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
            try:
                # A writer puts the file in WAL mode (a write the first time); a reader only reads.
                conn.execute("SELECT count(*) FROM sqlite_master" if reader else "PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:  # a folder or file this user cannot write
                conn.close()
                conn = self._connect_read_only(exc)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            if reader:
                # A search reads a hundred chunk rows anywhere in the file: through a mapping
                # of it instead of a read() each (SciFact: a query's chunk-to-document
                # lookup 0.14 ms -> 0.08).
                conn.execute(f"PRAGMA mmap_size={READER_MAP_BYTES}")
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(
                f"{self.path} is not a searchctl index ({exc}); remove it or pick another --index"
            ) from exc
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        try:
            if reader:
                self._check_schema()
            else:
                self.migrate()
        except BaseException:
            conn.close()
            raise

    def _connect_read_only(self, why: sqlite3.OperationalError) -> sqlite3.Connection:
        """Open an index this user may read but not write: read-only, and when SQLite
        cannot set up WAL sharing without writing (no -shm file yet), as immutable, which
        is what a folder nobody here can write is. A WAL file with uncommitted-to-disk
        pages is never ignored that way."""
        uri = "file:" + urllib.parse.quote(str(self.path.resolve()))
        wal = self.path.with_name(self.path.name + "-wal")
        options = ["mode=ro"] + ([] if wal.exists() and wal.stat().st_size > 0 else ["immutable=1"])
        for option in options:
            try:
                conn = sqlite3.connect(f"{uri}?{option}", uri=True, isolation_level=None, check_same_thread=False)
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.OperationalError:
                continue
            self.read_only = True
            return conn
        raise sqlite3.OperationalError(f"cannot open it for reading ({why})")

    @classmethod
    def open(cls, index_dir: Path, *, create: bool = False, reader: bool = False) -> Self:
        index_dir = Path(index_dir)
        db_path = index_dir / DB_NAME
        if not db_path.exists():
            if not create:
                raise IndexNotFoundError(index_dir)
            index_dir.mkdir(parents=True, exist_ok=True)
        return cls(db_path, reader=reader)

    @property
    def source(self) -> str:
        """The index folder, as a reader shows where it reads from."""
        return str(self.path.parent.resolve())

    def close(self) -> None:
        self.conn.close()

    def copy_to(self, path: Path) -> None:
        """A consistent copy of the whole database in a new file ``path``."""
        with sqlite3.connect(path) as target:
            self.conn.backup(target)
        target.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions -------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[None]:
        """One atomic write transaction; rolled back on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def begin_read(self) -> None:
        """Start a read transaction that lasts until the connection closes: every read
        after it sees this one committed state (what a Searcher holds for its life)."""
        self.conn.execute("BEGIN")
        self.conn.execute("SELECT 1 FROM meta LIMIT 1").fetchone()  # BEGIN is deferred: take the snapshot now

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several reads that see one committed state."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    # -- schema -------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        if "meta" not in self.db.table_names():
            return 0
        return int(self._get_meta("schema_version") or 0)

    def _version_or_refuse(self) -> int:
        try:
            current = self.schema_version
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(
                f"{self.path} is not a searchctl index ({exc}); remove it or pick another --index"
            ) from exc
        if current > len(MIGRATIONS):
            raise IndexFormatError(
                f"{self.path} has schema v{current} but this searchctl reads up to v{len(MIGRATIONS)}; "
                "upgrade searchctl"
            )
        return current

    def _check_schema(self) -> None:
        current = self._version_or_refuse()
        if current == 0:
            raise IndexNotFoundError(self.path.parent)
        if current < len(MIGRATIONS):
            raise IndexFormatError(
                f"{self.path} has schema v{current} and needs an upgrade to v{len(MIGRATIONS)}; run "
                "`searchctl check --repair` (or any command that writes the index) once to upgrade it"
            )

    def migrate(self) -> int:
        """Apply pending migrations; returns how many ran. Safe to call any number of times."""
        current = self._version_or_refuse()
        if current < len(MIGRATIONS) and self.read_only:
            raise IndexFormatError(
                f"{self.path} has schema v{current} and needs an upgrade to v{len(MIGRATIONS)}, "
                "but this user cannot write it; open it once where it can be written"
            )
        ran = 0
        for version in range(current + 1, len(MIGRATIONS) + 1):
            with self.write():
                # Re-read inside the lock: another process may have migrated meanwhile.
                if self.schema_version >= version:
                    continue
                for statement in MIGRATIONS[version - 1]:
                    self.conn.execute(statement)
                self._set_meta("schema_version", str(version))
                if version == 1:
                    self._set_meta("generation", "0")
                    self._set_meta("created_at", now())
            ran += 1
        return ran

    # -- meta -----------------------------------------------------------------------

    def _get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def meta(self) -> IndexMeta:
        """What the index records about itself (see ``searchcore.meta``)."""
        return IndexMeta.from_rows(dict(self.conn.execute("SELECT key, value FROM meta").fetchall()))

    def _set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self.conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            return
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def update_meta(self, **changes: object) -> IndexMeta:
        """Inside ``write()``: record ``changes`` (IndexMeta field names; None forgets one);
        returns the meta as it now is."""
        updated, rows = self.meta().changed(**changes)
        for key, value in rows.items():
            self._set_meta(key, value)
        return updated

    @property
    def generation(self) -> int:
        return int(self._get_meta("generation") or 0)

    def bump_generation(self) -> int:
        """Inside ``write()``: mark the committed state as new."""
        generation = self.generation + 1
        self._set_meta("generation", str(generation))
        self._set_meta("updated_at", now())
        return generation

    def has_labels(self) -> bool:
        return self.conn.execute("SELECT 1 FROM labels LIMIT 1").fetchone() is not None

    def counts(self) -> dict[str, int]:
        return {
            table: int(self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("files", "documents", "chunks", "vectors")
        }
