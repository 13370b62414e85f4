"""Reading an index's files back: what an assistant asks for after a search.

``read_file`` gives the text of one indexed file (or one record of a JSON/JSONL file), a
range of its lines, exactly as it was indexed: the chunks' text put back together, so the
lines a hit names are the lines read here whatever the file's format (a PDF's text layer,
a document's paragraphs). Only files the index holds can be read, named relative to the
indexed folder as a hit's ``handle`` names them; a path that could leave that folder
(``..``, a leading ``/``) or any file the index does not hold is refused, as ``GET
/files`` refuses it. ``file_list`` lists the indexed files under a prefix. Neither writes
anything.
"""

from __future__ import annotations

from collections.abc import Sequence

from .engine import Records
from .errors import UsageError
from .places import Places
from .store import ChunkRecord

__all__ = ["MAX_READ_LINES", "MAX_READ_CHARS", "MAX_LISTED", "read_file", "file_list", "document_text"]

# The most one read gives back; a longer range says where the next read starts.
MAX_READ_LINES = 400
MAX_READ_CHARS = 40_000
# The most files one listing names.
MAX_LISTED = 1_000


def document_text(chunks: Sequence[ChunkRecord]) -> str:
    """One document's text from its chunks (in document order): overlaps taken once, and
    each gap between two chunks (the blank lines a chunk does not hold) filled with as many
    line breaks as keep every chunk on its own line numbers."""
    parts: list[str] = []
    cursor, line = 0, 1  # characters and line of the text put together so far
    for chunk in sorted(chunks, key=lambda c: (c.char_start, c.chunk_id)):
        if chunk.char_end <= cursor:
            continue
        if chunk.char_start >= cursor:
            if parts or chunk.line_start > 1:
                gap = "\n" * max(chunk.line_start - line, 0) or " "
                parts.append(gap)
                line += gap.count("\n")
            piece = chunk.text
        else:  # overlapping the last chunk: only what follows it
            piece = chunk.text[cursor - chunk.char_start :]
        parts.append(piece)
        line += piece.count("\n")
        cursor = chunk.char_end
    return "".join(parts)


def _not_held(relpath: str) -> UsageError:
    return UsageError(
        f"{relpath[:200]!r} is not a file of this index; only indexed files can be read "
        "(`files` lists them; `searchctl files --skipped` the ones passed over and why)"
    )


def read_file(records: Records, places: Places, handle: str, start_line: int = 1, end_line: int | None = None) -> dict:
    """Lines ``start_line``..``end_line`` (1-based, inclusive; the end by default) of the
    indexed file or record ``handle`` names (a hit's ``handle``: a path relative to the
    indexed folder, ``#KEY`` for one record). At most MAX_READ_LINES lines and
    MAX_READ_CHARS characters come back; ``more`` says whether the document goes on."""
    if start_line < 1:
        raise UsageError(f"start_line must be 1 or more, not {start_line}")
    if end_line is not None and end_line < start_line:
        raise UsageError(f"end_line ({end_line}) is before start_line ({start_line})")
    relpath, key = handle, ""
    chunks = records.file_chunks(places.absolute(handle)) if handle else []
    cut = handle.find("#")
    while not chunks and cut > 0:  # PATH#KEY: one record (a key may hold "#": message#attachment)
        relpath, key = handle[:cut], handle[cut + 1 :]
        chunks = records.file_chunks(places.absolute(relpath))
        cut = handle.find("#", cut + 1)
    if not chunks:
        raise _not_held(handle)
    documents: dict[int, list[ChunkRecord]] = {}
    for chunk in chunks:
        documents.setdefault(chunk.doc_id, []).append(chunk)
    if key:
        chosen = [doc for doc in documents.values() if doc[0].key == key]
        if not chosen:
            raise UsageError(f"{relpath[:200]!r} holds no record {key[:200]!r}")
        document = chosen[0]
    elif len(documents) > 1 and any(doc[0].key == "" for doc in documents.values()):
        document = next(doc for doc in documents.values() if doc[0].key == "")  # the file itself (a message)
    elif len(documents) > 1:
        keys = [doc[0].key for doc in documents.values()][:3]
        raise UsageError(
            f"{relpath[:200]!r} holds {len(documents)} records; read one as PATH#KEY, e.g. {relpath[:200]}#{keys[0]}"
        )
    else:
        document = next(iter(documents.values()))
    lines = document_text(document).split("\n")
    first = min(start_line, len(lines) + 1)
    last = min(end_line or len(lines), len(lines), first + MAX_READ_LINES - 1)
    taken: list[str] = []
    size = 0
    for text in lines[first - 1 : last]:
        if taken and size + len(text) + 1 > MAX_READ_CHARS:
            break
        taken.append(text[:MAX_READ_CHARS])
        size += len(text) + 1
    last = first + len(taken) - 1
    head = document[0]
    return {
        "path": head.path,
        "relpath": places.shown(head.path),
        "handle": handle if not key else f"{relpath}#{key}",
        "key": head.key,
        "title": head.title,
        "kind": head.kind,
        "lines": [first, max(last, first - 1)],
        "total_lines": len(lines),
        "more": last < len(lines),
        "text": "\n".join(taken),
    }


def file_list(records: Records, places: Places, prefix: str = "") -> dict:
    """The indexed files whose path relative to the indexed folder starts with ``prefix``:
    each one's relpath, kind, documents and title (of its first document), by path; at
    most MAX_LISTED of them (``more`` says when there are others)."""
    files: dict[str, dict] = {}
    for doc in records.document_list():
        shown = places.shown(doc.path)
        if not shown.startswith(prefix):
            continue
        entry = files.setdefault(shown, {"relpath": shown, "path": doc.path, "kind": doc.kind, "documents": 0})
        entry["documents"] += 1
        entry.setdefault("title", doc.title)
    ordered = [files[name] for name in sorted(files)]
    return {"prefix": prefix, "files": ordered[:MAX_LISTED], "total": len(ordered), "more": len(ordered) > MAX_LISTED}
