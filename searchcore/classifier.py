"""Applying a trained text classifier: load its folder, predict labels.

Training lives in ``finetune.classifier``; this side is what the indexer (labels as
filters), the CLI (``searchctl classify``) and anything else that only *uses* a
classifier need, so none of them imports the training code.

Two methods share one folder format. ``full``: a transformers sequence-classification
model (``transformers.pipeline("text-classification", model=DIR)`` loads it too).
``head``: logistic-regression weights over the sentence vectors of a named embedder, so a
head is never applied to vectors of another model. Both carry
``searchctl-classifier.json`` (method, labels, base model, metrics, an id that changes with
every training run); a folder without it that holds a transformers
sequence-classification model is accepted as a ``full`` classifier.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .embedder import Embedder
from .errors import SearchctlError, UsageError
from .probe import default_backend

__all__ = [
    "Classifier",
    "load_classifier",
    "softmax",
    "quiet_transformers",
    "MANIFEST",
    "HEAD_FILE",
    "METHODS",
    "MAX_TOKENS",
]

MANIFEST = "searchctl-classifier.json"
HEAD_FILE = "head.npz"
METHODS = ("full", "head")
# Longest input, in tokens, the full classifier reads (training and prediction).
MAX_TOKENS = 256


def quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class FullModel:
    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    def probabilities(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.model.config.num_labels), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in rows], truncation=True, max_length=MAX_TOKENS, padding=True, return_tensors="pt"
                )
                logits = self.model(**batch).logits
                out[rows] = torch.softmax(logits.float(), dim=-1).numpy()
        return out


class Classifier:
    """A trained classifier folder: ``predict(texts)`` gives (label, score) per text."""

    def __init__(self, folder: Path, manifest: dict):
        self.folder = Path(folder)
        self.manifest = manifest
        self.method: str = manifest["method"]
        self.labels: list[str] = list(manifest["labels"])
        self.embedder_model: str | None = manifest.get("embedder")
        self.id: str = manifest["id"]
        self.name: str = self.folder.resolve().name
        self._model: Embedder | FullModel | None = None

    def probabilities(
        self, texts: list[str], *, backend: str | None = None, cache_dir: Path | None = None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        if self.method == "head":
            if not isinstance(self._model, Embedder):
                chosen = backend or self.manifest.get("settings", {}).get("backend") or default_backend()[0]
                self._model = Embedder(str(self.embedder_model), backend=chosen, cache_dir=cache_dir)
            return self.probabilities_of_vectors(self._model.embed(texts))
        if not isinstance(self._model, FullModel):
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            quiet_transformers()
            try:
                model = AutoModelForSequenceClassification.from_pretrained(str(self.folder))
                tokenizer = AutoTokenizer.from_pretrained(str(self.folder))
            except (OSError, ValueError) as exc:
                raise SearchctlError(
                    f"cannot load the classifier in {self.folder}: {str(exc).splitlines()[0]}"
                ) from None
            model.eval()
            self._model = FullModel(model, tokenizer)
        assert isinstance(self._model, FullModel)
        return self._model.probabilities(texts)

    def probabilities_of_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Head classifiers only: class probabilities of sentence vectors of ``embedder_model``."""
        if self.method != "head":
            raise UsageError("only a head classifier reads sentence vectors")
        if not hasattr(self, "_head"):
            weights = np.load(self.folder / HEAD_FILE)
            self._head = (weights["coef"], weights["intercept"])
        coef, intercept = self._head
        if vectors.shape[1] != coef.shape[1]:
            raise UsageError(
                f"the classifier in {self.folder} reads {coef.shape[1]}-d vectors of {self.embedder_model}, "
                f"not {vectors.shape[1]}-d ones"
            )
        return softmax(vectors.astype(np.float32) @ coef.T + intercept)

    def predict(self, texts: list[str], **options) -> list[tuple[str, float]]:
        probabilities = self.probabilities(texts, **options)
        best = probabilities.argmax(1)
        return [(self.labels[i], float(probabilities[n, i])) for n, i in enumerate(best)]


def load_classifier(folder: Path) -> Classifier:
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"no classifier folder at {folder}; train one with `searchctl finetune classifier`")
    manifest_path = folder / MANIFEST
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("method") not in METHODS or not manifest.get("labels") or not manifest.get("id"):
                raise ValueError("incomplete")
        except (ValueError, OSError) as exc:
            raise SearchctlError(f"{manifest_path} is damaged ({exc}); train the classifier again") from None
        if manifest["method"] == "head" and not (folder / HEAD_FILE).exists():
            raise SearchctlError(f"{folder / HEAD_FILE} is missing; train the classifier again")
        return Classifier(folder, manifest)
    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        raise UsageError(f"{folder} holds no classifier (no {MANIFEST}, no config.json)") from None
    id2label = config.get("id2label") or {}
    if not id2label or not any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or []):
        raise UsageError(f"{folder} holds a transformer, but not a text classifier (no labels in config.json)")
    labels = [id2label[k] for k in sorted(id2label, key=int)]
    digest = hashlib.sha256(config_path.read_bytes()).hexdigest()[:16]
    return Classifier(folder, {"method": "full", "labels": labels, "id": digest, "base": config.get("_name_or_path")})
