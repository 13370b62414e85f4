"""Which ONNX encoder a new index gets on this machine: measured once, then remembered.

CPU flags say which instructions exist, not how fast a graph runs on them: int8 matrix
products are 2-3x faster than fp32 where the CPU has int8 dot products (AVX-512 VNNI,
AVX-VNNI, Arm's dot-product extension), less on plain AVX2, and can be slower than fp32
on a CPU without them. So the first new index on a machine times both graphs of its
model on the same probe texts, one single-thread session per core as indexing runs them,
and keeps int8 only where it is at least ``_INT8_MARGIN`` faster: fp32 gives exactly the
torch model's vectors, which is worth a little speed.

The choice, with the figures behind it, is kept in the model cache (``probe-*.json``),
keyed by the CPU's name and int8-relevant flags, its cores, the onnxruntime version and
the model: a different machine, an upgraded onnxruntime or another model is measured
again. A probe that cannot run (the export fails) falls back to the CPU flags' answer.

Measured on the 2-core AVX-512 VNNI machine of the README (all-MiniLM-L6-v2, the probe
below): int8 14,658 tokens/s, fp32 7,207. Static int8 (activations scaled by a
calibration pass instead of per run) was measured too and is not a candidate: on the
same machine it encoded 400 SciFact abstracts at 63-66 docs/s against 70-74 for dynamic
int8, with a mean cosine of 0.94 to the fp32 vectors against 0.995 (``bench/embed.py
--backends static-int8``).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path

__all__ = ["default_backend", "probe_backend", "probe_file", "cpu_signature"]

# int8 is kept only where it encodes at least this much faster than fp32.
_INT8_MARGIN = 1.15
# Flags that change how fast int8 or fp32 products run.
_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "asimddp", "i8mm", "sve")
# A probe text: varied English prose, cut into sequences of about chunk length.
_PROSE = (
    "The lighthouse keeper climbed the spiral stairs each evening to trim the wick and wind the clockwork "
    "that turned the great lens. Ships passing the headland in autumn storms relied on its beam, and the "
    "harbour office kept a ledger of every vessel that signalled its thanks. In the spring the keeper's "
    "daughter catalogued the seabirds nesting on the cliffs, noting puffins, guillemots and razorbills, "
    "and sent her counts to the natural history society in the city, whose journal printed them each year. "
)


def cpu_signature() -> str:
    """The CPU's name, its int8-relevant flags and cores: what the probe's answer depends on."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            name = value.strip()
        elif key.strip() in ("flags", "Features"):
            flags.update(value.split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    present = "+".join(flag for flag in _FLAGS if flag in flags)
    return f"{name} [{platform.machine()}; {present or 'no int8 flags read'}; {cores} cores]"


def probe_file(cache_dir: Path, name: str, revision: str) -> Path:
    import onnxruntime

    key = f"{cpu_signature()}|{onnxruntime.__version__}|{name}|{revision}"
    return Path(cache_dir) / f"probe-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def _tokens_per_second(encoder, texts: list[str], tokens: int, rounds: int = 3) -> float:
    encoder.encode(texts[:4])  # sessions made and warm, outside the timing
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        encoder.encode(texts)
        best = min(best, time.perf_counter() - started)
    return tokens / best


def probe_backend(location: Path, name: str, revision: str, cache_dir: Path) -> dict:
    """The remembered choice for this machine and model, measured now if there is none:
    ``{"backend": "onnx-int8" | "onnx", "tokens_per_second": {...}, "cpu": ..., ...}``."""
    from .model_cache import atomic_write_text
    from .onnx_export import onnx_model_file
    from .onnx_runtime import FastTokenizer, OnnxEncoder, pooling_config

    target = probe_file(cache_dir, name, revision)
    try:
        recorded = json.loads(target.read_text())
        if recorded.get("backend") in ("onnx-int8", "onnx"):
            return recorded
    except (OSError, ValueError):
        pass
    pooling, normalise, _, max_tokens = pooling_config(Path(location))
    tokenizer = FastTokenizer(Path(location))
    words = (_PROSE * 8).split()
    texts = [" ".join(words[i : i + 150]) for i in range(0, 16 * 37, 37)]  # 16 overlapping ~200-token texts
    tokens = sum(len(ids) for ids in tokenizer.token_ids(texts, max_tokens))
    speeds = {}
    for backend in ("onnx-int8", "onnx"):
        model_file = onnx_model_file(Path(location), name, revision, backend, cache_dir)
        encoder = OnnxEncoder(model_file, tokenizer, pooling, normalise, max_tokens)
        speeds[backend] = round(_tokens_per_second(encoder, texts, tokens))
    chosen = "onnx-int8" if speeds["onnx-int8"] >= _INT8_MARGIN * speeds["onnx"] else "onnx"
    report = {"backend": chosen, "tokens_per_second": speeds, "cpu": cpu_signature(), "model": name}
    atomic_write_text(target, json.dumps(report, indent=2))
    return report


def default_backend(model: str | None = None, cache_dir: Path | None = None) -> tuple[str, str | None]:
    """(backend, notice) for a new index of ``model`` on this machine: an ONNX encoder where
    onnxruntime is installed, int8 or fp32 as measured here (``searchcore.probe``, once per
    machine and model); by the CPU flags alone for no model; torch without onnxruntime."""
    from .embedder import _fingerprint, canonical_model_name, default_cache_dir, model_location
    from .onnx_runtime import onnxruntime_available

    if not onnxruntime_available():
        return "torch", "onnxruntime is not installed (pip install onnxruntime); using the torch backend"
    by_flags = _backend_by_flags()
    if model is None:
        return by_flags
    try:
        canonical = canonical_model_name(model)
        location = model_location(canonical)
        report = probe_backend(Path(location), canonical, _fingerprint(location), cache_dir or default_cache_dir())
    except Exception:  # noqa: BLE001 - a model the probe cannot export or time: the flags' answer
        return by_flags
    if report["backend"] == "onnx-int8":
        return "onnx-int8", None
    speeds = report["tokens_per_second"]
    return "onnx", (
        f"int8 encoded {speeds['onnx-int8']:,} tokens/s against fp32's {speeds['onnx']:,} on this CPU; "
        "using the onnx backend (fp32)"
    )


def _backend_by_flags() -> tuple[str, str | None]:
    """onnx-int8 where the CPU has fast int8 arithmetic (x86-64 with AVX2, or arm64), else torch."""
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return "onnx-int8", None
    if machine in ("x86_64", "amd64"):
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return "onnx-int8", None  # not Linux: every x86-64 Mac or PC of the last decade has AVX2
        if " avx2" in flags:
            return "onnx-int8", None
    return "torch", f"this CPU ({machine}) lacks fast int8 instructions; using the torch backend"
