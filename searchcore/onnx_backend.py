"""Sentence embeddings through ONNX Runtime: fp32, or int8 with dynamic quantisation.

Scope: sentence-transformers models made of a Transformer, a Pooling module (mean, CLS
or max) and optionally Normalize: the transformer is exported once with torch's ONNX
exporter (eager attention, which ONNX Runtime runs faster than the exported SDPA path),
rewritten with ONNX Runtime's fused transformer operators where they apply (checked
against the plain graph), quantised (dynamic, per-channel int8 weights: measured here,
per-tensor scales drop the cosine to the fp32 vectors from 0.995 to 0.937), and cached;
pooling and normalisation run in numpy. At run time only onnxruntime and the fast
tokenizer are loaded, not torch, so a query needs no torch import at all.

The cache key is the model's identity (name and revision fingerprint), the backend and
the onnxruntime version; a manifest records each file's SHA-256, and a file that no
longer matches (a crash mid-write, disk trouble) is exported again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import queue
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .errors import SearchctlError

__all__ = [
    "FastTokenizer",
    "OnnxEncoder",
    "OnnxUnsupported",
    "onnx_model_file",
    "onnxruntime_available",
    "pooling_config",
]

_OPSET = 17
# Bumped whenever the export itself changes, so cached files of an older export are redone.
_EXPORT_FORMAT = 3
# Sequences per ONNX Runtime call: the activations of a few x 256 tokens stay in cache.
_RUN_BATCH = 4
# Sessions that run the slices of a large batch side by side (at most one per core).
_MAX_BULK_WORKERS = 4
# ONNX Runtime graph rewrites left out of every session. SkipLayerNormFusion merges each
# residual Add into the following LayerNormalization; in onnxruntime 1.32 the merged
# kernel computes its statistics one element at a time and was measured 3x slower than
# the Add and LayerNormalization it replaces (24 tokens: 51 vs 17 us on one thread), a
# 10% share of a query's encode.
_DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]
# Weights quantised to int8: the matrix products. The embedding tables stay fp32: a
# lookup costs no arithmetic, so quantising it only adds error (SciFact nDCG@10 against
# torch fp32, hybrid test / train: -0.0050 / -0.0033 with int8 tables, -0.0007 / -0.0023
# without; same speed, a 58 MB file instead of 23 MB).
_QUANTISED_OPS = ["MatMul", "Attention"]


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _export(location: Path, target: Path, fuse: bool = True) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    # Eager attention exports as plain MatMul/Softmax; the SDPA path exports extra passes
    # over every attention map (NaN guards for fully masked rows) and was measured 1.3x
    # slower in int8 (39 vs 51 SciFact docs/s on two cores).
    try:
        model = AutoModel.from_pretrained(str(location), local_files_only=True, attn_implementation="eager")
    except (ValueError, TypeError):  # an architecture without an eager attention path
        model = AutoModel.from_pretrained(str(location), local_files_only=True)
    model = model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(location), local_files_only=True)
    sample = tokenizer(["a short text", "and a somewhat longer one for the shapes"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs))).last_hidden_state

    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "hidden"]}
    # The tracer warns about Python-level branches in the attention-mask code; the graph
    # is checked against torch on padded batches of several lengths in the tests.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Hidden(model),
            tuple(sample[n] for n in names),
            str(target),
            input_names=names,
            output_names=["hidden"],
            dynamic_axes=axes,
            opset_version=_OPSET,
            dynamo=False,
        )
    if not fuse:
        return
    check = tokenizer(
        ["a short text", "and a somewhat longer one, to check the padded rows of a batch", "three"],
        padding=True,
        return_tensors="np",
    )
    _fuse(target, model.config, {n: check[n].astype(np.int64) for n in names})


def _fuse(target: Path, config, check: dict[str, np.ndarray]) -> bool:
    """Rewrite ``target`` with ONNX Runtime's fused transformer operators, if they apply.

    Each layer's attention (a dozen MatMul, Reshape, Transpose, Softmax nodes and the
    mask arithmetic) becomes one Attention node, the embeddings one
    EmbedLayerNormalization and bias + GELU one BiasGelu: about 230 nodes become 60,
    and the int8 quantiser turns Attention into QAttention (one int8 product for Q, K
    and V). Measured on two cores, int8, one 24-token query: 1.50 -> 1.33 ms. The fused
    graph is kept only if every layer's attention fused and its hidden states match the
    plain graph's on a padded batch; otherwise (another architecture, another
    onnxruntime) the plain export stays. Returns whether it fused."""
    layers = getattr(config, "num_hidden_layers", 0)
    heads = getattr(config, "num_attention_heads", 0)
    hidden = getattr(config, "hidden_size", 0)
    if not (layers and heads and hidden):
        return False
    fused = target.with_name("fused-" + target.name)
    try:
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model

        options = FusionOptions("bert")
        options.enable_skip_layer_norm = False  # see _DISABLED_OPTIMIZERS
        with _quiet(), warnings.catch_warnings():  # it logs advice and what it could not fuse
            warnings.simplefilter("ignore")
            optimised = optimize_model(
                str(target),
                model_type="bert",
                num_heads=heads,
                hidden_size=hidden,
                optimization_options=options,
                opt_level=0,
            )
        if optimised.get_fused_operator_statistics().get("Attention", 0) != layers:
            return False
        optimised.save_model_to_file(str(fused))
        mask = check["attention_mask"][..., None] > 0
        plain, rewritten = (np.where(mask, _run_graph(path, check), 0.0) for path in (target, fused))
        if not np.allclose(plain, rewritten, atol=1e-4):
            return False
        os.replace(fused, target)
        return True
    except Exception:  # noqa: BLE001 - an optimiser that cannot handle this graph: keep the plain one
        return False
    finally:
        fused.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet():
    """Warnings logged by onnxruntime's Python tools (to loggers below the root) held back."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _new_session(model_file: Path, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(
        str(model_file), options, providers=["CPUExecutionProvider"], disabled_optimizers=_DISABLED_OPTIMIZERS
    )


def _run_graph(model_file: Path, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The first output of ``model_file`` for the named input arrays it takes."""
    session = _new_session(model_file, 1)
    return session.run(None, {i.name: arrays[i.name] for i in session.get_inputs()})[0]


def onnx_model_file(location: Path, name: str, revision: str, backend: str, cache_dir: Path) -> Path:
    """The cached ONNX file for ``backend`` ("onnx" or "onnx-int8"), exported on first use."""
    import onnxruntime

    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[-60:]
    folder = Path(cache_dir) / f"{slug}-{revision}-{backend}-ort{onnxruntime.__version__}-x{_EXPORT_FORMAT}"
    manifest = folder / "manifest.json"
    model_file = folder / "model.onnx"
    if manifest.exists() and model_file.exists():
        try:
            recorded = json.loads(manifest.read_text())
            if recorded.get("sha256") == _sha256(model_file):
                return model_file
        except (OSError, ValueError):
            pass
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
    except OSError as exc:
        raise SearchctlError(
            f"cannot write the model cache {folder.parent} ({exc.strerror or exc}); "
            "set SEARCHCTL_CACHE to a writable folder"
        ) from exc
    try:
        fp32 = work / "fp32.onnx"
        _export(Path(location), fp32)
        final = work / "model.onnx"
        if backend == "onnx-int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            with _quiet():  # quantize_dynamic logs advice at WARNING
                quantize_dynamic(
                    str(fp32),
                    str(final),
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                    op_types_to_quantize=_QUANTISED_OPS,
                    # The fused operators come from ONNX Runtime's own domain, which
                    # ONNX shape inference does not type: their outputs are float.
                    extra_options={"DefaultTensorType": 1},
                )
        else:
            fp32.rename(final)
        for extra in work.glob("fp32.onnx*"):
            extra.unlink()
        (work / "manifest.json").write_text(
            json.dumps({"model": name, "revision": revision, "backend": backend, "sha256": _sha256(final)})
        )
        shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(work, folder)
        except OSError:
            # Another process finished the same export first: use it if it is whole.
            if not (manifest.exists() and json.loads(manifest.read_text()).get("sha256") == _sha256(model_file)):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return model_file


class FastTokenizer:
    """The model's ``tokenizer.json`` run by the `tokenizers` library directly.

    transformers' AutoTokenizer imports torch, which costs a query about two seconds of
    start-up; this covers the calls searchctl makes: token offsets, token counts, and
    truncated ids for the encoder."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        path = Path(folder) / "tokenizer.json"
        pad_token = "[PAD]"
        config = Path(folder) / "tokenizer_config.json"
        if config.exists():
            pad = json.loads(config.read_text()).get("pad_token")
            pad_token = pad.get("content", pad_token) if isinstance(pad, dict) else pad or pad_token
        self._plain = Tokenizer.from_file(str(path))
        self._plain.no_truncation()
        self._plain.no_padding()
        self._truncating = Tokenizer.from_file(str(path))
        self._truncating.no_padding()
        self._limit: int | None = None
        pad_id = self._plain.token_to_id(pad_token)
        self.pad_token_id = pad_id if pad_id is not None else 0

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        processor = self._plain.post_processor
        return int(processor.num_special_tokens_to_add(pair)) if processor is not None else 0

    def __call__(self, texts, add_special_tokens=True, return_offsets_mapping=False, **_ignored) -> dict:
        encodings = self._plain.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        out = {"input_ids": [e.ids for e in encodings]}
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

    A single text or a small batch runs on one session with intra-op threads = physical
    cores (the lowest latency for a query). A larger batch is tokenised once, sorted by
    token count and cut into slices of at most ``_RUN_BATCH`` sequences, each padded only
    to its own longest; the slices run side by side on ``_bulk_workers()`` sessions of
    one thread each (data parallelism: for matrices this small it beats splitting each
    run over threads). Vectors come back in input order."""

    def __init__(self, model_file: Path, tokenizer, pooling: str, normalise: bool, max_tokens: int):
        self.model_file = Path(model_file)
        self.cores = _physical_cores()
        self.session = _new_session(self.model_file, self.cores)
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
                    self._idle.put(_new_session(self.model_file, self.cores // workers + (i < self.cores % workers)))
                self._bulk = ThreadPoolExecutor(workers, thread_name_prefix="searchctl-onnx")
            return self._bulk

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        if isinstance(self.tokenizer, FastTokenizer):
            return self.tokenizer.token_ids(texts, self.max_tokens)
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_tokens, verbose=False)
        return [list(ids) for ids in encoded["input_ids"]]

    def encode(
        self, texts: list[str], batch_size: int = _RUN_BATCH, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """(n, dim) pooled vectors, not normalised; at most ``batch_size`` sequences per run."""
        ids = self._token_ids(texts)
        size = max(1, min(batch_size, _RUN_BATCH))
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        slices = [order[start : start + size] for start in range(0, len(order), size)]
        if len(slices) > 1 and _bulk_workers(self.cores) > 1:
            runs = self._bulk_pool().map(self._run_on_worker, [[ids[i] for i in part] for part in slices])
        else:
            runs = (self._run(self.session, [ids[i] for i in part]) for part in slices)
        out: np.ndarray | None = None
        for part, vectors in zip(slices, runs):
            if out is None:
                out = np.empty((len(ids), vectors.shape[1]), dtype=np.float32)
            out[part] = vectors
            if progress is not None:
                progress(len(part))
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def _run_on_worker(self, sequences: list[list[int]]) -> np.ndarray:
        session = self._idle.get()
        try:
            return self._run(session, sequences)
        finally:
            self._idle.put(session)

    def _run(self, session, sequences: list[list[int]]) -> np.ndarray:
        longest = max(len(ids) for ids in sequences)
        input_ids = np.full((len(sequences), longest), self._pad_id, dtype=np.int64)
        attention = np.zeros((len(sequences), longest), dtype=np.int64)
        for row, ids in enumerate(sequences):
            input_ids[row, : len(ids)] = ids
            attention[row, : len(ids)] = 1
        arrays = {"input_ids": input_ids, "attention_mask": attention, "token_type_ids": np.zeros_like(input_ids)}
        hidden = session.run(None, {name: arrays[name] for name in self.inputs})[0]
        mask = attention[..., None].astype(np.float32)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "max":
            pooled = np.where(mask > 0, hidden, -1e9).max(axis=1)
        else:
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled.astype(np.float32)

    @functools.cached_property
    def _pad_id(self) -> int:
        pad = getattr(self.tokenizer, "pad_token_id", None)
        return int(pad) if pad is not None else 0
