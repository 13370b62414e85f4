"""Sentence embeddings through ONNX Runtime: the run-time side.

Scope: sentence-transformers models made of a Transformer, a Pooling module (mean, CLS
or max) and optionally Normalize. The exported graph (``searchcore.onnx_export`` makes
and caches it) runs in ONNX Runtime sessions; pooling and normalisation run in numpy.
At run time only onnxruntime and the fast tokenizer are loaded, not torch, so a query
needs no torch import at all. Every sequence runs on its own, unpadded: the int8 graph
quantises its activations with one scale per run, so a sequence that shared a run with
others got a vector that depended on them (and on their padding). A large batch runs
side by side on one single-thread session per core; a query keeps one session with a
thread per core.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .errors import SearchctlError

__all__ = [
    "FastTokenizer",
    "OnnxEncoder",
    "OnnxUnsupported",
    "new_session",
    "onnxruntime_available",
    "pooling_config",
]

# Sessions that run the sequences of a large batch side by side (at most one per core).
_MAX_BULK_WORKERS = 4
# ONNX Runtime graph rewrites left out of every session. SkipLayerNormFusion merges each
# residual Add into the following LayerNormalization; in onnxruntime 1.32 the merged
# kernel computes its statistics one element at a time and was measured 3x slower than
# the Add and LayerNormalization it replaces (24 tokens: 51 vs 17 us on one thread), a
# 10% share of a query's encode.
_DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


class OnnxUnsupported(SearchctlError):
    """The model has modules the ONNX path does not run (e.g. a Dense layer)."""


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def pooling_config(location: Path) -> tuple[str, bool, int, int]:
    """(pooling mode, normalise?, dimension, max tokens) of a sentence-transformers folder."""
    location = Path(location)
    modules = json.loads((location / "modules.json").read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    unsupported = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
    if unsupported or "Pooling" not in kinds:
        raise OnnxUnsupported(
            f"the ONNX backends run Transformer + Pooling models; this one has {kinds}; use --backend torch"
        )
    pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
    config = json.loads((location / pooling_dir / "config.json").read_text())
    # Two layouts: sentence-transformers 2-5 (pooling_mode_mean_tokens: true, ...) and 6+
    # (pooling_mode: "mean").
    mode = config.get("pooling_mode")
    if mode is None:
        mode = (
            "cls"
            if config.get("pooling_mode_cls_token")
            else "max"
            if config.get("pooling_mode_max_tokens")
            else "mean"
        )
    if mode not in ("mean", "cls", "max"):
        raise OnnxUnsupported(f"the ONNX backends pool by mean, cls or max, not {mode!r}; use --backend torch")
    dim = config.get("word_embedding_dimension") or config.get("embedding_dimension")
    if not dim:
        dim = json.loads((location / "config.json").read_text())["hidden_size"]
    return mode, "Normalize" in kinds, int(dim), _max_tokens(location)


def _max_tokens(location: Path) -> int:
    """The input length sentence-transformers truncates at for this folder.

    Folders saved by sentence-transformers before 6 record it as ``max_seq_length`` in
    sentence_bert_config.json; from 6 on it is the tokenizer's ``model_max_length``,
    capped at the model's position embeddings (as its Transformer module reads it)."""
    sbert = location / "sentence_bert_config.json"
    if sbert.exists():
        recorded = json.loads(sbert.read_text()).get("max_seq_length")
        if recorded:
            return int(recorded)
    limits = []
    positions = json.loads((location / "config.json").read_text()).get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    tokenizer_config = location / "tokenizer_config.json"
    if tokenizer_config.exists():
        length = json.loads(tokenizer_config.read_text()).get("model_max_length")
        if isinstance(length, (int, float)) and 0 < length < 1_000_000:  # unset reads as 1e30
            limits.append(int(length))
    return min(limits) if limits else 512


def new_session(model_file: Path, threads: int, profile_prefix: str | None = None):
    """An ONNX Runtime session on the CPU as every encoder runs (with ``profile_prefix``,
    recording each operator's time: ``bench/encoder_ops.py``)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(
        str(model_file), options, providers=["CPUExecutionProvider"], disabled_optimizers=_DISABLED_OPTIMIZERS
    )


class FastTokenizer:
    """The model's ``tokenizer.json`` run by the `tokenizers` library directly.

    transformers' AutoTokenizer imports torch, which costs a query about two seconds of
    start-up; this covers the calls searchctl makes: token offsets, token counts, and
    truncated ids for the encoder."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        path = Path(folder) / "tokenizer.json"
        self._plain = Tokenizer.from_file(str(path))
        self._plain.no_truncation()
        self._plain.no_padding()
        self._truncating = Tokenizer.from_file(str(path))
        self._truncating.no_padding()
        self._limit: int | None = None

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        processor = self._plain.post_processor
        return int(processor.num_special_tokens_to_add(pair)) if processor is not None else 0

    def __call__(self, texts, add_special_tokens=True, return_offsets_mapping=False, **_ignored) -> dict:
        encodings = self._plain.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        out: dict[str, list] = {"input_ids": [e.ids for e in encodings]}
        if return_offsets_mapping:
            out["offset_mapping"] = [e.offsets for e in encodings]
        return out

    def token_ids(self, texts: list[str], max_length: int) -> list[list[int]]:
        """Each text's ids, special tokens included, truncated to ``max_length``; unpadded."""
        if self._limit != max_length:
            self._truncating.enable_truncation(max_length)
            self._limit = max_length
        return [e.ids for e in self._truncating.encode_batch(list(texts))]


def _bulk_workers(cores: int) -> int:
    return max(1, min(cores, _MAX_BULK_WORKERS))


def _physical_cores() -> int:
    try:
        siblings = set()
        for cpu in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology/thread_siblings_list"):
            siblings.add(cpu.read_text().strip())
        cores = len(siblings)
    except OSError:
        cores = 0
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores or available, available))


class OnnxEncoder:
    """ONNX Runtime sessions for one model, created on first use.

    A single text runs on one session with intra-op threads = physical cores (the lowest
    latency for a query). A batch is tokenised once, sorted by token count (longest
    first, so the workers finish together) and each sequence runs alone, side by side on
    ``_bulk_workers()`` sessions of one thread each (data parallelism: for matrices this
    small it beats splitting each run over threads). Vectors come back in input order."""

    def __init__(self, model_file: Path, tokenizer, pooling: str, normalise: bool, max_tokens: int):
        self.model_file = Path(model_file)
        self.cores = _physical_cores()
        self.session = new_session(self.model_file, self.cores)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalise = normalise
        self.max_tokens = max_tokens
        self._bulk_lock = threading.Lock()
        self._bulk: ThreadPoolExecutor | None = None
        self._idle: queue.SimpleQueue = queue.SimpleQueue()

    def _bulk_pool(self) -> ThreadPoolExecutor:
        with self._bulk_lock:
            if self._bulk is None:
                workers = _bulk_workers(self.cores)
                for i in range(workers):  # the cores shared out: 6 cores, 4 workers -> 2, 2, 1, 1
                    self._idle.put(new_session(self.model_file, self.cores // workers + (i < self.cores % workers)))
                self._bulk = ThreadPoolExecutor(workers, thread_name_prefix="searchctl-onnx")
            return self._bulk

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        if isinstance(self.tokenizer, FastTokenizer):
            return self.tokenizer.token_ids(texts, self.max_tokens)
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_tokens, verbose=False)
        return [list(ids) for ids in encoded["input_ids"]]

    def encode(
        self, texts: list[str], batch_size: int = 1, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """(n, dim) pooled vectors, not normalised. Each sequence runs alone, whatever
        ``batch_size`` (kept for the embedders' common signature)."""
        ids = self._token_ids(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        if len(order) > 1 and _bulk_workers(self.cores) > 1:
            runs = self._bulk_pool().map(self._run_on_worker, [ids[i] for i in order])
        else:
            runs = (self._run(self.session, ids[i]) for i in order)
        out: np.ndarray | None = None
        for i, vector in zip(order, runs):
            if out is None:
                out = np.empty((len(ids), vector.shape[0]), dtype=np.float32)
            out[i] = vector
            if progress is not None:
                progress(1)
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def _run_on_worker(self, ids: list[int]) -> np.ndarray:
        session = self._idle.get()
        try:
            return self._run(session, ids)
        finally:
            self._idle.put(session)

    def _run(self, session, ids: list[int]) -> np.ndarray:
        """The pooled vector of one sequence, run alone and unpadded.

        One sequence per ONNX Runtime call: a vector is then a function of its text alone
        (int8 scales its activations per run), nothing is padded, and the fused graph needs
        no mask (the export drops it). Measured on 1,000 SciFact abstracts (AVX-512 VNNI, 2
        cores): int8 72 docs/s alone against 67 in runs of 4, whose vectors differed from
        the lone ones down to a cosine of 0.992; fp32 the same speed."""
        input_ids = np.array([ids], dtype=np.int64)
        arrays = {
            "input_ids": input_ids,
            "attention_mask": np.ones_like(input_ids),
            "token_type_ids": np.zeros_like(input_ids),
        }
        hidden = session.run(None, {name: arrays[name] for name in self.inputs})[0][0]
        if self.pooling == "cls":
            return hidden[0].astype(np.float32)
        if self.pooling == "max":
            return hidden.max(axis=0).astype(np.float32)
        return (hidden.sum(axis=0) / np.float32(len(ids))).astype(np.float32)
