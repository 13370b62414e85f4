"""Exporting a sentence-transformers model to ONNX, once, into the model cache.

The transformer is exported with torch's ONNX exporter (eager attention, which ONNX
Runtime runs faster than the exported SDPA path), rewritten with ONNX Runtime's fused
transformer operators where they apply (checked against the plain graph), quantised for
``onnx-int8`` (dynamic, per-channel int8 weights: measured here, per-tensor scales drop
the cosine to the fp32 vectors from 0.995 to 0.937), and cached.

The cache key is the model's identity (name and revision fingerprint), the backend and
the onnxruntime version; a manifest records each file's SHA-256, and a file that no
longer matches (a crash mid-write, disk trouble) is exported again.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np

from .model_cache import new_cache_folder, quiet_tools, sha256_file
from .onnx_runtime import new_session

__all__ = ["onnx_model_file"]

_OPSET = 17
# Bumped whenever the export itself changes, so cached files of an older export are redone.
_EXPORT_FORMAT = 4
# Weights quantised to int8: the matrix products. The embedding tables stay fp32: a
# lookup costs no arithmetic, so quantising it only adds error (SciFact nDCG@10 against
# torch fp32, hybrid test / train: -0.0050 / -0.0033 with int8 tables, -0.0007 / -0.0023
# without; same speed, a 58 MB file instead of 23 MB).
_QUANTISED_OPS = ["MatMul", "Attention"]


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
    mask arithmetic) becomes one Attention node (its padding mask then dropped: a run
    holds one sequence) and the embeddings one EmbedLayerNormalization: about 230 nodes
    become 75, and the int8 quantiser turns Attention into QAttention (one int8 product
    for Q, K and V). Measured on two cores, int8, one 24-token query: 1.50 -> 1.33 ms. The fused
    graph is kept only if every layer's attention fused, its hidden states match the
    plain graph's on a padded batch, and, its masks dropped, on each sequence alone;
    otherwise (another architecture, another onnxruntime) the plain export stays.
    Returns whether it fused."""
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
        # Bias + GELU stay apart: ONNX Runtime then adds the bias inside the int8 product
        # before it and runs GELU alone, where its BiasGelu kernel took 313 us a layer for
        # 200 tokens against 202 (int8, one thread, bench/encoder_ops.py; the same bits).
        options.enable_bias_gelu = False
        with quiet_tools(), warnings.catch_warnings():  # it logs advice and what it could not fuse
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
        _drop_attention_masks(fused)
        for row, length in enumerate(check["attention_mask"].sum(axis=1)):  # as runs hold them: one, unpadded
            alone = {name: array[row : row + 1, :length] for name, array in check.items()}
            if not np.allclose(_run_graph(target, alone), _run_graph(fused, alone), atol=1e-4):
                return False
        os.replace(fused, target)
        return True
    except Exception:  # noqa: BLE001 - an optimiser that cannot handle this graph: keep the plain one
        return False
    finally:
        fused.unlink(missing_ok=True)


def _drop_attention_masks(model_file: Path) -> None:
    """Take the padding mask off each fused attention of ``model_file``.

    Every run holds one sequence, unpadded (see ``onnx_runtime``), so its mask is all
    ones; given one anyway, ONNX Runtime builds a mask of zeros and adds it to every
    attention map of every head (QAttention for 200 tokens, int8, one thread,
    bench/encoder_ops.py: 1,077 -> 946 us a layer, the same bits). The graph then suits
    one unpadded sequence a run only."""
    import onnx

    model = onnx.load(str(model_file))
    for node in model.graph.node:
        if node.op_type == "Attention" and len(node.input) == 4:  # input, weights, bias, mask
            del node.input[3]
    onnx.save(model, str(model_file))


def _run_graph(model_file: Path, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The first output of ``model_file`` for the named input arrays it takes."""
    session = new_session(model_file, 1)
    return session.run(None, {i.name: arrays[i.name] for i in session.get_inputs()})[0]


def onnx_model_file(location: Path, name: str, revision: str, backend: str, cache_dir: Path) -> Path:
    """The cached ONNX file for ``backend`` ("onnx" or "onnx-int8"), exported on first use."""
    import onnxruntime

    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[-60:]
    folder = Path(cache_dir) / f"{slug}-{revision}-{backend}-ort{onnxruntime.__version__}-x{_EXPORT_FORMAT}"
    manifest = folder / "manifest.json"
    model_file = folder / "model.onnx"

    def whole() -> bool:
        try:
            return json.loads(manifest.read_text()).get("sha256") == sha256_file(model_file)
        except (OSError, ValueError):
            return False

    if model_file.exists() and whole():
        return model_file
    with new_cache_folder(folder, whole) as work:
        fp32 = work / "fp32.onnx"
        _export(Path(location), fp32)
        final = work / "model.onnx"
        if backend == "onnx-int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            with quiet_tools():  # quantize_dynamic logs advice at WARNING
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
            json.dumps({"model": name, "revision": revision, "backend": backend, "sha256": sha256_file(final)})
        )
    return model_file
