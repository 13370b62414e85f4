"""searchcore: what the indexer, fine-tuning, the daemon and the CLI share.

It owns the index on disk (``store``: index.db and all of its SQL; ``meta``: what an
index records about itself, as ``IndexMeta``; ``vectors``: the FAISS index, and
``vector_files`` its file of each generation; ``keywords``: the tantivy keyword cache;
``lock``: the one writer), the seam every reader goes through (``snapshot``: one published
generation as ``Records`` and an ``Engine``, both declared in ``engine``; ``engines``
picks a writer's engine, the local one or ``milvus``, which alone imports pymilvus),
searching (``search``, with its vocabulary in ``options``; ``results``, the one shape of
an answer; ``answers``, the cited sentences of ``ask``; ``reading``, a file read back), the models that are applied
(``embedder``, the ONNX export and runtime, ``hashing``, ``classifier``, ``generator``,
``ocr``, ``captions``; ``models`` says which one an index uses), what an index is
(``info``), checking and compacting (``maintenance``) and evaluation (``evaluate``). It imports no
other package of the project. No click and no web framework here; torch, transformers
and faiss are imported inside the functions that need them, so importing searchcore is
cheap.
"""

from .answers import Answer, Quote, ask
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
from .options import Filters, SearchOptions
from .results import search_results
from .search import Hit, Searcher

__version__ = "0.1.0"

__all__ = [
    "Config",
    "DEFAULT_MODEL",
    "Embedder",
    "Filters",
    "Hit",
    "Searcher",
    "SearchOptions",
    "search_results",
    "ask",
    "Answer",
    "Quote",
    "SearchctlError",
    "UsageError",
    "IndexNotFoundError",
    "IndexFormatError",
    "ModelMismatchError",
    "ModelNotFoundError",
]
