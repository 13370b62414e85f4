"""What a reader returns and raises: ``Document``, ``Reading`` and ``Skip``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["Document", "Reading", "Skip"]


@dataclass
class Document:
    key: str  # record id inside a JSON/JSONL file; "" for a whole file
    text: str
    title: str | None = None
    metadata: dict = field(default_factory=dict)


class Reading(NamedTuple):
    """What one file gave: its kind, its documents, and notes on what was read with a
    warning (bad bytes replaced, a bad JSONL line left out, an unreadable PDF page)."""

    kind: str
    documents: list[Document]
    notes: list[str]


class Skip(Exception):
    """The file cannot be indexed; ``str(skip)`` is the reason the run names it with."""
