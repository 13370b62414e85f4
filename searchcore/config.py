"""Settings shared by indexing and search, in one frozen dataclass passed explicitly.

Nothing deeper in the library reads the environment: the CLI (or a caller) builds a
``Config`` once and hands it down.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

__all__ = ["Config", "DEFAULT_INDEX_DIR", "DEFAULT_FAISS_FACTORY"]

DEFAULT_INDEX_DIR = Path(".searchctl")
# IDMap over an exact inner-product index: ids are chunk primary keys, and inner
# product on L2-normalised vectors is cosine similarity.
DEFAULT_FAISS_FACTORY = "IDMap,Flat"
DEFAULT_MAX_FILE_MB = 20.0


@dataclass(frozen=True)
class Config:
    index_dir: Path = DEFAULT_INDEX_DIR
    # None: the model the index was built with, or the default model for a new index.
    model: str | None = None
    # Chunk size in the model's own tokens; None: as large as the model accepts.
    chunk_tokens: int | None = None
    chunk_overlap: int = 32
    batch_size: int = 32
    faiss_factory: str = DEFAULT_FAISS_FACTORY
    # Vector search: "auto", "flat", "hnsw" or "ivf" (searchcore.ann); None: the index's own.
    ann: str | None = None
    # None: the index's own backend, or this machine's best for a new index.
    backend: str | None = None
    # Where models run: "auto" (a CUDA GPU when torch sees one), "cpu" or "cuda"
    # (searchcore.devices); queries always run on the CPU.
    device: str = "auto"
    # Where exported ONNX models are kept; None: ~/.cache/searchctl.
    cache_dir: Path | None = None
    # Larger files are skipped (with the reason in the summary), never read into memory.
    max_file_mb: float = DEFAULT_MAX_FILE_MB
    # How images and scanned PDF pages are read: an OCR engine (rapidocr, tesseract, none)
    # and an image-to-text model ("none": no captions). None: the index's own, else the default.
    ocr: str | None = None
    caption_model: str | None = None
    # Where chunks are searched: None (the index's own engine), "local" or "milvus"; for
    # Milvus, its URI and collection (None: the index's own) and a token (never recorded).
    engine: str | None = None
    milvus_uri: str | None = None
    collection: str | None = None
    milvus_token: str = ""

    def __post_init__(self) -> None:
        if self.chunk_tokens is not None and self.chunk_tokens < 8:
            raise UsageError(f"chunk size must be at least 8 tokens, not {self.chunk_tokens}")
        if self.chunk_overlap < 0:
            raise UsageError(f"chunk overlap must be 0 or more, not {self.chunk_overlap}")
        if self.chunk_tokens is not None and self.chunk_overlap >= self.chunk_tokens:
            raise UsageError(
                f"chunk overlap ({self.chunk_overlap}) must be smaller than the chunk size "
                f"({self.chunk_tokens}); lower --chunk-overlap"
            )
        if not self.max_file_mb > 0:
            raise UsageError(f"the largest file size must be above 0 MB, not {self.max_file_mb}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise UsageError(f"unknown device {self.device!r}; use auto, cpu or cuda")
        if self.batch_size < 1:
            raise UsageError(f"batch size must be at least 1, not {self.batch_size}")
