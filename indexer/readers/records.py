"""JSON and JSONL: one document per record.

A record is an object with ``_id`` or ``id`` (else its line or position), optional
``title`` and ``text``; every other field is kept as metadata (filterable with
``--where``). A BEIR ``corpus.jsonl`` indexes as it is. In JSONL a line that is not JSON,
not an object, or repeats an earlier id is left out with a note naming the line; the
rest of the file is indexed. A JSON file is one value, so invalid JSON skips the file.
"""

from __future__ import annotations

import json

from .errors import Document, Skip
from .text import decode_text

__all__ = ["read_json", "read_jsonl"]


def _record(obj: object, where: str, fallback_key: str) -> Document:
    if not isinstance(obj, dict):
        raise Skip(f"JSON record is not an object ({where})")
    raw_key = obj.get("_id", obj.get("id"))
    key = str(raw_key) if raw_key is not None and str(raw_key) != "" else fallback_key
    title = obj.get("title")
    text = obj.get("text")
    title = str(title).strip() if title not in (None, "") else None
    text = "" if text is None else (text if isinstance(text, str) else json.dumps(text, ensure_ascii=False))
    metadata = {k: v for k, v in obj.items() if k not in {"_id", "id", "title", "text"}}
    return Document(key, text, title=title, metadata=metadata)


def _lines_note(what: str, lines: list[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:5]) + (", ..." if len(lines) > 5 else "")
    return f"{len(lines)} line{'s' if len(lines) != 1 else ''} left out: {what} (line {shown})"


def read_jsonl(data: bytes, notes: list[str]) -> list[Document]:
    docs: list[Document] = []
    seen: set[str] = set()
    invalid: list[int] = []
    not_objects: list[int] = []
    duplicates: list[int] = []
    for lineno, line in enumerate(decode_text(data, notes).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            invalid.append(lineno)
            continue
        try:
            doc = _record(obj, f"line {lineno}", f"line-{lineno}")
        except Skip:
            not_objects.append(lineno)
            continue
        if doc.key in seen:
            duplicates.append(lineno)
            continue
        seen.add(doc.key)
        docs.append(doc)
    if not docs and (invalid or not_objects):
        first = min(invalid + not_objects)
        raise Skip(
            f"invalid JSON on line {first}" if first in invalid else f"JSON record is not an object (line {first})"
        )
    for what, lines in (("invalid JSON", invalid), ("not an object", not_objects), ("repeated id", duplicates)):
        if lines:
            notes.append(_lines_note(what, lines))
    return docs


def read_json(data: bytes, notes: list[str]) -> list[Document]:
    try:
        obj = json.loads(decode_text(data, notes))
    except json.JSONDecodeError as exc:
        raise Skip(f"invalid JSON on line {exc.lineno}") from exc
    items = obj if isinstance(obj, list) else [obj]
    docs = [_record(item, f"item {i}", f"item-{i}") for i, item in enumerate(items)]
    seen: set[str] = set()
    for doc in docs:
        if doc.key in seen:
            raise Skip(f"duplicate record id {doc.key!r}")
        seen.add(doc.key)
    return docs
