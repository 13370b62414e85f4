"""searchcore: what the indexer, the daemon and the CLI share.

No click and no web framework here; torch, transformers and faiss are imported inside
the functions that need them, so importing searchcore is cheap.
"""

from .config import Config
from .embedder import DEFAULT_MODEL, Embedder
from .errors import (
    IndexFormatError,
    IndexNotFoundError,
    ModelMismatchError,
    ModelNotFoundError,
    SearchctlError,
    UsageError,
)
from .search import Hit, Searcher

__version__ = "0.1.0"

__all__ = [
    "Config",
    "DEFAULT_MODEL",
    "Embedder",
    "Hit",
    "Searcher",
    "SearchctlError",
    "UsageError",
    "IndexNotFoundError",
    "IndexFormatError",
    "ModelMismatchError",
    "ModelNotFoundError",
]
