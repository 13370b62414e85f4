"""searchcore: what the indexer, fine-tuning, the daemon and the CLI share.

It owns the index on disk (``store``: index.db and all of its SQL; ``vectors``: the FAISS
file; ``lock``: the one writer), the engine seam (``engine``; ``engines`` picks the local
one or ``milvus``, which alone imports pymilvus), searching (``search``, with
its vocabulary in ``options``), the models that are applied (``embedder``, the ONNX
export and runtime, ``hashing``, ``classifier``; ``models`` says which one an index uses),
checking and compacting (``maintenance``) and evaluation (``evaluate``). It imports no
other package of the project. No click and no web framework here; torch, transformers
and faiss are imported inside the functions that need them, so importing searchcore is
cheap.
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
