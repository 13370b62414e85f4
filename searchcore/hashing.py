"""The hashing embedder: ``hash:DIM`` as a model name, for plumbing and tests.

A bag of hashed words becomes a unit vector of DIM dimensions: the same text gives the
same vector on every machine (SHA-256 of each word, not Python's salted ``hash()``), and
texts that share words score higher. It loads nothing, so an index, a daemon or a test
that only exercises the plumbing (chunking, commits, HTTP, filters) starts in
milliseconds. It knows nothing of meaning: use a real model for real collections.

One token per word or punctuation mark; ``max_tokens`` is what a chunk may hold.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import numpy as np

from .errors import UsageError

__all__ = ["HashingEmbedder", "HASH_PREFIX", "is_hashing_model", "parse_hashing_model"]

HASH_PREFIX = "hash:"
_WORD = re.compile(r"\w+|[^\w\s]")
# Chunks as long as the default model's, so plumbing tests chunk as real runs do.
DEFAULT_MAX_TOKENS = 256


def is_hashing_model(name: str | None) -> bool:
    return bool(name) and str(name).startswith(HASH_PREFIX)


def parse_hashing_model(name: str) -> int:
    """The dimension of ``hash:DIM``."""
    value = name[len(HASH_PREFIX) :]
    if not value.isdigit() or not 2 <= int(value) <= 4096:
        raise UsageError(f"a hashing model is hash:DIM with DIM from 2 to 4096, not {name!r}")
    return int(value)


class HashingEmbedder:
    """``embed(texts)`` -> (n, dim) float32 unit rows from hashed words."""

    backend = "hash"
    loaded = True

    def __init__(self, dim: int = 64, max_tokens: int = DEFAULT_MAX_TOKENS, name: str | None = None):
        self.name = name or f"{HASH_PREFIX}{dim}"
        self.dim = dim
        self.max_tokens = max_tokens
        self.special_tokens = 2
        self.revision = "hash-1"

    @classmethod
    def from_name(cls, name: str) -> HashingEmbedder:
        return cls(parse_hashing_model(name), name=name)

    def token_spans(self, text: str) -> np.ndarray:
        spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        return np.asarray(spans, dtype=np.int64).reshape(-1, 2)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(t)) + self.special_tokens for t in texts]

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1
        if progress:
            progress(len(texts))
        return out / norms

    def __repr__(self) -> str:
        return f"HashingEmbedder({self.name!r})"
