"""Which model and backend an index uses: one policy for readers and writers.

An index records the model it was embedded with (``IndexMeta.model``) and the backend
(``IndexMeta.backend``). A new index takes the requested model (the default one otherwise)
and this machine's best backend; a writer may not mix backends in one index, a reader
may (vectors of one model agree to a cosine of about 0.99 across backends). Any model
but the index's own is refused, with a message naming both.

``make_embedder`` turns a recorded name into something that embeds: a ``hash:DIM`` name
is the hashing embedder (no model to load), anything else a sentence-transformers model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from .embedder import DEFAULT_MODEL, Embedder, canonical_model_name
from .errors import BackendMismatchError, ModelMismatchError, ModelNotFoundError, UsageError
from .hashing import HashingEmbedder, is_hashing_model
from .meta import IndexMeta
from .probe import default_backend

__all__ = ["TextEmbedder", "index_model", "index_backend", "make_embedder"]


class TextEmbedder(Protocol):
    """What the indexer and the searcher need of an embedder."""

    name: str
    backend: str

    @property
    def dim(self) -> int: ...
    @property
    def max_tokens(self) -> int: ...
    @property
    def special_tokens(self) -> int: ...
    @property
    def revision(self) -> str: ...
    def token_spans(self, text: str) -> np.ndarray: ...
    def count_tokens(self, texts: list[str]) -> list[int]: ...
    def embed(self, texts: list[str], batch_size: int = ..., progress=...) -> np.ndarray: ...


def make_embedder(model: str, backend: str, cache_dir: Path | None, device: str = "cpu") -> TextEmbedder:
    """An embedder for a recorded model name; ``device`` (cpu or cuda) applies to torch."""
    if is_hashing_model(model):
        return HashingEmbedder.from_name(model)
    if backend == "hash":  # an index written by an embedder handed in by a program, not named
        raise ModelNotFoundError(model, "the index was embedded by an embedder given in code, not by name")
    return Embedder(model, backend=backend, cache_dir=cache_dir, device=device if backend == "torch" else "cpu")


def index_model(meta: IndexMeta, requested: str | None) -> str:
    """The model to use with this index: its own, or ``requested`` if it is the same one."""
    recorded = meta.model
    if recorded is None:
        return canonical_model_name(requested) if requested else DEFAULT_MODEL
    if requested is not None and canonical_model_name(requested) != recorded:
        raise ModelMismatchError(recorded, canonical_model_name(requested))
    return recorded


def _new_index_backend(model: str | None, cache_dir: Path | None, measure: bool) -> tuple[str, str | None]:
    """A new index's backend: torch for a model the ONNX path does not run, else this
    machine's best for the model (measured once by a writer: ``searchcore.probe``)."""
    if model is None:
        return default_backend()
    from .embedder import model_location
    from .onnx_runtime import OnnxUnsupported, pooling_config

    try:
        pooling_config(Path(model_location(model)))
    except (OnnxUnsupported, OSError, ValueError, KeyError) as exc:
        reason = str(exc).split(";")[0] if isinstance(exc, OnnxUnsupported) else "no ONNX export for it"
        return "torch", f"{reason}; using the torch backend"
    return default_backend(model, cache_dir) if measure else default_backend()


def index_backend(
    meta: IndexMeta,
    requested: str | None,
    *,
    writing: bool,
    model: str | None = None,
    device: str = "cpu",
    cache_dir: Path | None = None,
) -> tuple[str, str | None]:
    """(backend, notice) for this index: the requested one, else the index's own, else this
    machine's default (torch where the run has a GPU: ``device`` is cuda). A writer may not
    mix backends in one index; a reader may (vectors of the same model agree to a cosine
    of about 0.99 across backends). The ONNX backends run on the CPU only."""
    if model is not None and is_hashing_model(model):
        return "hash", None
    recorded = meta.embedded_backend
    if requested is not None:
        if writing and recorded is not None and requested != recorded:
            raise BackendMismatchError(recorded, requested)
        chosen, notice = requested, None
    elif recorded is not None:
        chosen, notice = recorded, None
    elif device == "cuda":
        chosen, notice = "torch", None
    else:
        chosen, notice = _new_index_backend(model, cache_dir, measure=writing)
    if chosen != "torch":
        from .onnx_runtime import onnxruntime_available

        if not onnxruntime_available():
            if writing and recorded not in (None, "torch"):
                raise UsageError(
                    f"this index uses the {chosen} backend, which needs onnxruntime: pip install onnxruntime"
                )
            return (
                "torch",
                f"onnxruntime is not installed (pip install onnxruntime); using the torch backend, not {chosen}",
            )
    if device == "cuda" and chosen not in ("torch", "hash"):
        gpu = (
            f"the {chosen} backend embeds on the CPU, not the GPU (a new index: --backend torch; "
            "this one: `searchctl reindex --backend torch`)"
        )
        notice = gpu if notice is None else f"{notice}; {gpu}"
    return chosen, notice
