"""Pieces of decoding by hand (``Generator.sample_many``): every core for the duration,
the model's key/value cache under either of its names, and one top-p sampling step."""

from __future__ import annotations

import contextlib
import inspect
import os

__all__ = ["cache_argument", "cache_of", "every_core", "sample_top_p"]


def cache_argument(model) -> str:
    """The keyword a causal LM takes its cache by: `cache` (transformers 5), else `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@contextlib.contextmanager
def every_core(torch):
    """Generation on every core: a searcher opened before (FAISS) leaves torch's OpenMP
    pool at one thread, and queries written after a search then ran on one core of two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def cache_of(output):
    return getattr(output, "cache", None) or output.past_key_values


def sample_top_p(torch, logits, temperature: float, top_p: float, generator):
    """One token per row: temperature, then the smallest set of tokens holding ``top_p``."""
    probs = torch.softmax(logits / temperature, dim=-1)
    sorted_probs, index = torch.sort(probs, descending=True)
    sorted_probs[(sorted_probs.cumsum(-1) - sorted_probs) > top_p] = 0
    picked = torch.multinomial(sorted_probs / sorted_probs.sum(-1, keepdim=True), 1, generator=generator)
    return index.gather(1, picked).squeeze(1)
