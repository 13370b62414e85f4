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


# Tokens a row's nucleus is first looked for in: sorting the whole vocabulary (49,152 for
# SmolLM2) cost more than a decoding step's attention; the first 1,024 hold top-p of most rows.
NUCLEUS_CANDIDATES = 1024


def _nucleus(torch, sorted_probs, index, top_p: float, generator):
    """Sample from best-first probabilities cut to the smallest prefix holding ``top_p``."""
    sorted_probs[(sorted_probs.cumsum(-1) - sorted_probs) > top_p] = 0
    picked = torch.multinomial(sorted_probs / sorted_probs.sum(-1, keepdim=True), 1, generator=generator)
    return index.gather(-1, picked).squeeze(-1)


def sample_top_p(torch, logits, temperature: float, top_p: float, generator):
    """One token per row: temperature, then the smallest set of tokens holding ``top_p``.

    Exactly that set: it is taken from the row's best ``NUCLEUS_CANDIDATES`` tokens when
    they hold more than ``top_p`` (every token past them then has more than ``top_p``
    before it and is cut anyway), and from the whole sorted row otherwise."""
    probs = torch.softmax(logits / temperature, dim=-1)
    top, index = torch.topk(probs, min(NUCLEUS_CANDIDATES, probs.shape[-1]))
    short = (top.sum(-1) <= top_p).nonzero().flatten().tolist()
    out = _nucleus(torch, top, index, top_p, generator)
    for row in short:  # a flat distribution: its nucleus reaches past the candidates
        ordered, where = torch.sort(probs[row], descending=True)
        out[row] = _nucleus(torch, ordered[None], where[None], top_p, generator)[0]
    return out
