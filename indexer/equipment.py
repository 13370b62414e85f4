"""What a run writes with: the embedder (recording the model and backend in a new index)
and how it reads images (OCR engine and caption model, recorded so later runs keep them)."""

from __future__ import annotations

import json

from searchcore.config import Config
from searchcore.devices import onnx_cuda_available, resolve_device
from searchcore.errors import UsageError
from searchcore.models import TextEmbedder, index_backend, index_model, make_embedder
from searchcore.store import Store

from .readers import Vision

__all__ = ["embedder_for", "vision_for"]


def embedder_for(store: Store, config: Config, embedder: TextEmbedder | None) -> tuple[TextEmbedder, str | None]:
    """The embedder this run writes with, recording model and backend in a new index."""
    meta = store.meta()
    model = index_model(meta, config.model or (embedder.name if embedder else None))
    notice = None
    if embedder is None:
        device = resolve_device(config.device)
        backend, notice = index_backend(
            meta, config.backend, writing=True, model=model, device=device, cache_dir=config.cache_dir
        )
        embedder = make_embedder(model, backend, config.cache_dir, device)
    if meta.model is None:
        with store.write():
            store.update_meta(model=model, faiss_factory=config.faiss_factory, backend=embedder.backend)
    return embedder, notice


def vision_for(store: Store, config: Config) -> tuple[Vision, bool]:
    """How this run reads images, recorded in the index (later runs keep it unless told
    otherwise), and whether that changed since the last run (images are then read again)."""
    from searchcore.captions import Captioner
    from searchcore.embedder import default_cache_dir
    from searchcore.ocr import DEFAULT_OCR, OCR_ENGINES, make_ocr
    from searchcore.ocr_int8 import Int8Models, int8_models
    from searchcore.ocr_pool import OcrPool, pool_workers

    meta = store.meta()
    ocr = config.ocr or meta.ocr or DEFAULT_OCR
    if ocr not in OCR_ENGINES:
        raise UsageError(f"unknown OCR engine {ocr!r}; use one of {', '.join(OCR_ENGINES)}")
    caption = config.caption_model or meta.caption_model or "none"
    device = resolve_device(config.device)
    # A model named on this run is loaded now, so a wrong name fails before any work.
    given = Captioner(caption, device) if config.caption_model not in (None, "none") else None
    setting = json.dumps([ocr, caption])
    recorded = meta.image_reading
    if recorded != setting:
        with store.write():
            store.update_meta(ocr=ocr, caption_model=caption, image_reading=setting)
    # PP-OCR on the GPU reads the pages in this process, one at a time: the GPU is the
    # parallelism, and worker processes would each hold a copy of the models on it.
    gpu_ocr = device == "cuda" and ocr == "rapidocr" and onnx_cuda_available()
    workers = 0 if gpu_ocr else pool_workers()
    cache = config.cache_dir or default_cache_dir()

    def int8() -> Int8Models | None:  # PP-OCR's int8 models on the CPU, made on first need
        return None if gpu_ocr or ocr != "rapidocr" else int8_models(cache)

    vision = Vision(
        make_ocr=None if ocr == "none" else lambda: make_ocr(ocr, cuda=gpu_ocr, int8=int8()),
        make_captioner=None if caption == "none" else lambda: given or Captioner(caption, device),
        make_pool=None if ocr == "none" or not workers else lambda: OcrPool(ocr, workers, int8),
    )
    return vision, recorded is not None and recorded != setting
